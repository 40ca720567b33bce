"""The redis-py clients that ``get_redis_connection()`` and ``cache.client.get_client()`` return.

They are built from the cache's own settings as django-redis's connection factories build them
(``LOCATION``, ``USERNAME``, ``PASSWORD``, ``SOCKET_TIMEOUT``, ``SOCKET_CONNECT_TIMEOUT``,
``CONNECTION_POOL_KWARGS``, ``CONNECTION_POOL_CLASS``, ``CONNECTION_POOL_CLASS_KWARGS``,
``REDIS_CLIENT_CLASS``, ``REDIS_CLIENT_KWARGS``, ``PARSER_CLASS``, ``SENTINEL_KWARGS``), with the
same class names, so a ``CONNECTION_FACTORY`` written for django-redis's interface plugs in.
django-redis's paths ``django_redis.pool.ConnectionFactory`` and ``SentinelConnectionFactory``
name the classes below.

Two differences from django-redis: pools are shared by every cache configured alike in a process
and keyed by all their parameters (django-redis keys them by URL alone, so two caches with
different credentials on one URL share a pool), and a forked child makes its own.

The cache itself never uses these clients: its commands go through the native pools. This
module imports redis-py (or valkey-py) only when a raw client is first asked for.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from django_redis_rs.exceptions import SettingError
from django_redis_rs.options import import_option, pop_flag


@dataclass(frozen=True)
class Library:
    """Where the client library's classes live: redis-py's, or valkey-py's (django-redis's
    Valkey client)."""

    package: str
    client: str
    pool: str
    parser: str
    sentinel: str
    sentinel_pool: str
    cluster: str
    cluster_node: str

    def load(self, path: str) -> Any:
        try:
            return import_string(path)
        except ImportError as e:
            raise ImproperlyConfigured(
                f"The raw client needs {self.package} (pip install {self.package}): {e}"
            ) from None


def _library(package: str, client: str, cluster: str) -> Library:
    """redis-py and valkey-py lay their classes out alike; only these names differ."""
    return Library(
        package=package,
        client=f"{package}.client.{client}",
        pool=f"{package}.connection.ConnectionPool",
        parser=f"{package}.connection.DefaultParser",
        sentinel=f"{package}.sentinel.Sentinel",
        sentinel_pool=f"{package}.sentinel.SentinelConnectionPool",
        cluster=f"{package}.cluster.{cluster}",
        cluster_node=f"{package}.cluster.ClusterNode",
    )


REDIS_PY = _library("redis", "Redis", "RedisCluster")
VALKEY_PY = _library("valkey", "Valkey", "ValkeyCluster")

# Process-wide: pools and Sentinel managers by every parameter that made them. A forked child
# starts afresh (redis-py's pools also check their pid, but our map would hand the child the
# parent's objects, and their locks).
_shared: dict[Any, Any] = {}
_shared_pid = os.getpid()
# Reentrant: making a Sentinel pool makes (or finds) the shared Sentinel manager.
_shared_lock = threading.RLock()


def _shared_object(key: Any, make: Any) -> Any:
    global _shared_pid, _shared_lock
    if _shared_pid != os.getpid():
        _shared.clear()
        _shared_lock = threading.RLock()  # a parent thread may have held the old one
        _shared_pid = os.getpid()
    with _shared_lock:
        if key not in _shared:
            _shared[key] = make()
        return _shared[key]


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a parameter value (dicts, lists, classes)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set)):
        return tuple(_frozen(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def redis_py_url(url: str) -> str:
    """LOCATION's URL in the form redis-py parses: ``valkey(s)://`` is ``redis(s)://``."""
    for ours, theirs in (("valkey://", "redis://"), ("valkeys://", "rediss://")):
        if url.startswith(ours):
            return theirs + url[len(ours) :]
    return url


def _is_tls(url: str) -> bool:
    return url.startswith("rediss://")


class ConnectionFactory:
    """django-redis's ``ConnectionFactory``: ``connect(url)`` gives a client on a pool made from
    the URL and the cache's OPTIONS."""

    library = REDIS_PY

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = options
        lib = self.library
        self.pool_cls = lib.load(options.get("CONNECTION_POOL_CLASS") or self.default_pool())
        self.pool_cls_kwargs: dict[str, Any] = {
            **(options.get("CONNECTION_POOL_KWARGS") or {}),
            **(options.get("CONNECTION_POOL_CLASS_KWARGS") or {}),
        }
        self.redis_client_cls = lib.load(options.get("REDIS_CLIENT_CLASS") or lib.client)
        self.redis_client_cls_kwargs: dict[str, Any] = dict(
            options.get("REDIS_CLIENT_KWARGS") or {}
        )
        # What else, beyond the pool's parameters, tells two pools apart (the sentinels).
        self.pool_identity: tuple[Any, ...] = ()

    def default_pool(self) -> str:
        return self.library.pool

    def get_parser_cls(self) -> Any:
        return self.library.load(self.options.get("PARSER_CLASS") or self.library.parser)

    def make_connection_params(self, url: str) -> dict[str, Any]:
        """The URL and what OPTIONS add to it, as django-redis passes them to the pool."""
        params: dict[str, Any] = {"url": redis_py_url(url), "parser_class": self.get_parser_cls()}
        for option in ("USERNAME", "PASSWORD"):
            if self.options.get(option):
                params[option.lower()] = self.options[option]
        for option in ("SOCKET_TIMEOUT", "SOCKET_CONNECT_TIMEOUT"):
            value = self.options.get(option)  # checked by the native client
            if value:
                params[option.lower()] = float(value)
        return params

    def connect(self, url: str) -> Any:
        return self.get_connection(self.make_connection_params(url))

    def disconnect(self, connection: Any) -> None:
        pool = getattr(connection, "connection_pool", None)
        if pool is None:  # a cluster client: a pool per node
            connection.close()
        else:
            pool.disconnect()

    def get_connection(self, params: dict[str, Any]) -> Any:
        # `?single_connection_client=` is the client's, not the pool's (whose connections
        # would refuse it).
        url, single = pop_flag(params["url"], "single_connection_client")
        pool = self.get_or_create_connection_pool({**params, "url": url})
        kwargs = dict(self.redis_client_cls_kwargs)
        if single is not None:
            kwargs["single_connection_client"] = single
        return self.redis_client_cls(connection_pool=pool, **kwargs)

    def get_or_create_connection_pool(self, params: dict[str, Any]) -> Any:
        key: tuple[Any, ...] = (type(self), self.pool_cls, _frozen(params))
        key += (_frozen(self.pool_cls_kwargs), *self.pool_identity)
        return _shared_object(key, lambda: self.get_connection_pool(params))

    def get_connection_pool(self, params: dict[str, Any]) -> Any:
        kwargs = {**params, **self.pool_kwargs(params["url"])}
        return self.pool_cls.from_url(**kwargs)

    def pool_kwargs(self, url: str) -> dict[str, Any]:
        """CONNECTION_POOL_KWARGS as this pool class takes them. Two are the native pool's and
        dropped where redis-py would refuse them: ``timeout`` (a wait for a free connection:
        only blocking pools have one) and the ``ssl_*`` options on a URL without TLS."""
        kwargs = dict(self.pool_cls_kwargs)
        if "timeout" in kwargs and "timeout" not in inspect.signature(self.pool_cls).parameters:
            del kwargs["timeout"]
        if not _is_tls(url):
            kwargs = {k: v for k, v in kwargs.items() if not k.startswith("ssl_")}
        return kwargs

    def connect_cluster(self, urls: list[str]) -> Any:
        """A cluster client seeded with every LOCATION node (``ClusterClient``)."""
        lib = self.library
        cluster_cls = lib.load(self.options.get("REDIS_CLIENT_CLASS") or lib.cluster)
        node_cls = lib.load(lib.cluster_node)
        first, *others = [redis_py_url(url) for url in urls]
        params = self.make_connection_params(first)
        params.pop("url")
        seeds = [urlsplit(url) for url in others]
        return cluster_cls.from_url(
            first,
            startup_nodes=[node_cls(s.hostname, s.port or 6379) for s in seeds] or None,
            **params,
            **self.pool_kwargs(first),
            **self.redis_client_cls_kwargs,
        )


class SentinelConnectionFactory(ConnectionFactory):
    """django-redis's ``SentinelConnectionFactory``: ``LOCATION`` names the service
    (``redis://SERVICE/db``, ``?is_master=0`` for a replica), ``SENTINELS`` the sentinels."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        sentinels = options.get("SENTINELS")
        if not sentinels:
            raise SettingError("SENTINELS", "SENTINELS must be provided as a list of (host, port).")
        self.sentinels = [tuple(s) for s in sentinels]
        self.sentinel_kwargs = dict(options.get("SENTINEL_KWARGS") or {})
        if self.sentinel_kwargs.get("ssl") and not any(
            name.startswith("ssl_") for name in self.sentinel_kwargs
        ):
            # TLS to the sentinels verified like the data connections, as the cache does.
            tls = {k: v for k, v in self.pool_cls_kwargs.items() if k.startswith("ssl_")}
            self.sentinel_kwargs.update(tls)
        self.pool_identity = (_frozen(self.sentinels), _frozen(self.sentinel_kwargs))

    def default_pool(self) -> str:
        return self.library.sentinel_pool

    def sentinel(self) -> Any:
        """The Sentinel manager, shared like the pools; redis-py asks its sentinels with the
        connection options of the servers too, as django-redis sets it up."""
        params = self.make_connection_params("")
        params.pop("url")
        params.update(self.pool_kwargs(""))
        key = ("sentinel", self.library, *self.pool_identity, _frozen(params))
        sentinel_cls = self.library.load(self.library.sentinel)
        return _shared_object(
            key,
            lambda: sentinel_cls(self.sentinels, sentinel_kwargs=self.sentinel_kwargs, **params),
        )

    def get_connection_pool(self, params: dict[str, Any]) -> Any:
        url, is_master = pop_flag(params["url"], "is_master")
        kwargs = {
            **params,
            **self.pool_kwargs(url),
            "url": url,
            "service_name": urlsplit(url).hostname,
            "sentinel_manager": self.sentinel(),
        }
        if is_master is not None:
            kwargs["is_master"] = is_master
        return self.pool_cls.from_url(**kwargs)


class ValkeyConnectionFactory(ConnectionFactory):
    """``ConnectionFactory`` with valkey-py's classes (django-redis's Valkey client)."""

    library = VALKEY_PY


class ValkeySentinelConnectionFactory(SentinelConnectionFactory):
    library = VALKEY_PY


_FACTORIES = {
    (REDIS_PY, False): ConnectionFactory,
    (REDIS_PY, True): SentinelConnectionFactory,
    (VALKEY_PY, False): ValkeyConnectionFactory,
    (VALKEY_PY, True): ValkeySentinelConnectionFactory,
}


def connection_factory(
    options: Mapping[str, Any], library: Library, sentinel: bool
) -> ConnectionFactory:
    """The factory for a cache's raw clients: ``CONNECTION_FACTORY`` (or
    ``DJANGO_REDIS_CONNECTION_FACTORY``) when it names a class of your own, else ours for the
    client library and topology (the Sentinel one when the cache uses Sentinel)."""
    from django.conf import settings

    path = options.get("CONNECTION_FACTORY") or getattr(
        settings, "DJANGO_REDIS_CONNECTION_FACTORY", None
    )
    chosen = _FACTORIES[library, sentinel]
    if path:
        named = import_option(path, "CONNECTION_FACTORY")
        if named not in _FACTORIES.values():
            chosen = named
    factory: ConnectionFactory = chosen(dict(options))
    return factory


def get_connection_factory(
    path: str | None = None, options: Mapping[str, Any] | None = None
) -> ConnectionFactory:
    """django-redis's: the factory ``options``' ``CONNECTION_FACTORY`` names, else `path`, else
    ``DJANGO_REDIS_CONNECTION_FACTORY``, else ``ConnectionFactory``, made with `options`
    (django-redis's dotted paths name ours)."""
    from django.conf import settings

    options = dict(options or {})
    path = (
        options.get("CONNECTION_FACTORY")
        or path
        or getattr(settings, "DJANGO_REDIS_CONNECTION_FACTORY", None)
        or "django_redis_rs.pool.ConnectionFactory"
    )
    factory: ConnectionFactory = import_option(path, "CONNECTION_FACTORY")(options)
    return factory


__all__ = [
    "ConnectionFactory",
    "SentinelConnectionFactory",
    "ValkeyConnectionFactory",
    "ValkeySentinelConnectionFactory",
    "connection_factory",
    "get_connection_factory",
    "redis_py_url",
]
