"""CLEAR_SCOPE: clear() deletes only this cache's keys (by prefix, or prefix and version) with
SCAN + UNLINK on every primary; the default stays FLUSHDB, as in django-redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_redis_rs.cache import RedisCache
from tests.servers import Server, server_binary, start_cluster


def fill(make: Callable[..., RedisCache], scope: str | None) -> dict[str, RedisCache]:
    options = {"CLEAR_SCOPE": scope} if scope else {}
    caches = {
        "app": make(KEY_PREFIX="app", options=options),
        "app-v2": make(KEY_PREFIX="app", VERSION=2, options=options),
        "other": make(KEY_PREFIX="other", options=options),
        "longer": make(KEY_PREFIX="app:other", options=options),  # "app" must not reach it
        "none": make(options=options),  # empty prefix
    }
    for name, cache in caches.items():
        cache.set_many({f"{name}-{i}": i for i in range(30)})
    raw = caches["app"].client.get_native_client()
    raw.set("foreign", "written by something else")
    return caches


def left(caches: dict[str, RedisCache]) -> dict[str, int]:
    return {
        name: len(cache.get_many([f"{name}-{i}" for i in range(30)]))
        for name, cache in caches.items()
    }


@pytest.fixture(params=["single", "shards", "cluster"])
def make(
    request: pytest.FixtureRequest, server: Server, make_cache: Callable[..., RedisCache]
) -> Iterator[Callable[..., RedisCache]]:
    if request.param == "single":
        yield make_cache
        return
    binary = server_binary(server.kind)
    assert binary is not None
    if request.param == "shards":
        nodes = [Server(server.kind, binary).start() for _ in range(3)]
        location: Any = [n.url for n in nodes]
        client = "django_redis_rs.client.ShardClient"
    else:
        nodes = start_cluster(server.kind, binary)
        location = nodes[0].url
        client = "django_redis_rs.client.ClusterClient"

    def on_nodes(options: dict[str, Any] | None = None, **params: Any) -> RedisCache:
        return make_cache(location, {"CLIENT_CLASS": client, **(options or {})}, **params)

    try:
        yield on_nodes
    finally:
        for node in nodes:
            node.cleanup()


def test_prefix_scope(make: Callable[..., RedisCache]) -> None:
    caches = fill(make, "prefix")
    caches["app"].clear()
    assert left(caches) == {"app": 0, "app-v2": 0, "other": 30, "longer": 30, "none": 30}
    assert caches["other"].client.get_native_client().get("foreign") == b"written by something else"


def test_version_scope(make: Callable[..., RedisCache]) -> None:
    caches = fill(make, "version")
    caches["app-v2"].clear()
    assert left(caches) == {"app": 30, "app-v2": 0, "other": 30, "longer": 30, "none": 30}


def test_async_clear_is_scoped_too(make: Callable[..., RedisCache]) -> None:
    caches = fill(make, "prefix")
    asyncio.run(caches["other"].aclear())
    assert left(caches) == {"app": 30, "app-v2": 30, "other": 0, "longer": 30, "none": 30}


def test_the_default_flushes_the_database(make_cache: Callable[..., RedisCache]) -> None:
    caches = fill(make_cache, None)
    caches["app"].clear()
    assert left(caches) == dict.fromkeys(caches, 0)
    assert caches["app"].client.get_native_client().get("foreign") is None


def test_a_custom_key_function(make_cache: Callable[..., RedisCache]) -> None:
    options = {"CLEAR_SCOPE": "prefix"}
    mine = make_cache(KEY_PREFIX="p", KEY_FUNCTION=lambda k, p, v: f"{p}|{v}|{k}", options=options)
    theirs = make_cache(KEY_PREFIX="q", options=options)
    mine.set("a", 1)
    theirs.set("a", 2)
    mine.clear()
    assert (mine.get("a"), theirs.get("a")) == (None, 2)


def test_a_bad_scope_names_the_option() -> None:
    with pytest.raises(ImproperlyConfigured, match="CLEAR_SCOPE"):
        RedisCache("redis://127.0.0.1:1", {"OPTIONS": {"CLEAR_SCOPE": "all"}}).get("k")
