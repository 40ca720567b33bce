"""``django_redis_rs.cache.RedisCache``: the class Django's ``CACHES`` setting names.

It builds the client named by ``CLIENT_CLASS`` and forwards each call to it. One wrapper,
``forgiving`` (through ``_forward``), gives every method the ``IGNORE_EXCEPTIONS`` behaviour:
with the option on, a connection failure or a server's refusal returns the method's neutral
value (and is logged when ``DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS`` is set); with it off, the
failure's cause is raised: a ``ConnectionError``, ``TimeoutError`` or ``ResponseError`` (or a
finer class: ``OutOfMemoryError``, ``AuthenticationError``, …) that subclasses redis-py's, as
with django-redis.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import operator
from collections.abc import Callable, Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar, cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.exceptions import ImproperlyConfigured

from django_redis_rs import flight as flights
from django_redis_rs.client import DefaultClient
from django_redis_rs.client.table import TABLE
from django_redis_rs.exceptions import ConnectionInterrupted, redis_py_error
from django_redis_rs.forgiving import EMPTY_DICT, EMPTY_LIST, EMPTY_SET, UNSTORED_KEYS, forgiving
from django_redis_rs.options import DEFAULT_CLIENT, import_option


def _forward(name: str, neutral: Any = None) -> Callable[..., Any]:
    """``RedisCache.<name>``: the client's method of that name, under IGNORE_EXCEPTIONS
    (``forgiving``); an async one takes Django's default path while its sync twin is wrapped
    (``_unless_wrapped``)."""
    method = forgiving(
        name,
        like=getattr(DefaultClient, name),
        # A C getter: a Python lambda here cost `set` 2.5% more instructions (callgrind).
        target=operator.attrgetter(f"_cache_client.{name}"),
        caught=lambda: ConnectionInterrupted,
        handle=lambda cache, failure: cache._handle_failure(failure),
        neutral=neutral,
    )
    method.__qualname__ = f"RedisCache.{name}"
    if inspect.iscoroutinefunction(method):
        return _unless_wrapped(name[1:])(method)
    return method


_MISSING: Any = object()
# django-redis's sentinel for a call whose failure was swallowed (exported for code that
# imports it; no method of ours returns it).
CONNECTION_INTERRUPTED = object()


def omit_exception(
    method: Callable[..., Any] | None = None, return_value: Any = None
) -> Callable[..., Any]:
    """django-redis's decorator for cache methods written on the client (django-prometheus's
    cache subclass uses it): a ``ConnectionInterrupted`` the method lets out returns
    `return_value` under ``IGNORE_EXCEPTIONS`` (counted and logged as the cache's own ignored
    errors are), and otherwise raises its cause, the redis-py class."""
    if method is None:
        return functools.partial(omit_exception, return_value=return_value)

    @functools.wraps(method)
    def guarded(self: RedisCache, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except ConnectionInterrupted as failure:
            self._handle_failure(failure)
            return return_value

    return guarded


# The sync methods whose async twins are native, as RedisCache defines them (filled by
# `_unless_wrapped`, then at the end of this module).
_TWINNED: set[str] = set()
_OURS: dict[str, Callable[..., Any]] = {}


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _unless_wrapped(sync_name: str) -> Callable[[_Method], _Method]:
    """A native async method that takes Django's default path — the sync method, in a thread
    — while that sync method is wrapped: overridden by a subclass (django-prometheus's),
    patched on the class (as APM agents do), or replaced on the instance (django-debug-toolbar
    and sentry-sdk ``setattr`` their wrappers). So what wraps ``get`` sees ``aget`` too, as it
    does with django-redis, whose async methods are Django's defaults. Otherwise the native
    coroutine runs, after two lookups."""
    _TWINNED.add(sync_name)

    def decorate(native: _Method) -> _Method:
        async def method(self: RedisCache, *args: Any, **kwargs: Any) -> Any:
            if sync_name in self.__dict__ or getattr(type(self), sync_name) is not _OURS[sync_name]:
                wrapped = getattr(self, sync_name)
                around = _around_native(self, sync_name, wrapped)
                if around is not None:
                    return await around(lambda: native(self, *args, **kwargs), args, kwargs)
                return await sync_to_async(wrapped, thread_sensitive=True)(*args, **kwargs)
            return await native(self, *args, **kwargs)

        return cast(_Method, functools.wraps(native)(method))

    return decorate


def _around_native(cache: RedisCache, name: str, wrapped: Any) -> Any:
    """What records `wrapped`'s events around the native coroutine itself, when `wrapped` is a
    wrapper we know (sentry-sdk's cache spans: ``contrib/sentry.py``); None otherwise. Found
    once per instance and wrapper."""
    known = cache.__dict__.setdefault("_arounds", {})
    if (found := known.get(name)) is not None and found[0] is wrapped:
        return found[1]
    around = None
    code = getattr(wrapped, "__code__", None)
    if code is not None and "sentry_sdk" in code.co_filename:
        from django_redis_rs.contrib.sentry import around_native

        around = around_native(cache, name, wrapped, _OURS[name])
    known[name] = (wrapped, around)
    return around


class _Refused:
    """The client of a cache whose settings were refused: every use raises why."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def __getattr__(self, name: str) -> Any:
        raise ImproperlyConfigured(self._reason)

    def close(self, **kwargs: Any) -> None:
        """Django closes every cache after each request: nothing was opened."""


class RedisCache(BaseCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(params)
        # django-redis's attributes: code written for it reads LOCATION and the settings here.
        self._server = server
        self._params = params
        options = params.get("OPTIONS") or {}
        # SCAN's COUNT for delete_pattern: django-redis's default of 10 costs one round trip
        # per 10 slots of the keyspace; unset, the native default (1000) visits 100x more per
        # round trip. The keys deleted are the same.
        self._default_scan_itersize: int | None = getattr(
            settings, "DJANGO_REDIS_SCAN_ITERSIZE", None
        )
        self._ignore_exceptions: bool = bool(
            options.get(
                "IGNORE_EXCEPTIONS", getattr(settings, "DJANGO_REDIS_IGNORE_EXCEPTIONS", False)
            )
        )
        self._log_ignored_exceptions: bool = getattr(
            settings, "DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS", False
        )
        self.logger: logging.Logger | None = (
            logging.getLogger(getattr(settings, "DJANGO_REDIS_LOGGER", __name__))
            if self._log_ignored_exceptions
            else None
        )
        # Built now, so LOCATION and every option are validated at once; sockets open on first
        # use. Refused settings are kept, not raised: Django's own system checks build every
        # cache, and ours (checks.py) must get to report them with an id. Any use raises them.
        # (Not `_client`: django-rq takes a cache's `_client` for a redis-py client, and
        # otherwise asks `get_master_client()`.)
        self.configuration_error: ImproperlyConfigured | None = None
        try:
            self._client_cls = import_option(
                options.get("CLIENT_CLASS", DEFAULT_CLIENT), "CLIENT_CLASS"
            )
        except ImproperlyConfigured as refused:
            self._refuse(refused)

    def _build(self, client_cls: type[DefaultClient]) -> None:
        self.configuration_error = None
        try:
            self._cache_client: DefaultClient = client_cls(self._server, self._params, self)
        except ImproperlyConfigured as refused:
            self._refuse(refused)

    def _refuse(self, refused: ImproperlyConfigured) -> None:
        self.configuration_error = refused
        self._cache_client = cast(DefaultClient, _Refused(str(refused)))

    @property
    def _client_cls(self) -> type[DefaultClient]:
        """django-redis's hook: the client class. A subclass that sets it after
        ``__init__`` (``self._client_cls = MyClient``) gets that class's client from then on,
        as django-redis builds its client from it on first use."""
        return self._built_cls

    @_client_cls.setter
    def _client_cls(self, client_cls: type[DefaultClient] | str) -> None:
        chosen: type[DefaultClient] = (
            import_option(client_cls, "CLIENT_CLASS") if isinstance(client_cls, str) else client_cls
        )
        self._built_cls = chosen
        self._build(chosen)

    @property
    def client(self) -> DefaultClient:
        return self._cache_client

    def get_master_client(self) -> Any:
        """redis-py's client for the primary (django-redis-cache's name, which django-rq and
        django-defender look for): ``client.get_client(write=True)``."""
        return self._cache_client.get_client(write=True)

    def _handle_failure(self, failure: ConnectionInterrupted) -> None:
        """Called inside an ``except ConnectionInterrupted``: unless ignoring, raise its cause
        (a ``ConnectionError``, ``TimeoutError`` or ``ResponseError`` of redis-py's, or one of
        their finer classes), as django-redis's cache does."""
        if not self._ignore_exceptions:
            raise redis_py_error(failure) from None
        self._ignored(failure)

    def _ignored(self, failure: BaseException) -> None:
        """Called inside the ``except`` that swallowed `failure` under IGNORE_EXCEPTIONS: count
        it by class (``metrics()["ignored_errors"]``) and log it when
        ``DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS`` says so."""
        if isinstance(failure, ConnectionInterrupted):
            failure = redis_py_error(failure)
        self._cache_client.note_ignored(type(failure).__name__)
        if self.logger is not None:
            self.logger.exception("Exception ignored")

    # The hot path, written out: no getattr, no argument packing.
    def get(
        self, key: Any, default: Any = None, version: int | None = None, client: Any = None
    ) -> Any:
        try:
            return self._cache_client.get(key, default, version)
        except ConnectionInterrupted as failure:
            self._handle_failure(failure)
            return default

    def delete(
        self, key: Any, version: int | None = None, prefix: str | None = None, client: Any = None
    ) -> bool:
        """Django expects a bool (django-redis's client returns the count)."""
        try:
            return bool(self._cache_client.delete(key, version, prefix))
        except ConnectionInterrupted as failure:
            self._handle_failure(failure)
            return False

    def delete_many(  # type: ignore[override]  # django-redis's count, where Django's is None
        self, keys: Iterable[Any], version: int | None = None, client: Any = None
    ) -> int | None:
        """The number of keys deleted (django-redis's); for no keys, None (Django's)."""
        keys = list(keys)
        return self._delete_many(keys, version) if keys else None

    @_unless_wrapped("delete_many")
    async def adelete_many(  # type: ignore[override]
        self, keys: Iterable[Any], version: int | None = None, client: Any = None
    ) -> int | None:
        keys = list(keys)
        return await self._adelete_many(keys, version) if keys else None

    def delete_pattern(self, *args: Any, **kwargs: Any) -> int:
        kwargs.setdefault("itersize", self._default_scan_itersize)
        try:
            return self._cache_client.delete_pattern(*args, **kwargs)
        except ConnectionInterrupted as failure:
            self._handle_failure(failure)
            return 0

    def close(self, **kwargs: Any) -> None:
        try:
            self._cache_client.close(**kwargs)
        except ConnectionInterrupted as failure:
            self._handle_failure(failure)

    @_unless_wrapped("get")
    async def aget(
        self, key: Any, default: Any = None, version: int | None = None, client: Any = None
    ) -> Any:
        try:
            return await self._cache_client.aget(key, default, version)
        except ConnectionInterrupted as failure:
            self._handle_failure(failure)
            return default

    @_unless_wrapped("delete")
    async def adelete(
        self, key: Any, version: int | None = None, prefix: str | None = None, client: Any = None
    ) -> bool:
        try:
            return bool(await self._cache_client.adelete(key, version, prefix))
        except ConnectionInterrupted as failure:
            self._handle_failure(failure)
            return False

    @_unless_wrapped("delete_pattern")
    async def adelete_pattern(self, *args: Any, **kwargs: Any) -> int:
        kwargs.setdefault("itersize", self._default_scan_itersize)
        try:
            result: int = await self._cache_client.adelete_pattern(*args, **kwargs)
            return result
        except ConnectionInterrupted as failure:
            self._handle_failure(failure)
            return 0

    async def aclose(self, **kwargs: Any) -> None:
        self.close(**kwargs)

    def get_or_set(
        self,
        key: Any,
        default: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        *,
        single_flight: bool = True,
    ) -> Any:
        """Django's ``get_or_set``; when several callers in this process miss the same key at
        once, only one calls `default` and the others wait for its result (README,
        "Single-flight"). ``single_flight=False`` opts this call out."""
        value = self.get(key, _MISSING, version=version)
        if value is not _MISSING:
            return value
        flight = self._flight(key, default, version, single_flight)
        if flight is None:
            return self._compute(key, default, timeout, version)
        if flight.leading:
            with flight.landing():
                flight.value = self._compute(key, default, timeout, version)
            return flight.value
        try:
            computed = flight.future.result(timeout=flight.wait)
        except FutureTimeout:  # the leader is slow: do as Django does
            return self._compute(key, default, timeout, version)
        if computed is flights.ABANDONED:
            return self.get_or_set(key, default, timeout, version)
        # Read it back: each caller gets its own copy, as from any get.
        return self.get(key, computed, version=version)

    @_unless_wrapped("get_or_set")
    async def aget_or_set(
        self,
        key: Any,
        default: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        *,
        single_flight: bool = True,
    ) -> Any:
        """The async twin of ``get_or_set``, single-flight across tasks and threads alike."""
        value = await self.aget(key, _MISSING, version=version)
        if value is not _MISSING:
            return value
        flight = self._flight(key, default, version, single_flight)
        if flight is None:
            return await self._acompute(key, default, timeout, version)
        if flight.leading:
            with flight.landing():
                flight.value = await self._acompute(key, default, timeout, version)
            return flight.value
        waiting = asyncio.shield(asyncio.wrap_future(flight.future))  # a timeout must not
        try:  # cancel the flight the others wait on
            computed = await asyncio.wait_for(waiting, flight.wait)
        except asyncio.TimeoutError:
            return await self._acompute(key, default, timeout, version)
        if computed is flights.ABANDONED:
            return await self.aget_or_set(key, default, timeout, version)
        return await self.aget(key, computed, version=version)

    def _flight(
        self, key: Any, default: Any, version: int | None, single_flight: bool
    ) -> flights.Flight | None:
        """The flight a miss of `key` joins, or None when this call computes on its own."""
        wait = self._cache_client.single_flight_timeout
        if not (single_flight and callable(default) and wait is not None):
            return None
        made = self.make_and_validate_key(key, version)
        return flights.join((self._cache_client.flight_scope, made), wait)

    def _compute(self, key: Any, default: Any, timeout: Any, version: int | None) -> Any:
        """Django's get_or_set after a miss: compute, add, and read back (another caller may
        have added a value meanwhile)."""
        if callable(default):
            default = default()
        self.add(key, default, timeout=timeout, version=version)
        return self.get(key, default, version=version)

    async def _acompute(self, key: Any, default: Any, timeout: Any, version: int | None) -> Any:
        # Not Django's aget_or_set: since Django 6.1 it hands an overridden get_or_set to a
        # thread, which would wait on this very flight.
        if callable(default):
            default = default()
        await self.aadd(key, default, timeout=timeout, version=version)
        return await self.aget(key, default, version=version)

    def metrics(self) -> dict[str, Any]:
        """Hits and misses, calls, errors and latency percentiles per Redis command, and the
        servers' connection counts and circuit state: read from counters, no I/O."""
        return self._cache_client.metrics()

    def reset_metrics(self) -> None:
        """Start this cache's counters afresh."""
        self._cache_client.reset_metrics()

    # Django's API
    set = _forward("set", False)
    add = _forward("add", False)
    touch = _forward("touch", False)
    _delete_many = _forward("delete_many", 0)
    _adelete_many = _forward("adelete_many", 0)
    has_key = _forward("has_key", False)
    get_many = _forward("get_many", EMPTY_DICT)
    set_many = _forward("set_many", UNSTORED_KEYS)
    incr = _forward("incr")
    decr = _forward("decr")
    incr_version = _forward("incr_version")
    decr_version = _forward("decr_version")
    clear = _forward("clear")
    # django-redis's extras
    lock = _forward("lock")
    alock = _forward("alock")
    keys = _forward("keys", EMPTY_LIST)
    iter_keys = _forward("iter_keys")
    aiter_keys = _forward("aiter_keys")
    sdiffstore = _forward("sdiffstore", 0)
    spop = _forward("spop")
    srandmember = _forward("srandmember")
    sscan = _forward("sscan", EMPTY_SET)
    sscan_iter = _forward("sscan_iter")
    asscan_iter = _forward("asscan_iter")
    hset = _forward("hset", 0)
    hgetall = _forward("hgetall", EMPTY_DICT)
    zadd = _forward("zadd", 0)
    zpopmax = _forward("zpopmax")
    zpopmin = _forward("zpopmin")
    zrange = _forward("zrange", EMPTY_LIST)
    zrangebyscore = _forward("zrangebyscore", EMPTY_LIST)
    zrank = _forward("zrank")
    zrevrange = _forward("zrevrange", EMPTY_LIST)
    zrevrangebyscore = _forward("zrevrangebyscore", EMPTY_LIST)
    lpop = _forward("lpop")
    rpop = _forward("rpop")


# The command table's methods (client/table.py), each answering its row's neutral value.
for _row in TABLE:
    setattr(RedisCache, _row.name, _forward(_row.name, _row.answer))


def _add_async_forwards(cls: type[RedisCache]) -> None:
    """Each forwarded method whose client has a native async twin (``a`` + name) gets a
    forwarded async twin too, with the same IGNORE_EXCEPTIONS behaviour; Django's
    ``sync_to_async`` defaults stay only where there is none."""
    for name, member in list(vars(cls).items()):
        twin = "a" + name
        if hasattr(member, "neutral") and twin not in vars(cls):
            if inspect.iscoroutinefunction(getattr(DefaultClient, twin, None)):
                setattr(cls, twin, _forward(twin, member.neutral))


_add_async_forwards(RedisCache)
_OURS.update((name, getattr(RedisCache, name)) for name in _TWINNED)
