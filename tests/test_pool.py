"""The connection pool under threads, fork, exhaustion, and with the server down or stalled."""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.test import override_settings

from django_redis_rs.cache import RedisCache
from django_redis_rs.client import DefaultClient
from tests.helpers import OUTAGE, RAW_CLIENT_METHODS


def pool_stats(cache: RedisCache) -> dict[str, Any]:
    return next(iter(cache.client._native.pool_stats().values()))


def test_threads_share_one_bounded_pool(make_cache) -> None:
    cache = make_cache(options={"CONNECTION_POOL_KWARGS": {"max_connections": 3}})
    peak = 0

    def work(n: int) -> None:
        nonlocal peak
        for i in range(100):
            cache.set(f"t{n}-{i}", (n, i))
            assert cache.get(f"t{n}-{i}") == (n, i)
            peak = max(peak, pool_stats(cache)["open"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert 1 <= peak <= 3
    assert pool_stats(cache)["open"] <= 3


def test_caches_with_the_same_settings_share_a_pool(make_cache) -> None:
    a, b = make_cache(), make_cache()
    c = make_cache(options={"SOCKET_TIMEOUT": 7})
    a.get("x")
    assert a.client._native.pool_stats() == b.client._native.pool_stats()
    assert (pool_stats(c)["open"], pool_stats(c)["idle"]) == (0, 0)  # other options: another pool


def test_fork_child_never_uses_the_parents_sockets(cache: RedisCache) -> None:
    raw = cache.client.get_native_client()
    parent_id = raw.execute_command("CLIENT", "ID")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 1
        try:
            child_id = raw.execute_command("CLIENT", "ID")
            cache.set("from-child", os.getpid())
            ok = child_id != parent_id and cache.get("from-child") == os.getpid()
            ok = ok and pool_stats(cache)["open"] == 1
            os.write(write, b"ok" if ok else f"bad {child_id} {parent_id}".encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 100) == b"ok"
    assert status == 0
    assert raw.execute_command("CLIENT", "ID") == parent_id  # the parent's socket still works
    assert cache.get("from-child") == pid


def test_multiprocessing_fork_children(make_cache) -> None:
    import multiprocessing

    global _inherited
    cache = make_cache(options={"CONNECTION_POOL_KWARGS": {"max_connections": 2}})
    cache.set("shared", 1)
    asyncio.run(cache.aset("async", 1))  # the parent's runtime and connections exist
    _inherited = cache  # the children inherit it through fork
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(3) as pool:
        results = pool.map(_child_incr, range(30))
        # Let the workers exit on their own: Pool.terminate (the with block's exit) can hang
        # on a fork pool whose idle worker holds the task queue's lock.
        pool.close()
        pool.join()
    assert sorted(n for n, _ in results) == list(range(2, 32))
    assert sorted(n for _, n in results) == list(range(2, 32))
    assert cache.get("shared") == 31
    assert asyncio.run(cache.aget("async")) == 31  # the parent's async side still works


_inherited: RedisCache | None = None


def _child_incr(_: int) -> tuple[int, int]:
    """In a forked child: sync and async calls on fresh connections, within max_connections."""
    assert _inherited is not None
    synced = _inherited.incr("shared")
    with ThreadPoolExecutor(4) as threads:
        list(threads.map(lambda _: _inherited.get("shared"), range(20)))  # type: ignore[union-attr]
    assert pool_stats(_inherited)["open"] <= 2
    return synced, asyncio.run(_inherited.aincr("async"))


def test_exhausted_pool_fails_after_the_pool_timeout(make_cache) -> None:
    cache = make_cache(options={"CONNECTION_POOL_KWARGS": {"max_connections": 1, "timeout": 0.2}})
    raw = cache.client.get_native_client()
    holder = threading.Thread(target=lambda: raw.execute_command("BLPOP", "never", 1))
    holder.start()
    time.sleep(0.1)
    started = time.monotonic()
    with pytest.raises(OUTAGE) as info:
        cache.get("k")
    elapsed = time.monotonic() - started
    holder.join()
    assert 0.15 < elapsed < 0.8
    assert "max_connections" in str(info.value)
    assert cache.get("k") is None  # the connection came back


def test_server_down_raises_connection_interrupted_fast(dead_url: str) -> None:
    cache = RedisCache(dead_url, {})
    started = time.monotonic()
    with pytest.raises(OUTAGE) as info:
        cache.get("k")
    assert time.monotonic() - started < 1
    cause = info.value
    assert isinstance(cause, ConnectionError)
    assert dead_url.split("//")[1] in str(cause)  # names the server


# Every public cache method, with arguments, and what it returns when failures are ignored.
API_CALLS: list[tuple[str, tuple[Any, ...], Any]] = [
    ("get", ("k",), None),
    ("set", ("k", 1), False),
    ("add", ("k", 1), False),
    ("touch", ("k",), False),
    ("delete", ("k",), False),
    ("delete_many", (["k"],), 0),
    ("has_key", ("k",), False),
    ("get_many", (["k"],), {}),
    ("set_many", ({"k": 1},), ["k"]),  # the keys not stored (Django's contract)
    ("incr", ("k",), None),
    ("decr", ("k",), None),
    ("incr_version", ("k",), None),
    ("decr_version", ("k",), None),
    ("clear", (), None),
    ("ttl", ("k",), None),
    ("pttl", ("k",), None),
    ("persist", ("k",), False),
    ("expire", ("k", 10), False),
    ("expire_at", ("k", 2_000_000_000), False),
    ("pexpire", ("k", 10), False),
    ("pexpire_at", ("k", 2_000_000_000_000), False),
    ("keys", ("*",), []),
    ("delete_pattern", ("*",), 0),
    ("sadd", ("s", 1), 0),
    ("scard", ("s",), 0),
    ("sdiff", ("s", "t"), set()),
    ("sdiffstore", ("d", "s"), 0),
    ("sinter", ("s", "t"), set()),
    ("sinterstore", ("d", "s"), 0),
    ("sismember", ("s", 1), False),
    ("smismember", ("s", 1), []),
    ("smembers", ("s",), set()),
    ("smove", ("s", "t", 1), False),
    ("spop", ("s",), None),
    ("srandmember", ("s",), None),
    ("srem", ("s", 1), 0),
    ("sscan", ("s",), set()),
    ("sunion", ("s", "t"), set()),
    ("sunionstore", ("d", "s"), 0),
    ("hset", ("h", "f", 1), 0),
    ("hdel", ("h", "f"), 0),
    ("hlen", ("h",), 0),
    ("hkeys", ("h",), []),
    ("hexists", ("h", "f"), False),
    ("hget", ("h", "f"), None),
    ("hgetall", ("h",), {}),
    ("zadd", ("z", {"a": 1}), 0),
    ("zcard", ("z",), 0),
    ("zcount", ("z", 0, 1), 0),
    ("zincrby", ("z", 1, "a"), None),
    ("zpopmax", ("z",), None),
    ("zpopmin", ("z",), None),
    ("zrange", ("z", 0, -1), []),
    ("zrangebyscore", ("z", 0, 1), []),
    ("zrank", ("z", "a"), None),
    ("zrem", ("z", "a"), 0),
    ("zremrangebyscore", ("z", 0, 1), 0),
    ("zrevrange", ("z", 0, -1), []),
    ("zrevrangebyscore", ("z", 1, 0), []),
    ("zrevrank", ("z", "a"), None),
    ("zscore", ("z", "a"), None),
    ("lpush", ("l", 1), 0),
    ("rpush", ("l", 1), 0),
    ("lpop", ("l",), None),
    ("rpop", ("l",), None),
    ("lrange", ("l", 0, -1), []),
    ("llen", ("l",), 0),
    ("lrem", ("l", 0, 1), 0),
    ("ltrim", ("l", 0, 1), False),
    ("lindex", ("l", 0), None),
]
ITERATORS = [("iter_keys", ("*",)), ("sscan_iter", ("s",))]


def test_the_api_list_covers_every_client_method() -> None:
    public = {
        name
        for name, member in inspect.getmembers(DefaultClient, inspect.isfunction)
        if not name.startswith("_")
        and not inspect.iscoroutinefunction(member)
        and not inspect.isasyncgenfunction(member)
    }
    not_io = {
        "make_key",
        "make_pattern",
        "encode",
        "decode",
        *RAW_CLIENT_METHODS,
        "close",
        "lock",
        "alock",
        "get_or_set",
        "metrics",
        "reset_metrics",
        "note_ignored",
    }
    covered = {name for name, _, _ in API_CALLS} | {name for name, _ in ITERATORS}
    assert public - not_io - covered == set()


@pytest.mark.parametrize(("method", "args", "neutral"), API_CALLS, ids=[c[0] for c in API_CALLS])
def test_every_method_raises_connection_interrupted_when_down(
    dead_url, method, args, neutral
) -> None:
    cache = RedisCache(dead_url, {})
    with pytest.raises(OUTAGE):
        getattr(cache, method)(*args)


@pytest.mark.parametrize(("method", "args", "neutral"), API_CALLS, ids=[c[0] for c in API_CALLS])
def test_ignore_exceptions_covers_every_method(dead_url, method, args, neutral) -> None:
    cache = RedisCache(dead_url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True}})
    assert getattr(cache, method)(*args) == neutral


@pytest.mark.parametrize(("method", "args"), ITERATORS)
def test_iterators_when_down(dead_url, method, args) -> None:
    with pytest.raises(OUTAGE):
        list(getattr(RedisCache(dead_url, {}), method)(*args))
    ignoring = RedisCache(dead_url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True}})
    assert list(getattr(ignoring, method)(*args)) == []


def test_lock_with_ignore_exceptions_is_never_acquired(dead_url) -> None:
    from django_redis_rs.exceptions import LockError

    cache = RedisCache(dead_url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True}})
    lock = cache.lock("L", timeout=1, blocking=False)
    assert lock.acquire() is False
    with pytest.raises(LockError):
        with cache.lock("L", blocking_timeout=0.05):
            pass
    with pytest.raises(OUTAGE):
        RedisCache(dead_url, {}).lock("L").acquire(blocking=False)


def test_ignored_exceptions_are_logged(dead_url, caplog) -> None:
    with override_settings(
        DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS=True, DJANGO_REDIS_LOGGER="drr.test"
    ):
        cache = RedisCache(dead_url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True}})
    with caplog.at_level("ERROR", logger="drr.test"):
        assert cache.get("k", "d") == "d"
    assert any(r.name == "drr.test" and "ignored" in r.message for r in caplog.records)


def test_global_ignore_exceptions_setting(dead_url) -> None:
    with override_settings(DJANGO_REDIS_IGNORE_EXCEPTIONS=True):
        assert RedisCache(dead_url, {}).get("k", 5) == 5
