"""get_or_set's single-flight: concurrent misses of one key in one process — threads, asyncio
tasks, or both — call the function once; the others wait, with a timeout, and can opt out."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from django_redis_rs import flight
from django_redis_rs.cache import RedisCache


class Slow:
    """A slow computation that counts its calls."""

    def __init__(self, seconds: float = 0.2, value: Any = None, error: Exception | None = None):
        self.seconds, self.value, self.error = seconds, value, error
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1
        time.sleep(self.seconds)
        if self.error is not None:
            raise self.error
        return self.value if self.value is not None else {"rows": [1, 2, 3]}


def in_threads(n: int, call: Callable[[], Any]) -> list[Any]:
    """Run `call` in n threads started together; their results (or exceptions)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_fifty_threads_call_the_function_once(make_cache: Callable[..., RedisCache]) -> None:
    # Django gives each thread its own cache object: so does this test.
    made = {i: make_cache() for i in range(50)}
    slow = Slow()
    ids = iter(range(50))
    lock = threading.Lock()

    def call() -> Any:
        with lock:
            cache = made[next(ids)]
        return cache.get_or_set("report", slow, timeout=60)

    results = in_threads(50, call)
    assert slow.calls == 1
    assert results == [{"rows": [1, 2, 3]}] * 50
    assert len({id(r) for r in results}) == 50  # each caller has its own copy
    assert flight.in_flight() == 0


def test_fifty_tasks_call_the_function_once(cache: RedisCache) -> None:
    slow = Slow()

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(cache.aget_or_set("report", slow) for _ in range(50)))

    assert asyncio.run(scenario()) == [{"rows": [1, 2, 3]}] * 50
    assert slow.calls == 1


def test_threads_and_tasks_together(make_cache: Callable[..., RedisCache]) -> None:
    """10 threads calling get_or_set and 2 threads each running 10 tasks on their own loop."""
    slow = Slow(0.3)

    def loop_of_tasks() -> list[Any]:
        cache = make_cache()

        async def scenario() -> list[Any]:
            return await asyncio.gather(*(cache.aget_or_set("k", slow) for _ in range(10)))

        return asyncio.run(scenario())

    caches = [make_cache() for _ in range(10)]
    workers: list[Callable[[], Any]] = [lambda c=c: c.get_or_set("k", slow) for c in caches]
    workers += [loop_of_tasks, loop_of_tasks]
    results = in_threads(len(workers), lambda: workers.pop()())
    flat = [r for result in results for r in (result if isinstance(result, list) else [result])]
    assert slow.calls == 1
    assert flat == [{"rows": [1, 2, 3]}] * 30


def test_the_leaders_error_reaches_the_others(make_cache: Callable[..., RedisCache]) -> None:
    failing = Slow(error=RuntimeError("database down"))
    caches = [make_cache() for _ in range(10)]
    results = in_threads(10, lambda: caches.pop().get_or_set("k", failing))
    assert failing.calls == 1
    assert all(isinstance(r, RuntimeError) and "database down" in str(r) for r in results)
    assert flight.in_flight() == 0
    assert make_cache().get("k") is None  # nothing stored


def test_a_slow_leader_is_given_up_after_the_timeout(
    make_cache: Callable[..., RedisCache],
) -> None:
    slow = Slow(1.0)
    caches = [make_cache(options={"SINGLE_FLIGHT_TIMEOUT": 0.2}) for _ in range(5)]
    started = time.perf_counter()
    results = in_threads(5, lambda: caches.pop().get_or_set("k", slow))
    assert slow.calls == 5  # the others waited 0.2 s, then computed themselves
    assert results == [{"rows": [1, 2, 3]}] * 5
    assert time.perf_counter() - started < 1.9


def test_opting_out(make_cache: Callable[..., RedisCache]) -> None:
    per_call = Slow(0.2)
    caches = [make_cache() for _ in range(5)]
    in_threads(5, lambda: caches.pop().get_or_set("a", per_call, single_flight=False))
    assert per_call.calls == 5
    per_cache = Slow(0.2)
    caches = [make_cache(options={"SINGLE_FLIGHT": False}) for _ in range(5)]
    in_threads(5, lambda: caches.pop().get_or_set("b", per_cache))
    assert per_cache.calls == 5


def test_a_cancelled_leader_hands_over(cache: RedisCache) -> None:
    calls = 0

    def compute() -> str:
        nonlocal calls
        calls += 1
        return "value"

    async def scenario() -> list[Any]:
        key = (cache.client.flight_scope, cache.make_and_validate_key("k"))
        # A leader that does not land until it is cancelled.
        held = flight.join(key, 30)
        assert held.leading
        waiters = [asyncio.ensure_future(cache.aget_or_set("k", compute)) for _ in range(3)]
        await asyncio.sleep(0.05)
        with contextlib.suppress(asyncio.CancelledError), held.landing():
            raise asyncio.CancelledError
        return await asyncio.gather(*waiters)

    assert asyncio.run(scenario()) == ["value"] * 3
    assert calls == 1


def test_values_that_are_not_callables_and_hits_skip_the_flight(cache: RedisCache) -> None:
    assert cache.get_or_set("plain", 5) == 5
    assert cache.get_or_set("plain", lambda: pytest.fail("a hit must not compute")) == 5


def test_bad_options() -> None:
    from django.core.exceptions import ImproperlyConfigured

    for options in ({"SINGLE_FLIGHT": "yes"}, {"SINGLE_FLIGHT_TIMEOUT": -1}):
        with pytest.raises(ImproperlyConfigured, match="SINGLE_FLIGHT"):
            RedisCache("redis://127.0.0.1:1", {"OPTIONS": options}).get("k")
