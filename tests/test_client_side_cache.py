"""CLIENT_SIDE_CACHE: values read are kept in process memory and dropped when Redis reports a
change (CLIENT TRACKING, broadcast mode) — writes by other clients and processes, expiries,
flushes — bounded in entries and bytes, flushed while the invalidation connection is down."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from django_redis_rs.cache import RedisCache
from tests.servers import Server


def local(cache: RedisCache) -> dict[str, Any]:
    return cache.metrics()["client_side_cache"]  # type: ignore[no-any-return]


def wait_until(check: Callable[[], bool], seconds: float = 5.0) -> float:
    """Seconds until `check()` held (fails the test after `seconds`)."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > seconds:
            pytest.fail(f"still not true after {seconds} s")
        time.sleep(0.001)
    return time.perf_counter() - started


def drained(cache: RedisCache) -> None:
    """Wait until the invalidations of this process's writes so far have been applied. The
    server sends them in order on one connection: once the message for a marker written now
    is counted, every earlier one was applied."""
    cache.get("drain-marker")  # starts the listener, if this is the cache's first read
    wait_until(lambda: local(cache)["live"])
    before = local(cache)["invalidations"]
    cache.set("drain-marker", 1)
    wait_until(lambda: local(cache)["invalidations"] > before)


def kept(cache: RedisCache, key: str) -> None:
    """Read `key` until the local cache keeps it. Without `drained`, the server's
    invalidation of this process's own write could arrive after the read was kept, and
    evict it under the test's feet."""
    drained(cache)

    def held() -> bool:
        hits = local(cache)["hits"]
        cache.get(key)
        cache.get(key)
        return bool(local(cache)["hits"] > hits)

    wait_until(held, seconds=1.0)


@pytest.fixture
def cached(make_cache: Callable[..., RedisCache]) -> RedisCache:
    cache = make_cache(KEY_PREFIX="csc", options={"CLIENT_SIDE_CACHE": {"ttl": 30}})
    cache.get("warm-up")  # starts the listener
    wait_until(lambda: local(cache)["live"])
    return cache


def test_reads_are_served_locally(cached: RedisCache) -> None:
    cached.set("k", {"a": 1})
    assert cached.get("k") == {"a": 1}
    kept(cached, "k")
    hits, calls = local(cached)["hits"], cached.metrics()["commands"]["GET"]["calls"]
    first = cached.get("k")
    second = cached.get("k")
    assert first == second == {"a": 1}
    assert first is not second  # each get decodes its own copy
    assert local(cached)["hits"] == hits + 2
    assert cached.metrics()["commands"]["GET"]["calls"] == calls  # no trip to Redis

    async def twice() -> list[Any]:
        return [await cached.aget("k"), await cached.aget("k")]

    assert asyncio.run(twice()) == [{"a": 1}] * 2
    assert local(cached)["hits"] == hits + 4


def test_get_many_is_served_locally_too(
    cached: RedisCache, make_cache: Callable[..., RedisCache]
) -> None:
    values = {"a": 1, "b": [2], "c": "3"}
    cached.set_many(values)
    drained(cached)

    def all_kept() -> bool:
        assert cached.get_many([*values, "absent"]) == values
        return bool(local(cached)["entries"] >= 3)

    wait_until(all_kept, seconds=1.0)
    hits, mgets = local(cached)["hits"], cached.metrics()["commands"]["MGET"]["calls"]
    assert cached.get_many(["a", "b", "c", "absent"]) == values
    assert local(cached)["hits"] == hits + 3
    assert cached.metrics()["commands"]["MGET"]["calls"] == mgets + 1  # for "absent" alone
    assert cached.get_many(["a", "b"]) == {"a": 1, "b": [2]}
    assert cached.metrics()["commands"]["MGET"]["calls"] == mgets + 1  # no trip at all
    assert asyncio.run(cached.aget_many(["a", "c"])) == {"a": 1, "c": "3"}
    assert cached.metrics()["commands"]["MGET"]["calls"] == mgets + 1

    other = make_cache(KEY_PREFIX="csc")  # another client, no local cache
    other.set("b", "changed")
    wait_until(lambda: cached.get_many(["a", "b"]) == {"a": 1, "b": "changed"}, seconds=1.0)
    other.delete("a")
    wait_until(lambda: asyncio.run(cached.aget_many(["a", "b"])) == {"b": "changed"}, seconds=1.0)
    cached.set("c", "mine")  # this process's own write: seen at once, by both
    assert cached.get_many(["c"]) == {"c": "mine"}
    assert asyncio.run(cached.aget_many(["c"])) == {"c": "mine"}


def test_a_write_from_another_process_is_seen(cached: RedisCache, server: Server) -> None:
    """redis-cli, another process, writes the key: the next get sees it within milliseconds."""
    cached.set("n", 1)
    kept(cached, "n")
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli is not installed")
    key = cached.make_and_validate_key("n")
    invalidations = local(cached)["invalidations"]
    subprocess.run([cli, "-p", str(server.port), "SET", key, "2"], check=True, capture_output=True)
    delay = wait_until(lambda: cached.get("n") == 2, seconds=1.0)
    assert delay < 0.1
    assert local(cached)["invalidations"] > invalidations  # the message that said so


def test_writes_by_other_clients_expiries_and_flushes(
    cached: RedisCache, make_cache: Callable[..., RedisCache], server: Server
) -> None:
    other = make_cache(KEY_PREFIX="csc")  # another client, no local cache
    delays = []
    for i in range(50):
        cached.set("k", i)
        assert cached.get("k") == i
        other.set("k", i + 1000)
        delays.append(wait_until(lambda i=i: cached.get("k") == i + 1000, seconds=1.0))
    assert max(delays) < 0.1
    # An expiry by Django's timeout holds locally: Redis's remaining TTL bounds the copy.
    cached.set("short", "v", timeout=0.3)
    assert cached.get("short") == "v"
    time.sleep(0.35)
    assert cached.get("short") is None
    # FLUSHDB by someone else empties the local cache.
    cached.set("f", "v")
    assert cached.get("f") == "v"
    server.command("FLUSHDB")
    wait_until(lambda: cached.get("f") is None, seconds=1.0)


def test_this_process_reads_its_own_writes(cached: RedisCache) -> None:
    for i in range(300):
        cached.set("mine", i)
        assert cached.get("mine") == i
        cached.incr("mine")
        assert cached.get("mine") == i + 1
    cached.set_many({"a": 1, "b": 2})
    assert cached.get("a") == 1
    cached.delete_many(["a", "b"])
    assert cached.get("a") is None
    cached.set("c", 1)
    assert cached.get("c") == 1
    cached.client.get_native_client().set(cached.make_and_validate_key("c"), b"2")
    assert cached.get("c") == 2


def test_concurrent_writers_never_leave_a_stale_copy(
    cached: RedisCache, make_cache: Callable[..., RedisCache]
) -> None:
    """Reads racing writes from another client: once the writes stop, the reader converges
    on the last value (a read that was in flight during an invalidation is not kept)."""
    other = make_cache(KEY_PREFIX="csc")
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            other.set("hot", i)
        other.set("hot", -1)

    readers_done = threading.Event()

    def read() -> None:
        while not readers_done.is_set():
            cached.get("hot")

    def read_many() -> None:
        while not readers_done.is_set():
            cached.get_many(["hot", "cold"])

    threads = [threading.Thread(target=write)] + [
        threading.Thread(target=reader) for reader in (read, read, read_many)
    ]
    for t in threads:
        t.start()
    time.sleep(1.0)
    stop.set()
    threads[0].join()
    wait_until(lambda: cached.get("hot") == -1, seconds=1.0)
    readers_done.set()
    for t in threads[1:]:
        t.join()
    time.sleep(0.05)
    assert cached.get("hot") == -1
    assert cached.get_many(["hot"]) == {"hot": -1}


def test_bounds_hold(make_cache: Callable[..., RedisCache]) -> None:
    cache = make_cache(
        KEY_PREFIX="bounds", options={"CLIENT_SIDE_CACHE": {"max_entries": 10, "max_bytes": 4000}}
    )
    cache.get("warm-up")
    wait_until(lambda: local(cache)["live"])
    cache.set_many({f"k{i}": "x" * 100 for i in range(50)})

    def read_all(prefix: str, n: int) -> dict[str, Any]:
        # Reads racing the server's invalidations of our own set_many are not kept: read
        # until the store is as full as it can be.
        for i in range(n):
            cache.get(f"{prefix}{i}")
        return local(cache)

    wait_until(lambda: read_all("k", 50)["entries"] == 10, seconds=2.0)
    cache.set_many({f"big{i}": "x" * 1000 for i in range(10)})
    for _ in range(20):
        stats = read_all("big", 10)
        assert stats["entries"] <= 10 and stats["bytes"] <= 4000
    assert 1 <= local(cache)["entries"] <= 4


def test_losing_the_invalidation_connection_flushes(cached: RedisCache, server: Server) -> None:
    cached.set("k", "before")
    kept(cached, "k")
    assert local(cached)["entries"] >= 1
    server.command("CLIENT", "KILL", "TYPE", "pubsub")
    # Not live (and empty) until the listener is back; meanwhile reads go to Redis.
    wait_until(lambda: local(cached)["entries"] == 0 or not local(cached)["live"], seconds=1.0)
    server.command("SET", cached.make_and_validate_key("k"), "7")
    assert cached.get("k") == 7
    wait_until(lambda: local(cached)["live"], seconds=3.0)
    assert cached.get("k") == 7
    server.command("SET", cached.make_and_validate_key("k"), "8")
    wait_until(lambda: cached.get("k") == 8, seconds=1.0)


def test_a_server_restart(make_cache: Callable[..., RedisCache], own_server: Server) -> None:
    cache = make_cache(own_server.url, {"CLIENT_SIDE_CACHE": True, "SOCKET_TIMEOUT": 1})
    cache.set("k", "v")
    cache.get("k")
    wait_until(lambda: local(cache)["live"])
    kept(cache, "k")
    own_server.kill()
    own_server.start()  # empty: no persistence
    wait_until(lambda: local(cache)["live"], seconds=5.0)
    assert cache.get("k") is None


def test_one_store_per_process_for_caches_configured_alike(
    make_cache: Callable[..., RedisCache],
) -> None:
    options = {"CLIENT_SIDE_CACHE": {"ttl": 30}}
    one, two = (
        make_cache(KEY_PREFIX="same", options=options),
        make_cache(KEY_PREFIX="same", options=options),
    )
    one.set("k", 1)
    one.get("k")
    wait_until(lambda: local(one)["live"])
    kept(one, "k")
    assert local(two)["entries"] == local(one)["entries"] >= 1  # Django's per-thread objects


def test_after_fork_the_child_has_its_own(cached: RedisCache, server: Server) -> None:
    cached.set("k", "parent")
    assert cached.get("k") == "parent"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ok = cached.get("k") == "parent"
            wait_until(lambda: local(cached)["live"], seconds=3.0)
            cached.get("k")
            server.command("SET", cached.make_and_validate_key("k"), "5")
            wait_until(lambda: cached.get("k") == 5, seconds=1.0)
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    wait_until(lambda: cached.get("k") == 5, seconds=1.0)  # the parent saw it too


# Forking a process with threads running is the point here.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forks_while_invalidations_stream_in(
    cached: RedisCache, make_cache: Callable[..., RedisCache]
) -> None:
    """The listener thread takes the store's lock for every invalidation: a fork at that moment
    must not leave the child waiting for a lock that no thread of its own will release."""
    other = make_cache(KEY_PREFIX="csc")
    cached.get("busy")
    wait_until(lambda: local(cached)["live"])
    stop = threading.Event()

    many = {f"busy{i}": 1 for i in range(2000)}  # one message naming 2,000 keys: a long hold

    def write() -> None:
        while not stop.is_set():
            other.set_many(many)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(100):
            pid = os.fork()
            if pid == 0:
                try:
                    cached.get("busy")
                    cached.metrics()
                finally:
                    os._exit(0)
            deadline = time.monotonic() + 10
            while (ended := os.waitpid(pid, os.WNOHANG))[0] == 0:
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    pytest.fail("a forked child hung")
                time.sleep(0.002)
            assert os.waitstatus_to_exitcode(ended[1]) == 0
    finally:
        stop.set()
        writer.join()


@pytest.mark.parametrize("layout", ["replicas", "shards", "cluster", "sentinel"])
def test_where_it_is_not_offered(layout: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    options: dict[str, Any] = {"CLIENT_SIDE_CACHE": True}
    location: Any = ["redis://127.0.0.1:1", "redis://127.0.0.1:2"]
    if layout == "shards":
        options["CLIENT_CLASS"] = "django_redis_rs.client.ShardClient"
    elif layout == "cluster":
        options["CLIENT_CLASS"] = "django_redis_rs.client.ClusterClient"
        location = "redis://127.0.0.1:1"
    elif layout == "sentinel":
        options["CLIENT_CLASS"] = "django_redis_rs.client.SentinelClient"
        options["SENTINELS"] = [("127.0.0.1", 1)]
        location = "redis://mymaster/0"
    with pytest.raises(ImproperlyConfigured, match="CLIENT_SIDE_CACHE is offered for a single"):
        RedisCache(location, {"OPTIONS": options}).get("k")


@pytest.mark.parametrize(
    "value",
    [{"max_entries": 0}, {"ttl": 0}, {"max_bytes": "lots"}, {"size": 1}, "yes"],
)
def test_bad_settings(value: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="CLIENT_SIDE_CACHE"):
        RedisCache("redis://127.0.0.1:1", {"OPTIONS": {"CLIENT_SIDE_CACHE": value}}).get("k")


def test_over_a_unix_socket(make_cache: Callable[..., RedisCache], server: Server) -> None:
    """The tracking connection is made like the cache's own: unix sockets too."""
    cache = make_cache(f"unix://{server.unix_socket}", {"CLIENT_SIDE_CACHE": True}, KEY_PREFIX="ux")
    cache.set("k", 1)
    kept(cache, "k")
    server.command("SET", cache.make_and_validate_key("k"), "2")
    wait_until(lambda: cache.get("k") == 2, seconds=1.0)
