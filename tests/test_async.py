"""Django's async cache API, native: awaited on the runtime, on every topology's routing,
concurrent, cancellable, fork-safe, with IGNORE_EXCEPTIONS."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_redis_rs.cache import RedisCache
from django_redis_rs.exceptions import SerializerError
from tests.helpers import OUTAGE, RAW_CLIENT_METHODS
from tests.servers import Server, server_binary, start_cluster


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(params=["single", "shards", "cluster"])
def acache(
    request: pytest.FixtureRequest, server: Server, make_cache: Callable[..., RedisCache]
) -> Iterator[RedisCache]:
    if request.param == "single":
        yield make_cache()
        return
    binary = server_binary(server.kind)
    assert binary is not None
    if request.param == "shards":
        nodes = [Server(server.kind, binary).start() for _ in range(3)]
        options = {"CLIENT_CLASS": "django_redis_rs.client.ShardClient"}
        location: Any = [n.url for n in nodes]
    else:
        nodes = start_cluster(server.kind, binary)
        options = {"CLIENT_CLASS": "django_redis_rs.client.ClusterClient"}
        location = nodes[0].url
    try:
        yield make_cache(location, options)
    finally:
        for node in nodes:
            node.cleanup()


def test_the_async_api(acache: RedisCache) -> None:
    cache = acache

    async def scenario() -> None:
        assert await cache.aset("a", {"x": 1}) is True
        assert await cache.aget("a") == {"x": 1}
        assert await cache.aget("missing", "dflt") == "dflt"
        await cache.aset("none", None)
        assert await cache.aget("none", "dflt") is None
        assert await cache.aadd("a", 2) is False
        assert await cache.ahas_key("a") is True
        assert await cache.atouch("a", 100) is True
        assert 90 < cache.ttl("a") <= 100
        assert await cache.aset("short", 1, timeout=0) is False
        assert await cache.aget("short") is None
        data = {f"m{i}": i for i in range(50)}
        assert await cache.aset_many(data) == []
        assert await cache.aget_many([*data, "nope"]) == data
        assert await cache.adelete_many([f"m{i}" for i in range(20)]) == 20
        await cache.aset_many({"t1": 1}, timeout=30)
        assert 20 < cache.ttl("t1") <= 30
        await cache.aset("n", 5)
        assert await cache.aincr("n", 10) == 15
        assert await cache.adecr("n") == 14
        with pytest.raises(ValueError):
            await cache.aincr("missing")
        await cache.aset("big", 2**64)
        assert await cache.aincr("big") == 2**64 + 1
        assert await cache.aget_or_set("g", lambda: "computed") == "computed"
        assert await cache.adelete("a") is True
        assert await cache.adelete("a") is False
        await cache.aset("g", "computed", timeout=100)
        assert await cache.aincr_version("g") == 2
        assert await cache.aget("g", version=2) == "computed"
        assert 90 < cache.ttl("g", version=2) <= 100  # the expiry moves with the value
        assert await cache.adecr_version("g", version=2) == 1
        await cache.aclear()
        assert await cache.aget_many(["t1", "n"]) == {}
        await cache.aclose()

    run(scenario())


def test_fifty_concurrent_agets(cache: RedisCache) -> None:
    cache.set_many({f"k{i}": i for i in range(50)})

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(cache.aget(f"k{i}") for i in range(50)))

    assert run(scenario()) == list(range(50))


def test_event_loops_come_and_go(cache: RedisCache) -> None:
    """Each loop gets its results, whether loops follow one another on a thread, are left open
    or closed with calls in flight, or run at once in several threads; no descriptor leaks."""
    cache.set("k", "v")

    def open_fds() -> int:
        return len(os.listdir(f"/proc/{os.getpid()}/fd"))

    async def in_flight_then_leave() -> None:
        asyncio.ensure_future(cache.aget("k"))  # never awaited: the loop closes over it

    before = open_fds()
    for _ in range(30):
        assert run(cache.aget("k")) == "v"
        run(in_flight_then_leave())
    kept_open = asyncio.new_event_loop()
    assert kept_open.run_until_complete(cache.aget("k")) == "v"
    assert run(cache.aget("k")) == "v"  # another loop takes over this thread
    assert kept_open.run_until_complete(cache.aget("k")) == "v"  # and hands it back
    kept_open.close()
    assert open_fds() - before < 10

    results: list[Any] = []

    def in_thread(n: int) -> None:
        async def scenario() -> list[Any]:
            return await asyncio.gather(*(cache.aget("k") for _ in range(n)))

        results.extend(run(scenario()))

    threads = [threading.Thread(target=in_thread, args=(200,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["v"] * 800


def test_a_cancelled_aget_leaves_the_connection_clean(cache: RedisCache) -> None:
    cache.set("a", "A")
    cache.set("b", "B")

    async def scenario() -> None:
        for _ in range(50):
            task = asyncio.ensure_future(cache.aget("a"))
            await asyncio.sleep(0)
            task.cancel()
            # The next call on the same multiplexed connection gets its own reply.
            assert await cache.aget("b") == "B"

    run(scenario())


def test_async_after_fork(cache: RedisCache) -> None:
    run(cache.aset("k", "parent"))
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ok = run(cache.aget("k")) == "parent" and run(cache.aset("k", "child")) is True
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert run(cache.aget("k")) == "child"


def read_in_a_child(url: str) -> Any:
    """Run in a forked worker process: its own event loop, its own cache."""
    return asyncio.run(RedisCache(url, {}).aget("k"))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # forking with threads is the point
def test_a_fork_from_inside_a_running_loop(server: Server) -> None:
    """The child inherits the parent's loop and its epoll set: it must leave the parent's bell
    registered, or the parent's later calls never settle."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    url = f"{server.url}/7"
    cache = RedisCache(url, {})

    async def main() -> Any:
        await cache.aset("k", 41)
        assert await cache.aget("k") == 41
        fork = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(2, mp_context=fork) as pool:
            loop = asyncio.get_running_loop()
            children = [loop.run_in_executor(pool, read_in_a_child, url) for _ in range(4)]
            assert await asyncio.wait_for(asyncio.gather(*children), 30) == [41] * 4
        await cache.aset("k", 42)
        calls = asyncio.gather(*(cache.aget("k") for _ in range(20)))
        return await asyncio.wait_for(calls, 5)

    assert asyncio.run(main()) == [42] * 20


def test_one_call_that_cannot_be_settled_strands_no_other(
    make_cache: Callable[..., RedisCache],
) -> None:
    """Calls finished together are settled together: one that fails to settle (its future was
    settled by someone else) or to convert (its value cannot be read) must not leave the
    others waiting."""
    cache = make_cache(options={"SERIALIZER": "tests.helpers.StopIterationSerializer"})
    cache.set_many({**{f"k{i}": i for i in range(20)}, "stop": "stop"})
    native = cache.client._native

    async def meddled() -> list[Any]:
        futures = [native.aget(f":1:k{i}") for i in range(20)]
        for future in futures[::2]:
            future.set_result("settled elsewhere")
        return await asyncio.wait_for(asyncio.gather(*futures[1::2]), 5)

    assert run(meddled()) == list(range(1, 20, 2))

    async def refused() -> list[Any]:
        calls = [cache.aget(key) for key in ("stop", "k1", "stop", "k2", "k3")]
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)

    first, one, again, two, three = run(refused())
    assert (one, two, three) == (1, 2, 3)
    assert isinstance(first, SerializerError) and isinstance(again, SerializerError)


def test_async_errors_and_ignore_exceptions(dead_url: str) -> None:
    strict = RedisCache(dead_url, {})
    with pytest.raises(OUTAGE):
        run(strict.aget("k"))
    lenient = RedisCache(dead_url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True}})

    async def scenario() -> None:
        assert await lenient.aget("k", "d") == "d"
        assert await lenient.aset("k", 1) is False
        assert await lenient.aget_many(["k"]) == {}
        assert await lenient.adelete("k") is False
        assert await lenient.aincr("k") is None
        assert await lenient.alock("L", blocking=False).aacquire() is False

    started = time.monotonic()
    run(scenario())
    assert time.monotonic() - started < 2


def test_async_herd(make_cache: Callable[..., RedisCache]) -> None:
    cache = make_cache(options={"CLIENT_CLASS": "django_redis_rs.client.HerdClient"})

    async def scenario() -> None:
        await cache.aset("k", "v", timeout=60)
        assert await cache.aget("k") == "v"
        assert cache.get("k") == "v"  # the same packed value, read by the sync path
        with pytest.raises(NotImplementedError):
            await cache.aincr("k")

    run(scenario())


def test_async_twins_of_the_extras(cache: RedisCache) -> None:
    async def scenario() -> None:
        await cache.aset("k", 1, timeout=100)
        assert 90 < await cache.attl("k") <= 100
        assert await cache.apersist("k") is True
        assert await cache.attl("k") is None
        assert await cache.aexpire("k", 50) is True
        assert await cache.asadd("s", 1, 2, 3) == 3
        assert await cache.asmembers("s") == {1, 2, 3}
        assert {m async for m in cache.asscan_iter("s", count=1)} == {1, 2, 3}
        assert await cache.asscan("s") == {1, 2, 3}
        assert await cache.ahset("h", mapping={"a": 1, "b": [2]}) == 2
        assert await cache.ahgetall("h") == {"a": 1, "b": [2]}
        assert await cache.azadd("z", {"x": 1.0, "y": 2.0}) == 2
        assert await cache.azrange("z", 0, -1, withscores=True) == [("x", 1.0), ("y", 2.0)]
        assert await cache.azpopmax("z") == ("y", 2.0)
        assert await cache.alpush("l", "a", "b") == 2
        assert await cache.alrange("l", 0, -1) == ["b", "a"]
        assert await cache.alpop("l", 5) == ["b", "a"]
        for i in range(30):
            await cache.aset(f"scan{i}", i)
        assert sorted(await cache.akeys("scan*")) == sorted(f"scan{i}" for i in range(30))
        assert sorted([k async for k in cache.aiter_keys("scan*", itersize=7)]) == sorted(
            f"scan{i}" for i in range(30)
        )
        assert await cache.adelete_pattern("scan*") == 30

    run(scenario())


def test_every_sync_method_has_a_native_async_twin() -> None:
    import inspect

    from django_redis_rs.client import DefaultClient

    sync = {
        name
        for name, member in inspect.getmembers(DefaultClient, inspect.isfunction)
        if not name.startswith("_")
        and not inspect.iscoroutinefunction(member)
        and not inspect.isasyncgenfunction(member)
    }
    local = {"make_key", "make_pattern", "encode", "decode", "get_client", "close", "lock", "alock"}
    local |= {"metrics", "reset_metrics", "note_ignored"}  # counters in memory, no I/O
    local |= RAW_CLIENT_METHODS  # no async twins in django-redis either
    # iterators have async-iterator twins
    missing = {
        name
        for name in sync - local
        if not inspect.iscoroutinefunction(getattr(DefaultClient, "a" + name, None))
        and not inspect.isasyncgenfunction(getattr(DefaultClient, "a" + name, None))
    }
    assert missing == set()


def test_ignore_exceptions_covers_the_async_api(dead_url: str) -> None:
    from tests.test_pool import API_CALLS

    cache = RedisCache(dead_url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True}})
    strict = RedisCache(dead_url, {})

    async def scenario() -> int:
        checked = 0
        for name, args, neutral in API_CALLS:
            twin = getattr(cache, "a" + name, None)
            if twin is None:
                continue
            assert await twin(*args) == neutral, name
            with pytest.raises(OUTAGE):
                await getattr(strict, "a" + name)(*args)
            checked += 1
        assert [k async for k in cache.aiter_keys("*")] == []
        return checked

    assert run(scenario()) >= 60


def test_async_lock(cache: RedisCache) -> None:
    from django_redis_rs.exceptions import LockError

    async def scenario() -> None:
        async with cache.alock("job", timeout=5) as lock:
            assert await lock.alocked() and await lock.aowned()
            other = cache.alock("job", timeout=5, blocking=False)
            assert await other.aacquire() is False
            assert await lock.aextend(5) is True
        assert await cache.alock("job").alocked() is False
        held = cache.alock("job", timeout=5)
        assert await held.aacquire()
        with pytest.raises(LockError):
            async with cache.alock("job", blocking_timeout=0.1, sleep=0.02):
                pass
        await held.arelease()

    run(scenario())


def test_async_lock_matches_the_sync_lock_operation_by_operation(cache: RedisCache) -> None:
    """Each async lock operation runs the sync one's description: the same errors (extend and
    reacquire keep "unlocked" and "no timeout" apart), and areacquire exists."""
    from django_redis_rs.exceptions import LockError, LockNotOwnedError

    def outcome(lock: Any, name: str, *args: Any) -> Any:
        try:
            return getattr(lock, name)(*args)
        except Exception as e:  # noqa: BLE001 - the outcome is what is compared
            return (type(e), str(e))

    async def aoutcome(lock: Any, name: str, *args: Any) -> Any:
        try:
            return await getattr(lock, "a" + name)(*args)
        except Exception as e:  # noqa: BLE001
            return (type(e), str(e))

    async def scenario() -> list[tuple[Any, Any]]:
        pairs = []
        for timeout in (None, 5):
            sync, async_ = cache.lock("s", timeout=timeout), cache.alock("a", timeout=timeout)
            steps = [("extend", 1), ("reacquire",), ("acquire",), ("extend", 2), ("reacquire",)]
            for name, *args in steps:
                pairs.append((outcome(sync, name, *args), await aoutcome(async_, name, *args)))
            cache.delete_many(["s", "a"])  # both lost: release must say so
            pairs.append((outcome(sync, "release"), await aoutcome(async_, "release")))
        return pairs

    pairs = run(scenario())
    for sync_outcome, async_outcome in pairs:
        assert sync_outcome == async_outcome
    kinds = [p[0][0] if isinstance(p[0], tuple) else p[0] for p in pairs]
    assert kinds == [
        LockError, LockError, True, LockError, LockError, LockNotOwnedError,  # no timeout
        LockError, LockError, True, True, True, LockNotOwnedError,  # timeout 5
    ]  # fmt: skip
