"""ShardClient placement and fan-out, HerdClient stampede protection, and one behavioural suite
run against every topology fixture (single server, unix socket, shards, herd)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django_redis.cache import RedisCache as DjangoRedisCache

from django_redis_rs.cache import RedisCache
from django_redis_rs.exceptions import ResponseError
from tests.servers import (
    SERVICE,
    SentinelDeployment,
    Server,
    server_binary,
    start_cluster,
    tls_server,
    wait_for,
)

SHARD_CLIENT = "django_redis_rs.client.ShardClient"
HERD_CLIENT = "django_redis_rs.client.HerdClient"
CLUSTER_CLIENT = "django_redis_rs.client.ClusterClient"


@pytest.fixture
def shards(server: Server) -> Iterator[list[Server]]:
    binary = server_binary(server.kind)
    assert binary is not None
    started = [Server(server.kind, binary).start() for _ in range(3)]
    yield started
    for srv in started:
        srv.cleanup()


def shard_cache(shards: list[Server], **params: Any) -> RedisCache:
    urls = [f"{s.url}/1" for s in shards]
    return RedisCache(urls, {"OPTIONS": {"CLIENT_CLASS": SHARD_CLIENT}, **params})


def test_keys_land_where_django_redis_puts_them(shards: list[Server]) -> None:
    urls = [f"{s.url}/1" for s in shards]
    theirs = DjangoRedisCache(
        urls, {"OPTIONS": {"CLIENT_CLASS": "django_redis.client.ShardClient"}}
    )
    ours = RedisCache(urls, {"OPTIONS": {"CLIENT_CLASS": "django_redis.client.ShardClient"}})
    for i in range(150):
        theirs.set(f"theirs-{i}", i)
        ours.set(f"ours-{i}", i)
    for i in range(150):
        # each side reads only the shard it computes: a hit proves the same placement
        assert ours.get(f"theirs-{i}") == i
        assert theirs.get(f"ours-{i}") == i
    counts = [len(RedisCache(url, {}).client.get_native_client().keys("*")) for url in urls]
    assert sum(counts) == 300 and all(c > 0 for c in counts), counts


def test_multi_key_operations_span_shards(shards: list[Server]) -> None:
    cache = shard_cache(shards)
    data = {f"k{i}": i for i in range(100)}
    assert cache.set_many(data) == []
    assert cache.get_many([*data, "missing"]) == data
    cache.set_many({"t1": 1, "t2": 2}, timeout=30)
    assert 20 < cache.ttl("t1") <= 30
    assert sorted(cache.keys("k*")) == sorted(data)
    assert sorted(cache.iter_keys("k*", itersize=7)) == sorted(data)
    assert cache.delete_many([f"k{i}" for i in range(50)]) == 50
    assert cache.delete_pattern("k*") == 50
    cache.set("x", 1)
    cache.clear()
    assert cache.keys("*") == []


def test_multi_key_commands_need_one_shard(shards: list[Server]) -> None:
    cache = shard_cache(shards)
    cache.sadd("{grp}a", 1, 2)
    cache.sadd("{grp}b", 2, 3)
    assert cache.sinter("{grp}a", "{grp}b") == {2}
    assert cache.smove("{grp}a", "{grp}b", 1) is True
    names = [f"s{i}" for i in range(20)]
    with pytest.raises(ResponseError, match="different shards"):
        cache.sunion(*names)


def test_incr_version_moves_between_shards(shards: list[Server]) -> None:
    cache = shard_cache(shards)
    for i in range(20):
        cache.set(f"v{i}", i, timeout=100)
        assert cache.incr_version(f"v{i}") == 2
        assert cache.get(f"v{i}", version=2) == i
        assert cache.get(f"v{i}") is None
        assert 90 < cache.ttl(f"v{i}", version=2) <= 100


def test_herd_serves_stale_values_to_all_but_one(make_cache) -> None:
    with override_settings(CACHE_HERD_TIMEOUT=100):
        cache = make_cache(options={"CLIENT_CLASS": HERD_CLIENT})
        cache.set("k", "v", timeout=1)
        assert 100 < cache.ttl("k") <= 101  # real expiry: timeout + CACHE_HERD_TIMEOUT
        assert cache.get("k") == "v"
        time.sleep(2.1)  # past the soft expiry, well inside the herd window
        results = [cache.get("k") for _ in range(2000)]
        assert "v" in results and None in results  # some refresh, most get the stale value
        assert results.count(None) < 1000
        with pytest.raises(NotImplementedError):
            cache.incr("k")


def test_herd_roundtrip_and_plain_timeouts(make_cache) -> None:
    cache = make_cache(options={"CLIENT_CLASS": HERD_CLIENT})
    cache.set_many({"a": 1, "b": [2]}, timeout=60)
    assert cache.get_many(["a", "b"]) == {"a": 1, "b": [2]}
    cache.set("forever", "x", timeout=None)
    assert cache.ttl("forever") is None and cache.get("forever") == "x"
    assert cache.add("forever", "y") is False
    assert cache.touch("forever", 50) is True
    assert cache.get("forever") == "x"


# ---- one behavioural suite, every topology ---------------------------------------------------


class ReadYourWrites(RedisCache):
    """Reads go to the replica, which lags its primary a little. For a suite that reads its
    own writes, each write waits for the replica (WAIT, on the connection that wrote: a
    single-threaded caller gets the same pooled connection back)."""

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if (
            name.startswith("_")
            or name in ("get", "get_many", "has_key", "client", "key_func")
            or not callable(attr)
        ):
            return attr
        raw = super().__getattribute__("client").get_native_client(write=True)

        def then_wait(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if inspect.iscoroutine(result):
                return awaited_then_wait(result)
            raw.execute_command("WAIT", 1, 2000)
            return result

        async def awaited_then_wait(coroutine: Any) -> Any:
            result = await coroutine
            # the async path writes on its multiplexed connection: ask that one to WAIT
            await cache_native.aexecute(True, ("WAIT", 1, 2000))
            return result

        cache_native = super().__getattribute__("client")._native
        return then_wait


TOPOLOGIES = ["single", "replicas", "unix", "tls", "shards", "herd", "sentinel", "cluster"]


@pytest.fixture(params=TOPOLOGIES)
def any_cache(
    request: pytest.FixtureRequest,
    server: Server,
    make_cache: Callable[..., RedisCache],
    certs: Path,
) -> Iterator[RedisCache]:
    kind = request.param
    if kind == "single":
        yield make_cache()
    elif kind == "unix":
        yield make_cache(f"unix://{server.unix_socket}?db=2")
    elif kind == "herd":
        yield make_cache(options={"CLIENT_CLASS": HERD_CLIENT})
    elif kind == "tls":
        srv = tls_server(server.kind, certs, "no")
        try:
            pool = {"ssl_ca_certs": str(certs / "ca.pem")}
            yield make_cache(f"rediss://localhost:{srv.tls_port}", {"CONNECTION_POOL_KWARGS": pool})
        finally:
            srv.cleanup()
    elif kind == "replicas":
        binary = server_binary(server.kind)
        assert binary is not None
        primary = Server(server.kind, binary, extra=["--repl-diskless-sync-delay", "0"]).start()
        replica = Server(server.kind, binary, extra=["--replicaof", "127.0.0.1", str(primary.port)])
        replica.start()
        try:
            wait_for(
                lambda: b"master_link_status:up" in replica.command("INFO", "replication"),
                "the replica to sync",
            )
            yield ReadYourWrites([primary.url, replica.url], {})
        finally:
            replica.cleanup()
            primary.cleanup()
    elif kind == "sentinel":
        binary = server_binary(server.kind)
        assert binary is not None
        deployment = SentinelDeployment(server.kind, binary)
        try:
            # Reads from the primary: replicas lag, and this suite reads its own writes.
            yield make_cache(f"redis://{SERVICE}/0?is_master=1", options=deployment.options())
        finally:
            deployment.cleanup()
    elif kind == "cluster":
        binary = server_binary(server.kind)
        assert binary is not None
        nodes = start_cluster(server.kind, binary)
        try:
            yield make_cache(nodes[0].url, options={"CLIENT_CLASS": CLUSTER_CLIENT})
        finally:
            for srv in nodes:
                srv.cleanup()
    else:
        binary = server_binary(server.kind)
        assert binary is not None
        started = [Server(server.kind, binary).start() for _ in range(3)]
        try:
            yield shard_cache(started)
        finally:
            for srv in started:
                srv.cleanup()


def test_behaviour(any_cache: RedisCache) -> None:
    cache = any_cache
    cache.clear()
    assert cache.set("a", {"x": 1}) is True
    assert cache.get("a") == {"x": 1}
    assert cache.add("a", 2) is False
    assert cache.has_key("a") and "a" in cache
    assert cache.get_or_set("b", lambda: "computed") == "computed"
    cache.set_many({f"m{i}": i for i in range(30)})
    assert cache.get_many([f"m{i}" for i in range(30)]) == {f"m{i}": i for i in range(30)}
    assert cache.delete_many([f"m{i}" for i in range(10)]) == 10
    assert cache.touch("a", 100) is True
    assert 90 < (cache.ttl("a") or 0) <= 200
    assert cache.delete("a") is True
    assert cache.get("a", "gone") == "gone"
    assert sorted(cache.keys("m*")) == sorted(f"m{i}" for i in range(10, 30))
    assert cache.delete_pattern("m*") == 20
    assert cache.incr_version("b") == 2
    assert cache.get("b", version=2) == "computed"
    with cache.lock("L", timeout=5):
        assert cache.has_key("L")
    assert cache.sadd("{t}s1", 1) == 1 and cache.sunion("{t}s1", "{t}s2") == {1}
    assert cache.sadd("s", 1, 2) == 2 and cache.smembers("s") == {1, 2}
    assert cache.hset("h", "f", "v") == 1 and cache.hgetall("h") == {"f": "v"}
    assert cache.zadd("z", {"m": 1.5}) == 1 and cache.zrange("z", 0, -1, withscores=True) == [
        ("m", 1.5)
    ]
    assert cache.rpush("l", 1, 2) == 2 and cache.lrange("l", 0, -1) == [1, 2]
    cache.clear()
    assert cache.keys("*") == []


def test_async_behaviour(any_cache: RedisCache) -> None:
    """The same behaviour through the async API."""
    cache = any_cache

    async def scenario() -> None:
        await cache.aclear()
        assert await cache.aset("a", {"x": 1}) is True
        assert await cache.aget("a") == {"x": 1}
        assert await cache.aadd("a", 2) is False
        assert await cache.ahas_key("a")
        assert await cache.aget_or_set("b", lambda: "computed") == "computed"
        await cache.aset_many({f"m{i}": i for i in range(30)})
        assert await cache.aget_many([f"m{i}" for i in range(30)]) == {
            f"m{i}": i for i in range(30)
        }
        assert await cache.adelete_many([f"m{i}" for i in range(10)]) == 10
        assert await cache.atouch("a", 100) is True
        assert 90 < (await cache.attl("a") or 0) <= 200
        assert await cache.adelete("a") is True
        assert await cache.aget("a", "gone") == "gone"
        assert sorted(await cache.akeys("m*")) == sorted(f"m{i}" for i in range(10, 30))
        assert sorted([k async for k in cache.aiter_keys("m*")]) == sorted(
            f"m{i}" for i in range(10, 30)
        )
        assert await cache.adelete_pattern("m*") == 20
        async with cache.alock("L", timeout=5):
            assert await cache.ahas_key("L")
        assert await cache.asadd("s", 1, 2) == 2 and await cache.asmembers("s") == {1, 2}
        assert await cache.asadd("{t}s1", 1) == 1
        assert await cache.asunion("{t}s1", "{t}s2") == {1}
        assert await cache.ahset("h", "f", "v") == 1 and await cache.ahgetall("h") == {"f": "v"}
        assert await cache.azadd("z", {"m": 1.5}) == 1
        assert await cache.azrange("z", 0, -1, withscores=True) == [("m", 1.5)]
        assert await cache.arpush("l", 1, 2) == 2 and await cache.alrange("l", 0, -1) == [1, 2]
        await cache.aclear()
        assert await cache.akeys("*") == []

    asyncio.run(scenario())
