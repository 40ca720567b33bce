"""django-redis's data-structure extras — sets, hashes, sorted sets, lists. Those that are one
command each are rows of the command table (``table.py``); here are the ones with logic of their
own, each described once (``described``) for the sync and the async transport alike:
``sdiffstore`` (two versions), ``spop``/``srandmember``/``lpop``/``rpop`` (a count changes the
reply's shape), the SSCAN cursor, ``hset`` (a field and/or a mapping), ``hgetall``, ``zadd`` (its
flags), the ``zrange`` family and the pops (scores, limits, casts), ``zrank`` (``withscore``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from django_redis_rs._native import (
    REPLY_FLOAT,
    REPLY_INT,
    REPLY_SCORED,
    REPLY_VALUE,
    REPLY_VALUE_SET,
    REPLY_VALUES,
)
from django_redis_rs.described import Command, Described, add_async_twins, described

if TYPE_CHECKING:
    from django_redis_rs import _native
    from django_redis_rs.client._table_stub import TableCommands
else:
    from django_redis_rs.client.table import TableCommands

# The methods written out here, and why each is not a row of the command table.
HAND_WRITTEN = {
    "sdiffstore": "two versions: the destination's and the sources'",
    "spop": "a count turns one member into a set of them",
    "srandmember": "a count turns one member into a list of them",
    "sscan_iter": "the SSCAN cursor, page by page",
    "sscan": "every SSCAN page",
    "hset": "a field and value, and/or a mapping",
    "hgetall": "field names decoded as text, values as the cache stores them",
    "zadd": "its flags, and INCR's float reply",
    "zpopmax": "a count turns one (member, score) into a list of them",
    "zpopmin": "a count turns one (member, score) into a list of them",
    "zrange": "REV, WITHSCORES and score_cast_func",
    "zrevrange": "WITHSCORES and score_cast_func",
    "zrangebyscore": "LIMIT, WITHSCORES and score_cast_func",
    "zrevrangebyscore": "LIMIT, WITHSCORES and score_cast_func",
    "zrank": "WITHSCORE's pair",
    "lpop": "a count turns one value into a list of them",
    "rpop": "a count turns one value into a list of them",
}

# Inside the class, `set` names the cache method.
Set: TypeAlias = set


@add_async_twins
class DataStructures(TableCommands):
    """Mixed into ``DefaultClient``, which provides the native client and the key function."""

    _native: _native.Client
    _compressed: bool

    if TYPE_CHECKING:

        def make_key(
            self, key: Any, version: int | None = None, prefix: str | None = None
        ) -> str: ...

        def _run(
            self, write: bool, args: tuple[Any, ...], reply: int = ..., keys: Any = None
        ) -> Any: ...

    # ---- sets --------------------------------------------------------------------------------

    def _keys(self, keys: Iterable[Any], version: int | None) -> list[str]:
        return [self.make_key(k, version) for k in keys]

    @described
    def sdiffstore(
        self,
        dest: Any,
        *keys: Any,
        version_dest: int | None = None,
        version_keys: int | None = None,
        client: Any = None,
    ) -> Described[int]:
        made = [self.make_key(dest, version_dest), *self._keys(keys, version_keys)]
        return (yield Command(True, ("SDIFFSTORE", *made), REPLY_INT, made))

    @described
    def spop(
        self, key: Any, count: int | None = None, version: int | None = None, client: Any = None
    ) -> Described[Any]:
        """One random member removed (or None), or a set of ``count`` of them."""
        if count is None:
            return (yield Command(True, ("SPOP", self.make_key(key, version)), REPLY_VALUE))
        return (yield Command(True, ("SPOP", self.make_key(key, version), count), REPLY_VALUE_SET))

    @described
    def srandmember(
        self, key: Any, count: int | None = None, version: int | None = None, client: Any = None
    ) -> Described[Any]:
        """One random member (or None), or a list of ``count`` of them."""
        if count is None:
            return (yield Command(False, ("SRANDMEMBER", self.make_key(key, version)), REPLY_VALUE))
        args = ("SRANDMEMBER", self.make_key(key, version), count)
        return (yield Command(False, args, REPLY_VALUES))

    def sscan_iter(
        self,
        key: Any,
        match: Any = None,
        count: int | None = 10,
        version: int | None = None,
        client: Any = None,
    ) -> Iterator[Any]:
        """Members one page (SSCAN) at a time. ``match`` is matched against the stored form,
        as in django-redis, so it cannot be combined with compression."""
        if match is not None and self._compressed:
            raise ValueError("Using match with compression is not supported.")
        made = self.make_key(key, version)
        extra: tuple[Any, ...] = ()
        if match is not None:
            extra += ("MATCH", self._native.encode(match))
        if count is not None:
            extra += ("COUNT", count)
        cursor = b"0"
        while True:
            cursor, members = self._run(False, ("SSCAN", made, cursor, *extra))
            for member in members:
                yield self._native.decode(member)
            if cursor == b"0":
                return

    async def asscan_iter(
        self,
        key: Any,
        match: Any = None,
        count: int | None = 10,
        version: int | None = None,
        client: Any = None,
    ) -> AsyncIterator[Any]:
        """``sscan_iter`` as an async iterator (native SSCAN per page)."""
        if match is not None and self._compressed:
            raise ValueError("Using match with compression is not supported.")
        made = self.make_key(key, version)
        extra: tuple[Any, ...] = ()
        if match is not None:
            extra += ("MATCH", self._native.encode(match))
        if count is not None:
            extra += ("COUNT", count)
        cursor = b"0"
        while True:
            cursor, members = await self._native.aexecute(False, ("SSCAN", made, cursor, *extra))
            for member in members:
                yield self._native.decode(member)
            if cursor == b"0":
                return

    async def asscan(
        self,
        key: Any,
        match: Any = None,
        count: int | None = 10,
        version: int | None = None,
        client: Any = None,
    ) -> Set[Any]:
        return {member async for member in self.asscan_iter(key, match, count, version)}

    def sscan(
        self,
        key: Any,
        match: Any = None,
        count: int | None = 10,
        version: int | None = None,
        client: Any = None,
    ) -> Set[Any]:
        """All members matching ``match`` (every SSCAN page)."""
        return set(self.sscan_iter(key, match, count, version))

    # ---- hashes ------------------------------------------------------------------------------

    @described
    def hset(
        self,
        key: Any,
        field: Any = None,
        value: Any = None,
        mapping: Mapping[Any, Any] | None = None,
        version: int | None = None,
        client: Any = None,
    ) -> Described[int]:
        """Set ``field`` to ``value`` and/or every field of ``mapping``; returns fields added."""
        pairs: list[Any] = []
        if field is not None:
            pairs += [field, self._native.encode(value)]
        for f, v in (mapping or {}).items():
            pairs += [f, self._native.encode(v)]
        if not pairs:
            raise ValueError("hset needs a field and value, or a mapping")
        return (yield Command(True, ("HSET", self.make_key(key, version), *pairs), REPLY_INT))

    @described
    def hgetall(
        self, key: Any, version: int | None = None, client: Any = None
    ) -> Described[dict[str, Any]]:
        flat = yield Command(False, ("HGETALL", self.make_key(key, version)))
        decode = self._native.decode
        return {flat[i].decode(): decode(flat[i + 1]) for i in range(0, len(flat), 2)}

    # ---- sorted sets (django-redis 7.0 signatures) -------------------------------------------

    @described
    def zadd(
        self,
        key: Any,
        mapping: Mapping[Any, float],
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        incr: bool = False,
        gt: bool = False,
        lt: bool = False,
        version: int | None = None,
        client: Any = None,
    ) -> Described[int | float | None]:
        flags = [name for name, on in (("NX", nx), ("XX", xx), ("GT", gt), ("LT", lt)) if on]
        flags += [name for name, on in (("CH", ch), ("INCR", incr)) if on]
        pairs: list[Any] = []
        for member, score in mapping.items():
            pairs += [score, self._native.encode_member(member)]
        args = ("ZADD", self.make_key(key, version), *flags, *pairs)
        return (yield Command(True, args, REPLY_FLOAT if incr else REPLY_INT))

    def _zpop(
        self, command: str, key: Any, count: int | None, version: int | None
    ) -> Described[Any]:
        args: tuple[Any, ...] = (command, self.make_key(key, version))
        if count is not None:
            args += (count,)
        popped = yield Command(True, args, REPLY_SCORED)
        if count is None:
            return popped[0] if popped else None
        return popped

    @described
    def zpopmax(
        self, key: Any, count: int | None = None, version: int | None = None, client: Any = None
    ) -> Described[Any]:
        return (yield from self._zpop("ZPOPMAX", key, count, version))

    @described
    def zpopmin(
        self, key: Any, count: int | None = None, version: int | None = None, client: Any = None
    ) -> Described[Any]:
        return (yield from self._zpop("ZPOPMIN", key, count, version))

    def _zlist(
        self, args: tuple[Any, ...], withscores: bool, score_cast_func: Any
    ) -> Described[list[Any]]:
        """Members, or (member, score) pairs when ``args`` ask WITHSCORES."""
        if not withscores:
            return (yield Command(False, args, REPLY_VALUES))
        scored = yield Command(False, args, REPLY_SCORED)
        if score_cast_func is not float:
            scored = [(member, score_cast_func(score)) for member, score in scored]
        return scored

    def _zlist_by_score(
        self,
        command: str,
        key: Any,
        bounds: tuple[Any, Any],
        start: int | None,
        num: int | None,
        withscores: bool,
        score_cast_func: Any,
        version: int | None,
    ) -> Described[list[Any]]:
        if (start is None) != (num is None):
            raise ValueError("start and num must both be given, or neither")
        args: tuple[Any, ...] = (command, self.make_key(key, version), *bounds)
        if withscores:  # WITHSCORES must come before LIMIT
            args += ("WITHSCORES",)
        if start is not None:
            args += ("LIMIT", start, num)
        return (yield from self._zlist(args, withscores, score_cast_func))

    @described
    def zrange(
        self,
        key: Any,
        start: int,
        end: int,
        desc: bool = False,
        withscores: bool = False,
        score_cast_func: Any = float,
        version: int | None = None,
        client: Any = None,
    ) -> Described[list[Any]]:
        args: tuple[Any, ...] = (
            "ZRANGE",
            self.make_key(key, version),
            start,
            end,
            *(("REV",) if desc else ()),
        )
        args += ("WITHSCORES",) if withscores else ()
        return (yield from self._zlist(args, withscores, score_cast_func))

    @described
    def zrevrange(
        self,
        key: Any,
        start: int,
        end: int,
        withscores: bool = False,
        score_cast_func: Any = float,
        version: int | None = None,
        client: Any = None,
    ) -> Described[list[Any]]:
        args: tuple[Any, ...] = ("ZREVRANGE", self.make_key(key, version), start, end)
        args += ("WITHSCORES",) if withscores else ()
        return (yield from self._zlist(args, withscores, score_cast_func))

    @described
    def zrangebyscore(
        self,
        key: Any,
        min: Any,
        max: Any,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Any = float,
        version: int | None = None,
        client: Any = None,
    ) -> Described[list[Any]]:
        return (
            yield from self._zlist_by_score(
                "ZRANGEBYSCORE", key, (min, max), start, num, withscores, score_cast_func, version
            )
        )

    @described
    def zrevrangebyscore(
        self,
        key: Any,
        max: Any,
        min: Any,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Any = float,
        version: int | None = None,
        client: Any = None,
    ) -> Described[list[Any]]:
        return (
            yield from self._zlist_by_score(
                "ZREVRANGEBYSCORE",
                key,
                (max, min),
                start,
                num,
                withscores,
                score_cast_func,
                version,
            )
        )

    @described
    def zrank(
        self,
        key: Any,
        value: Any,
        withscore: bool = False,
        version: int | None = None,
        client: Any = None,
    ) -> Described[Any]:
        args: tuple[Any, ...] = (
            "ZRANK",
            self.make_key(key, version),
            self._native.encode_member(value),
        )
        if not withscore:
            return (yield Command(False, args, REPLY_INT))
        reply = yield Command(False, (*args, "WITHSCORE"))
        return None if reply is None else [reply[0], float(reply[1])]

    # ---- lists -------------------------------------------------------------------------------

    def _pop(
        self, command: str, key: Any, count: int | None, version: int | None
    ) -> Described[Any]:
        if count is None:
            return (yield Command(True, (command, self.make_key(key, version)), REPLY_VALUE))
        popped = yield Command(True, (command, self.make_key(key, version), count), REPLY_VALUES)
        return popped or None

    @described
    def lpop(
        self, key: Any, count: int | None = None, version: int | None = None, client: Any = None
    ) -> Described[Any]:
        return (yield from self._pop("LPOP", key, count, version))

    @described
    def rpop(
        self, key: Any, count: int | None = None, version: int | None = None, client: Any = None
    ) -> Described[Any]:
        return (yield from self._pop("RPOP", key, count, version))
