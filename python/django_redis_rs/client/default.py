"""DefaultClient: Django's cache API and django-redis's extras on one Redis (plus read replicas).

Every method makes its keys, encodes its values and hands one command to the native client,
which does the round trip with the GIL released and decodes the reply into the asked shape.
The ``client=`` argument of django-redis's signatures is accepted and ignored: the native client
always picks the connection itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeAlias

from django.core.cache.backends.base import DEFAULT_TIMEOUT, default_key_func

from django_redis_rs import _native, exceptions
from django_redis_rs._native import REPLY_BOOL, REPLY_INT, REPLY_RAW
from django_redis_rs.client.raw_clients import RawClients
from django_redis_rs.client.structures import DataStructures
from django_redis_rs.described import (
    Command,
    Described,
    Native,
    add_async_twins,
    described,
)
from django_redis_rs.lock import AsyncLock, ForgivingAsyncLock, ForgivingLock, Lock
from django_redis_rs.options import (
    close_connection,
    codec,
    reverse_key_function,
    sentinel_factory_configured,
    signed_values,
)

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache


# Inside the class, `set` names the cache method.
Set: TypeAlias = set

# django-redis's name: the characters glob_escape escapes.
special_re = re.compile(r"([*?[])")
_MISSING = object()

# Moves a key to its new version atomically, refusing a missing key.
_RENAME_IF_EXISTS = (
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "redis.call('RENAME', KEYS[1], KEYS[2]) return 1"
)


def glob_escape(text: str) -> str:
    """Escape glob characters so a prefix or version matches literally in KEYS/SCAN."""
    return special_re.sub(r"[\1]", text)


@add_async_twins
class DefaultClient(DataStructures, RawClients):
    # Async twins that add_async_twins makes from the described methods, called here.
    aincr: Callable[..., Awaitable[int]]
    aincr_version: Callable[..., Awaitable[int]]
    adelete_pattern: Callable[..., Awaitable[int]]

    def __init__(self, server: Any, params: Mapping[str, Any], backend: BaseCache) -> None:
        self._backend = backend
        # django-redis's attribute: code written for it reads the client's settings here.
        self._params = params
        self._options: Mapping[str, Any] = params.get("OPTIONS") or {}
        serializer, compressor = codec(self._options)
        self._compressed = compressor != ("identity",)
        self.reverse_key = reverse_key_function(self._options)
        self._close_connection = close_connection(self._options)
        ignoring = getattr(backend, "_ignore_exceptions", False)
        self._lock_class = ForgivingLock if ignoring else Lock
        self._async_lock_class = ForgivingAsyncLock if ignoring else AsyncLock
        # What a forgiving lock calls with each error it swallows (the cache counts and logs).
        self._lock_options: dict[str, Any] = (
            {"on_ignored": backend._ignored} if hasattr(backend, "_ignored") and ignoring else {}
        )
        # While the cache uses Django's default key function with this prefix, multi-key calls
        # make their keys natively; with CLIENT_SIDE_CACHE, Redis tells of changes to the keys
        # under it (to all keys, with a key function of your own).
        self._native_prefix = backend.key_prefix
        default_keys = backend.key_func is default_key_func
        # The native module checks LOCATION and OPTIONS, raising SettingError naming the option.
        self._native = _native.Client(
            server,
            self._options,
            **self._layout(),
            serializer=serializer,
            compressor=compressor,
            signing=signed_values(self._options),
            key_prefix=backend.key_prefix,
            tracking_prefix=f"{backend.key_prefix}:" if default_keys else None,
            # Django makes a cache object per thread: those built from the same settings
            # count together (a digest, so that no password is kept in the key).
            metrics_scope=hashlib.sha256(repr((server, params)).encode()).hexdigest(),
        )
        self._clear_scope = self._native.clear_scope
        self.single_flight_timeout = self._native.single_flight_timeout
        self._init_raw_clients()

    def _layout(self) -> dict[str, Any]:
        """How the native client lays out the servers: by default the first takes writes and
        the others are read replicas; with django-redis's ``SentinelConnectionFactory``
        configured, Sentinel names them (``?is_master=0`` sends reads to replicas)."""
        if sentinel_factory_configured(self._options):
            return {"layout": "sentinel", "read_from_replicas": None}
        return {"layout": "replicated"}

    @property
    def flight_scope(self) -> tuple[str, ...]:
        """Where this cache's keys live: get_or_set's single-flight is shared by the caches
        (one per thread in Django) that store in the same servers."""
        return tuple(self._native.servers)

    def __contains__(self, key: Any) -> bool:
        return self.has_key(key)

    # ---- keys, values, timeouts --------------------------------------------------------------

    def make_key(self, key: Any, version: int | None = None, prefix: str | None = None) -> str:
        backend = self._backend
        return backend.key_func(
            key,
            backend.key_prefix if prefix is None else prefix,
            backend.version if version is None else version,
        )

    def make_pattern(
        self, pattern: str, version: int | None = None, prefix: str | None = None
    ) -> str:
        backend = self._backend
        prefix = glob_escape(backend.key_prefix if prefix is None else prefix)
        version_text = glob_escape(str(backend.version if version is None else version))
        return backend.key_func(pattern, prefix, version_text)

    def encode(self, value: Any, *, allow_int: bool = True) -> bytes | int:
        """django-redis's: the stored form of a value, but an ``int`` (not ``bool``, not an
        ``Enum``) is returned as it is, for redis-py to send (``allow_int=False`` serializes
        it too)."""
        if allow_int and isinstance(value, int) and not isinstance(value, (bool, Enum)):
            return value
        return self._native.encode_member(value)

    def decode(self, value: bytes | int | str) -> Any:
        """django-redis's: a stored value (bytes as redis-py returns them) back to Python."""
        if isinstance(value, int):
            return value
        return self._native.decode(value.encode() if isinstance(value, str) else value)

    def _timeout_ms(self, timeout: float | None | object) -> int | None:
        """Django's timeout in milliseconds: None means forever, <= 0 means expire now."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self._backend.default_timeout
        if timeout is None:
            return None
        return int(timeout * 1000)  # type: ignore[operator]

    def _run(
        self, write: bool, args: tuple[Any, ...], reply: int = REPLY_RAW, keys: Any = None
    ) -> Any:
        """One command; ``keys`` name the keys it touches when they are not just ``args[1]``
        (they must live on one shard)."""
        return self._native.execute(write, args, reply, keys)

    # ---- Django's cache API ------------------------------------------------------------------

    def get(
        self, key: Any, default: Any = None, version: int | None = None, client: Any = None
    ) -> Any:
        return self._native.get(self.make_key(key, version), default)

    def set(
        self,
        key: Any,
        value: Any,
        timeout: float | None | object = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
        nx: bool = False,
        xx: bool = False,
    ) -> bool:
        return self._native.set(
            self.make_key(key, version), value, self._timeout_ms(timeout), nx, xx
        )

    def add(
        self,
        key: Any,
        value: Any,
        timeout: float | None | object = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> bool:
        return self._native.set(self.make_key(key, version), value, self._timeout_ms(timeout), True)

    def touch(
        self,
        key: Any,
        timeout: float | None | object = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> bool:
        return self._native.touch(self.make_key(key, version), self._timeout_ms(timeout))

    def delete(
        self, key: Any, version: int | None = None, prefix: str | None = None, client: Any = None
    ) -> int:
        return self._native.delete(self.make_key(key, version, prefix))

    def _native_version(self, version: int | None) -> int | None:
        """The version to make keys with natively, or None when Python must make them (a
        custom key function, or a prefix or key function changed since the cache was made)."""
        backend = self._backend
        if backend.key_func is not default_key_func or backend.key_prefix != self._native_prefix:
            return None
        version = backend.version if version is None else version
        # The native key maker takes 64-bit versions; a bigger one is made here, by Django's.
        return version if type(version) is int and -(2**63) <= version < 2**63 else None

    def _many(
        self, keys: Iterable[Any], version: int | None, named: bool = False
    ) -> tuple[Any, ...]:
        """The native multi-key calls' arguments, sync or async: the caller's keys and the
        version to make them with natively, or the keys made here (``named``: mapped to the
        caller's, for get_many to name them in its result)."""
        native_version = self._native_version(version)
        if native_version is not None:
            return keys, native_version
        if named:
            return ({self.make_key(k, version): k for k in keys},)
        return ([self.make_key(k, version) for k in keys],)

    def _many_items(
        self, data: Mapping[Any, Any], timeout: Any, version: int | None
    ) -> tuple[Any, ...]:
        """set_many's native arguments, sync or async (see ``_many``)."""
        native_version = self._native_version(version)
        if native_version is not None:
            items = data if type(data) is dict else dict(data)
            return items, self._timeout_ms(timeout), native_version
        return {self.make_key(k, version): v for k, v in data.items()}, self._timeout_ms(timeout)

    def delete_many(
        self, keys: Iterable[Any], version: int | None = None, client: Any = None
    ) -> int:
        return self._native.delete_many(*self._many(keys, version))

    def has_key(self, key: Any, version: int | None = None, client: Any = None) -> bool:
        return self._native.has_key(self.make_key(key, version))

    def get_many(
        self, keys: Iterable[Any], version: int | None = None, client: Any = None
    ) -> dict[Any, Any]:
        return self._native.get_many(*self._many(keys, version, named=True))

    def set_many(
        self,
        data: Mapping[Any, Any],
        timeout: float | None | object = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> list[Any]:
        """Store all values in one round trip; returns the keys that failed (always none)."""
        self._native.set_many(*self._many_items(data, timeout, version))
        return []

    @described
    def incr(
        self,
        key: Any,
        delta: int = 1,
        version: int | None = None,
        client: Any = None,
        ignore_key_check: bool = False,
    ) -> Described[int]:
        made = self.make_key(key, version)
        try:
            value = yield Native("incr", (made, delta, ignore_key_check))
        except (exceptions.ConnectionInterrupted, OverflowError) as failure:
            if not (isinstance(failure, OverflowError) or exceptions.refused_by_server(failure)):
                raise
            # Not a 64-bit integer in Redis (a big int, or a pickled value): add in Python,
            # keeping the expiry.
            value = yield Native("get", (made, _MISSING))
            if value is _MISSING:
                raise ValueError(f"Key '{key}' not found") from None
            value = value + delta
            stored = self._native.encode(value, made)
            yield Command(True, ("SET", made, stored, "KEEPTTL"), REPLY_BOOL)
            return value
        if value is None:
            raise ValueError(f"Key '{key}' not found")
        return value

    def decr(self, key: Any, delta: int = 1, version: int | None = None, client: Any = None) -> int:
        return self.incr(key, -delta, version)

    @described
    def incr_version(
        self, key: Any, delta: int = 1, version: int | None = None, client: Any = None
    ) -> Described[int]:
        """Move the value to version + delta, keeping its expiry (one atomic RENAME)."""
        if version is None:
            version = self._backend.version
        old, new = self.make_key(key, version), self.make_key(key, version + delta)
        # A signed value is signed for its key: it is read and stored again, not renamed.
        if self._native.same_node([old, new]) and not self._native.signs_values:
            args = ("EVAL", _RENAME_IF_EXISTS, 2, old, new)
            if not (yield Command(True, args, REPLY_BOOL, [old, new])):
                raise ValueError(f"Key '{key}' not found")
            return version + delta
        # The versions live on different shards (or the value is signed): copy the value and
        # its expiry, then delete.
        value = yield Native("get", (old, _MISSING))
        if value is _MISSING:
            raise ValueError(f"Key '{key}' not found")
        ttl_ms: int = yield Command(False, ("PTTL", old), REPLY_INT)
        yield Native("set", (new, value, None if ttl_ms < 0 else max(ttl_ms, 1)))
        yield Native("delete", (old,))
        return version + delta

    def decr_version(
        self, key: Any, delta: int = 1, version: int | None = None, client: Any = None
    ) -> int:
        return self.incr_version(key, -delta, version)

    @described
    def clear(self, client: Any = None) -> Described[None]:
        """FLUSHDB on every primary; with ``CLEAR_SCOPE``, only this cache's keys."""
        scope = self._clear_pattern()
        if scope is None:
            yield Native("clear", ())
        else:
            yield Native("delete_pattern", (scope, None))

    def _clear_pattern(self) -> str | None:
        """The keys ``clear`` deletes under ``CLEAR_SCOPE``, as a SCAN pattern (None: all)."""
        if self._clear_scope == "database":
            return None
        backend = self._backend
        prefix = glob_escape(backend.key_prefix)
        if self._clear_scope == "version":
            return backend.key_func("*", prefix, glob_escape(str(backend.version)))
        if backend.key_func is default_key_func:
            # Any version (an integer), and not the keys of a longer prefix ("app" must not
            # reach "app:other:1:k").
            return f"{prefix}:[0-9-]*:*"
        return backend.key_func("*", prefix, "*")

    def metrics(self) -> dict[str, Any]:
        """This cache's counters (README, "Metrics"): read from memory, no I/O."""
        return self._native.metrics()

    def reset_metrics(self) -> None:
        self._native.reset_metrics()

    def note_ignored(self, name: str) -> None:
        """Count one error of class `name` that IGNORE_EXCEPTIONS swallowed."""
        self._native.note_ignored(name)

    def close(self, **kwargs: Any) -> None:
        """Called by Django at the end of each request: disconnect only if CLOSE_CONNECTION."""
        if self._close_connection:
            self._native.close()
            self.do_close_clients()

    # ---- Django's async API: native, awaited on the runtime (no thread per call) ------------

    async def aget(
        self, key: Any, default: Any = None, version: int | None = None, client: Any = None
    ) -> Any:
        return await self._native.aget(self.make_key(key, version), default)

    async def aset(
        self,
        key: Any,
        value: Any,
        timeout: float | None | object = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
        nx: bool = False,
        xx: bool = False,
    ) -> bool:
        made, ms = self.make_key(key, version), self._timeout_ms(timeout)
        result: bool = await self._native.aset(made, value, ms, nx, xx)
        return result

    async def aadd(
        self,
        key: Any,
        value: Any,
        timeout: float | None | object = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> bool:
        return await self.aset(key, value, timeout, version, nx=True)

    async def atouch(
        self,
        key: Any,
        timeout: float | None | object = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> bool:
        result: bool = await self._native.atouch(
            self.make_key(key, version), self._timeout_ms(timeout)
        )
        return result

    async def adelete(
        self, key: Any, version: int | None = None, prefix: str | None = None, client: Any = None
    ) -> int:
        result: int = await self._native.adelete(self.make_key(key, version, prefix))
        return result

    async def ahas_key(self, key: Any, version: int | None = None, client: Any = None) -> bool:
        result: bool = await self._native.ahas_key(self.make_key(key, version))
        return result

    async def aget_many(
        self, keys: Iterable[Any], version: int | None = None, client: Any = None
    ) -> dict[Any, Any]:
        found: dict[Any, Any] = await self._native.aget_many(*self._many(keys, version, named=True))
        return found

    async def aset_many(
        self,
        data: Mapping[Any, Any],
        timeout: float | None | object = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> list[Any]:
        await self._native.aset_many(*self._many_items(data, timeout, version))
        return []

    async def adelete_many(
        self, keys: Iterable[Any], version: int | None = None, client: Any = None
    ) -> int:
        deleted: int = await self._native.adelete_many(*self._many(keys, version))
        return deleted

    async def adecr(
        self, key: Any, delta: int = 1, version: int | None = None, client: Any = None
    ) -> int:
        return await self.aincr(key, -delta, version)

    async def adecr_version(
        self, key: Any, delta: int = 1, version: int | None = None, client: Any = None
    ) -> int:
        return await self.aincr_version(key, -delta, version)

    async def aexecute(
        self, write: bool, args: tuple[Any, ...], reply: int = REPLY_RAW, keys: Any = None
    ) -> Any:
        """Any command, awaited: ``execute``'s async twin (see ``_run``)."""
        return await self._native.aexecute(write, args, reply, keys)

    # ---- locks -------------------------------------------------------------------------------

    def lock(
        self,
        key: Any,
        version: int | None = None,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        client: Any = None,
        thread_local: bool = True,
        lock_class: type[Any] | None = None,
    ) -> Any:
        """django-redis's and redis-py's lock. With ``lock_class`` (or ``client``) it is
        redis-py's ``lock`` on the raw client, as django-redis builds it; otherwise our own
        lock on the native pools, with the same interface and redis-py's exceptions."""
        made = self.make_key(key, version)
        if lock_class is not None or client is not None:
            raw = self._client_for(made) if client is None else client
            return raw.lock(
                made,
                timeout=timeout,
                sleep=sleep,
                blocking=blocking,
                blocking_timeout=blocking_timeout,
                lock_class=lock_class,
                thread_local=thread_local,
            )
        return self._lock_class(
            self._native,
            made,
            timeout=timeout,
            sleep=sleep,
            blocking=blocking,
            blocking_timeout=blocking_timeout,
            thread_local=thread_local,
            **self._lock_options,
        )

    def alock(
        self,
        key: Any,
        version: int | None = None,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        client: Any = None,
        thread_local: bool = True,
    ) -> AsyncLock:
        """``lock`` for async code (``async with cache.alock(...)``)."""
        return self._async_lock_class(
            self._native,
            self.make_key(key, version),
            timeout=timeout,
            sleep=sleep,
            blocking=blocking,
            blocking_timeout=blocking_timeout,
            **self._lock_options,
        )

    # ---- key search --------------------------------------------------------------------------

    @described
    def keys(
        self, search: str, version: int | None = None, client: Any = None
    ) -> Described[list[str]]:
        reverse = self.reverse_key
        found = yield Native("keys", (self.make_pattern(search, version),))
        return [reverse(k) for k in found]

    def iter_keys(
        self,
        search: str,
        itersize: int | None = None,
        client: Any = None,
        version: int | None = None,
    ) -> Iterator[str]:
        pattern = self.make_pattern(search, version)
        reverse = self.reverse_key
        for node in range(self._native.node_count):
            cursor = 0
            while True:
                cursor, keys = self._native.scan(cursor, pattern, itersize, node)
                for k in keys:
                    yield reverse(k)
                if cursor == 0:
                    break

    @described
    def delete_pattern(
        self,
        pattern: str,
        version: int | None = None,
        prefix: str | None = None,
        client: Any = None,
        itersize: int | None = None,
    ) -> Described[int]:
        made = self.make_pattern(pattern, version, prefix)
        deleted: int = yield Native("delete_pattern", (made, itersize))
        return deleted

    # An iterator and an async iterator cannot share a body: iter_keys and aiter_keys both
    # page with the native SCAN (scan/ascan), one page per step.
    async def aiter_keys(
        self,
        search: str,
        itersize: int | None = None,
        client: Any = None,
        version: int | None = None,
    ) -> AsyncIterator[str]:
        """``iter_keys`` as an async iterator, one SCAN page per step."""
        pattern = self.make_pattern(search, version)
        reverse = self.reverse_key
        for node in range(self._native.node_count):
            cursor = 0
            while True:
                cursor, keys = await self._native.ascan(cursor, pattern, itersize, node)
                for k in keys:
                    yield reverse(k)
                if cursor == 0:
                    break
