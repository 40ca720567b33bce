"""Names that code written for django-redis imports or reads: `omit_exception` (the decorator
django-prometheus's cache subclass uses), `pool.get_connection_factory`, the `_client_cls` hook,
and the raw-connection lookups libraries try (`get_master_client()`; no `_client`, which
django-rq would take for a redis-py client)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import redis

from django_redis_rs.cache import RedisCache, omit_exception
from django_redis_rs.client import DefaultClient
from django_redis_rs.pool import (
    ConnectionFactory,
    SentinelConnectionFactory,
    get_connection_factory,
)
from tests.servers import Server

DEAD = "redis://127.0.0.1:1/0"


class Counted(RedisCache):
    """django-prometheus's cache class, written on ours: counts around the client's calls."""

    counts: Counter[str] = Counter()

    @omit_exception
    def get(self, key: Any, default: Any = None, version: Any = None, client: Any = None) -> Any:
        self.counts["get"] += 1
        try:
            value = self.client.get(key, default=None, version=version, client=client)
        except Exception:
            self.counts["fail"] += 1
            raise
        self.counts["hit" if value is not None else "miss"] += 1
        return default if value is None else value

    @omit_exception(return_value={"ignored": True})
    def get_many(self, keys: Any, version: Any = None, client: Any = None) -> Any:
        return self.client.get_many(keys, version=version)


def test_omit_exception_on_a_subclass_written_for_django_redis(server: Server) -> None:
    Counted.counts.clear()
    live = Counted(server.url, {})
    live.set("k", {"a": 1})
    assert live.get("k") == {"a": 1} and live.get("missing", "d") == "d"
    assert Counted.counts == Counter(get=2, hit=1, miss=1)
    forgiving = Counted(DEAD, {"OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_TIMEOUT": 1}})
    assert forgiving.get("k") is None
    assert forgiving.get_many(["k"]) == {"ignored": True}
    assert forgiving.metrics()["ignored_errors"] == {"ConnectionError": 2}
    strict = Counted(DEAD, {"OPTIONS": {"SOCKET_TIMEOUT": 1}})
    with pytest.raises(redis.exceptions.ConnectionError):
        strict.get("k")
    assert Counted.counts["fail"] == 2


def test_get_connection_factory(server: Server) -> None:
    factory = get_connection_factory(options={})
    assert type(factory) is ConnectionFactory
    client = factory.connect(server.url)
    assert isinstance(client, redis.Redis) and client.ping()
    sentinels = {"SENTINELS": [("127.0.0.1", 26379)]}
    named = get_connection_factory("django_redis.pool.SentinelConnectionFactory", sentinels)
    assert type(named) is SentinelConnectionFactory
    # OPTIONS' CONNECTION_FACTORY wins over the path, as in django-redis.
    chosen = get_connection_factory(
        "django_redis.pool.SentinelConnectionFactory",
        {**sentinels, "CONNECTION_FACTORY": "django_redis.pool.ConnectionFactory"},
    )
    assert type(chosen) is ConnectionFactory


class Recording(DefaultClient):
    calls: list[Any] = []

    def get(self, key: Any, default: Any = None, version: Any = None, client: Any = None) -> Any:
        self.calls.append(key)
        return super().get(key, default, version, client)


def test_client_cls_set_after_init_takes_effect(server: Server) -> None:
    class Custom(RedisCache):
        def __init__(self, server: Any, params: Any) -> None:
            super().__init__(server, params)
            self._client_cls = Recording  # a pattern of public code written for django-redis

    Recording.calls.clear()
    cache = Custom(server.url, {})
    assert type(cache.client) is Recording and cache._client_cls is Recording
    cache.set("k", 1)
    assert cache.get("k") == 1 and Recording.calls == ["k"]


def test_raw_connection_lookups_give_redis_py(server: Server) -> None:
    cache = RedisCache(server.url, {})
    assert not hasattr(cache, "_client")  # django-rq would take it for a redis-py client
    master = cache.get_master_client()
    assert isinstance(master, redis.Redis)
    cache.set("k", 5)
    assert master.get(cache.make_key("k")) == b"5"


# django-redis 7.0's public names that are not ours, and why (README lists them).
NOT_PROVIDED = {
    # Type variables and protocols of django-redis's own annotations: our classes are not
    # generic over their client, pool or parser types.
    "django_redis.cache.ClientType",
    "django_redis.client.default.CompressorType",
    "django_redis.client.default.ConnectionPoolType",
    "django_redis.client.default.RedisParserType",
    "django_redis.client.default.RedisType",
    "django_redis.client.default.SerializerType",
    "django_redis.pool.ConnectionPoolType",
    "django_redis.pool.ConnectionPoolType_co",
    "django_redis.pool.RedisParserType",
    "django_redis.pool.RedisParserType_co",
    "django_redis.pool.RedisType",
    "django_redis.pool.ConnectionFactoryProtocol",
    "django_redis.client.mixins.protocols.ClientProtocol",
    # How django-redis assembles its client: ours has the sorted-set methods on DefaultClient.
    "django_redis.client.mixins.sorted_sets.SortedSetMixin",
    # The ring is native (it places keys exactly as this class does).
    "django_redis.hash_ring.HashRing",
}
IMPORTED_THERE = {"TYPE_CHECKING", "settings", "DEFAULT_TIMEOUT", "annotations"}


def django_redis_public_names() -> list[str]:
    """Every name without a leading underscore that a django-redis module defines."""
    import importlib
    import inspect
    import pkgutil

    import django_redis

    found = []
    modules = [m.name for m in pkgutil.walk_packages(django_redis.__path__, "django_redis.")]
    for module_name in ["django_redis", *modules]:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or name in IMPORTED_THERE or inspect.ismodule(obj):
                continue
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ != module_name:
                continue  # imported there
            if getattr(obj, "__module__", None) in ("typing", "typing_extensions"):
                continue  # Literal, TypeAlias, …
            found.append(f"{module_name}.{name}")
    return sorted(found)


def test_every_public_name_of_django_redis_is_ours_or_listed() -> None:
    import importlib

    import django_redis

    if django_redis.VERSION[:2] != (7, 0):
        pytest.skip("the list is django-redis 7.0's (the Django 4.2 cells have 6.x)")

    names = django_redis_public_names()
    assert len(names) >= 45  # the walk found the modules
    missing = []
    for dotted in names:
        module_name, name = dotted.rsplit(".", 1)
        ours = "django_redis_rs" + module_name[len("django_redis") :]
        try:
            provided = hasattr(importlib.import_module(ours), name)
        except ImportError:
            provided = False
        if provided == (dotted in NOT_PROVIDED):
            missing.append(dotted)
    assert missing == [], "provided but listed, or missing and not listed"
