"""The native raw client: redis-py's names over the native pools, what
``cache.client.get_native_client()`` returns (``get_redis_connection()`` returns redis-py's).

Each method describes one command — its arguments and how to convert the reply — through
``_call``; the client runs it at once, a pipeline queues it. The plain ones are rows of the
command table (``client/table.py``). Replies are as redis-py gives them
with ``decode_responses=False``: bytes for strings, ints, lists, dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from django_redis_rs._native import REPLY_RAW, Client
from django_redis_rs.exceptions import redis_py_errors
from django_redis_rs.lock import Lock

if TYPE_CHECKING:
    from django_redis_rs.client._table_stub import RawTableCommands
else:
    from django_redis_rs.client.table import RawTableCommands

# The raw client's methods written out, and why each is not a row of the command table.
RAW_HAND_WRITTEN = {
    "execute_command": "any command, as given",
    "set": "EX, PX, NX, XX and KEEPTTL",
    "mget": "one key, or an iterable of them, then more",
    "hset": "a field and value, and/or a mapping",
    "zadd": "its flags, and INCR's float reply",
    "zrange": "REV and WITHSCORES' pairs",
    "info": "an optional section, and the reply parsed",
}

Convert = Callable[[Any], Any]


def _parse_info(reply: Any) -> dict[str, Any]:
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    info: dict[str, Any] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, _, value = line.partition(":")
        info[name] = _info_value(value)
    return info


def _info_value(value: str) -> Any:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    if "," in value and "=" in value:
        return dict(
            (k, _info_value(v)) for k, _, v in (part.partition("=") for part in value.split(","))
        )
    return value


def _zrange_reply(withscores: bool) -> Convert | None:
    if not withscores:
        return None
    return lambda r: [(r[i], float(r[i + 1])) for i in range(0, len(r), 2)]


class _Commands(RawTableCommands):
    """The command descriptions, shared by the client and its pipelines: the command table's
    (``client/table.py``, ``RAW_TABLE``), and here the ones with logic of their own
    (``RAW_HAND_WRITTEN``)."""

    def _call(
        self, args: tuple[Any, ...], convert: Convert | None = None, write: bool = True
    ) -> Any:
        raise NotImplementedError

    def execute_command(self, *args: Any) -> Any:
        return self._call(args)

    def set(
        self,
        name: Any,
        value: Any,
        ex: int | None = None,
        px: int | None = None,
        nx: bool = False,
        xx: bool = False,
        keepttl: bool = False,
    ) -> Any:
        args: tuple[Any, ...] = ("SET", name, value)
        if ex is not None:
            args += ("EX", int(ex))
        if px is not None:
            args += ("PX", int(px))
        if nx:
            args += ("NX",)
        if xx:
            args += ("XX",)
        if keepttl:
            args += ("KEEPTTL",)
        return self._call(args, lambda r: True if r is True else r)

    def mget(self, keys: Any, *args: Any) -> Any:
        names = [keys] if isinstance(keys, (str, bytes)) else list(keys)
        return self._call(("MGET", *names, *args), write=False)

    def hset(
        self,
        name: Any,
        key: Any = None,
        value: Any = None,
        mapping: Mapping[Any, Any] | None = None,
    ) -> Any:
        pairs: list[Any] = [] if key is None else [key, value]
        for k, v in (mapping or {}).items():
            pairs += [k, v]
        if not pairs:
            raise ValueError("'hset' with no key value pairs")
        return self._call(("HSET", name, *pairs))

    def zadd(
        self,
        name: Any,
        mapping: Mapping[Any, float],
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        incr: bool = False,
    ) -> Any:
        flags = [f for f, on in (("NX", nx), ("XX", xx), ("CH", ch), ("INCR", incr)) if on]
        pairs: list[Any] = []
        for member, score in mapping.items():
            pairs += [score, member]
        convert: Convert | None = (lambda r: None if r is None else float(r)) if incr else None
        return self._call(("ZADD", name, *flags, *pairs), convert)

    def zrange(
        self, name: Any, start: int, end: int, desc: bool = False, withscores: bool = False
    ) -> Any:
        args: tuple[Any, ...] = ("ZRANGE", name, start, end)
        if desc:
            args += ("REV",)
        if withscores:
            args += ("WITHSCORES",)
        return self._call(args, _zrange_reply(withscores), write=False)

    def info(self, section: str | None = None) -> Any:
        args: tuple[Any, ...] = ("INFO",) if section is None else ("INFO", section)
        return self._call(args, _parse_info, write=False)


class RawClient(_Commands):
    def __init__(self, native: Client, write: bool = True) -> None:
        self._native = native
        self._write = write

    def __repr__(self) -> str:
        return f"<django_redis_rs.RawClient servers={self._native.servers} write={self._write}>"

    def _call(
        self, args: tuple[Any, ...], convert: Convert | None = None, write: bool = True
    ) -> Any:
        with redis_py_errors:
            reply = self._native.execute(self._write or write, args, REPLY_RAW)
        return reply if convert is None else convert(reply)

    def scan_iter(self, match: Any = "*", count: int | None = None) -> Iterator[bytes]:
        for node in range(self._native.node_count):
            cursor = 0
            while True:
                with redis_py_errors:
                    cursor, keys = self._native.scan(cursor, match or "*", count, node)
                for key in keys:
                    yield key.encode()
                if cursor == 0:
                    break

    def pipeline(self, transaction: bool = True) -> Pipeline:
        return Pipeline(self._native, transaction)

    def lock(
        self,
        name: str,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        thread_local: bool = True,
    ) -> Lock:
        return Lock(self._native, name, timeout, sleep, blocking, blocking_timeout, thread_local)

    def close(self) -> None:
        """Connections belong to the shared pool; nothing to close per client."""


class Pipeline(_Commands):
    """Queues commands; ``execute()`` sends them in one round trip (in MULTI/EXEC when
    ``transaction``) and returns their replies in order."""

    def __init__(self, native: Client, transaction: bool = True) -> None:
        self._native = native
        self._transaction = transaction
        self._queued: list[tuple[tuple[Any, ...], Convert | None]] = []

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset()

    def __len__(self) -> int:
        return len(self._queued)

    def _call(
        self, args: tuple[Any, ...], convert: Convert | None = None, write: bool = True
    ) -> Any:
        self._queued.append((args, convert))
        return self

    def reset(self) -> None:
        self._queued = []

    def execute(self) -> list[Any]:
        queued, self._queued = self._queued, []
        if not queued:
            return []
        commands = [args for args, _ in queued]
        if self._transaction:
            commands = [("MULTI",), *commands, ("EXEC",)]
        with redis_py_errors:
            replies = self._native.pipeline(commands)
        if self._transaction:
            replies = replies[-1]
        return [
            reply if convert is None else convert(reply)
            for (_, convert), reply in zip(queued, replies, strict=True)
        ]
