"""`cache.metrics()`: hits and misses, per-command calls, errors and latency percentiles, the
servers' connection counts and circuit state — per cache, resettable, and silent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from django_redis_rs.cache import RedisCache
from tests.helpers import OUTAGE
from tests.servers import Server


def only_server(metrics: dict[str, Any]) -> dict[str, Any]:
    (stats,) = metrics["servers"].values()
    return stats  # type: ignore[no-any-return]


def test_hits_misses_and_commands(cache: RedisCache) -> None:
    # The server's pool is process-wide: earlier tests' caches used it too.
    before = only_server(cache.metrics())
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1
    assert cache.get("nope") is None
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2}

    async def async_reads() -> None:
        assert await cache.aget("a") == 1
        assert await cache.aget("nope", "dflt") == "dflt"
        assert await cache.aget_many(["a", "zz"]) == {"a": 1}

    asyncio.run(async_reads())
    metrics = cache.metrics()
    # get: 1 hit 1 miss; get_many: 2 and 2; aget: 1 and 1; aget_many: 1 and 1.
    assert (metrics["hits"], metrics["misses"]) == (5, 5)
    # get and aget calls alone (django-prometheus's django_cache_get_* count these).
    assert metrics["get"] == {"calls": 4, "hits": 2, "misses": 2, "failures": 0}
    commands = metrics["commands"]
    assert commands["GET"]["calls"] == 4
    assert commands["MGET"]["calls"] == 2
    assert commands["SET"]["calls"] == 2
    for figures in commands.values():
        assert figures["errors"] == 0
        assert 0 < figures["p50_us"] <= figures["p90_us"] <= figures["p99_us"]
        assert figures["p99_us"] <= figures["max_us"]
        assert 0 < figures["mean_us"] <= figures["max_us"]
    stats = only_server(metrics)
    assert stats["open"] == stats["idle"] == 1 and stats["in_use"] == 0
    assert stats["opened"] - before["opened"] <= 1
    assert stats["dropped"] == before["dropped"]
    assert stats["async_opened"] >= 1
    assert (stats["breaker"], stats["breaker_trips"]) == ("closed", 0)


def test_latency_percentiles_follow_the_server(cache: RedisCache) -> None:
    """A command that waits on the server (BLPOP on an empty list: 50-100 ms, by the server's
    clock resolution) shows with the latency the caller saw."""
    raw = cache.client.get_native_client()
    seen = []
    for _ in range(5):
        started = time.perf_counter()
        assert raw.execute_command("BLPOP", "empty-list", "0.05") is None
        seen.append((time.perf_counter() - started) * 1e6)
    figures = cache.metrics()["commands"]["BLPOP"]
    assert figures["calls"] == 5
    assert min(seen) * 0.9 <= figures["p50_us"] <= figures["max_us"] <= max(seen)
    assert figures["max_us"] >= max(seen) * 0.9


def test_errors_are_counted_per_command(cache: RedisCache) -> None:
    cache.set("text", "not a list")
    with pytest.raises(Exception, match="WRONGTYPE"):
        cache.lpush("text", "x")
    figures = cache.metrics()["commands"]["LPUSH"]
    assert (figures["calls"], figures["errors"]) == (1, 1)


def test_reset_and_per_cache(make_cache: Callable[..., RedisCache]) -> None:
    one = make_cache(KEY_PREFIX="one")
    two = make_cache(KEY_PREFIX="two")
    one.set("k", 1)
    one.get("k")
    assert two.metrics()["commands"] == {}  # same server, separate counters
    assert (two.metrics()["hits"], two.metrics()["misses"]) == (0, 0)
    assert two.metrics()["servers"] == one.metrics()["servers"]  # one shared pool
    one.reset_metrics()
    assert one.metrics()["commands"] == {}
    assert (one.metrics()["hits"], one.metrics()["misses"]) == (0, 0)
    one.get("k")
    assert one.metrics()["commands"]["GET"]["calls"] == 1


def test_outage_shows_in_errors_connections_and_circuit(
    make_cache: Callable[..., RedisCache], own_server: Server
) -> None:
    cache = make_cache(
        own_server.url,
        {
            "SOCKET_TIMEOUT": 1,
            "CIRCUIT_BREAKER": {"failures": 2, "reset_timeout": 60},
        },
    )
    cache.set("k", "v")
    cache.get("k")
    own_server.kill()
    for _ in range(4):
        with pytest.raises(OUTAGE):
            cache.get("k")
    with pytest.raises(OUTAGE):
        asyncio.run(cache.aget("k"))
    metrics = cache.metrics()
    assert metrics["commands"]["GET"]["errors"] == 5
    assert metrics["get"] == {"calls": 6, "hits": 1, "misses": 0, "failures": 5}
    stats = only_server(metrics)
    assert stats["breaker"] == "open" and stats["breaker_trips"] == 1
    assert stats["dropped"] >= 1  # the pooled connection died with the server
    assert stats["open"] == 0


def test_nothing_is_logged_on_the_hot_path(
    cache: RedisCache, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        for i in range(200):
            cache.set(f"k{i}", i)
            cache.get(f"k{i}")
            cache.get("missing")
        cache.metrics()
    assert caplog.records == []


def test_the_threads_of_one_alias_count_together(server: Server) -> None:
    """Django makes a cache object per thread; metrics() counts them all, whichever asks."""
    import threading

    from django.core.cache import caches
    from django.test import override_settings

    params = {"BACKEND": "django_redis_rs.cache.RedisCache", "LOCATION": server.url}
    with override_settings(CACHES={"default": params, "x": {**params, "KEY_PREFIX": "threads"}}):
        here = caches["x"]
        for alias in ("x", "default"):  # an earlier test's cache may share their settings
            caches[alias].reset_metrics()
        seen = []

        def request() -> None:
            there = caches["x"]
            seen.append(there is here)
            there.set("k", 1)
            there.get("k")

        threads = [threading.Thread(target=request) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen == [False] * 3
        metrics = here.metrics()
        assert metrics["get"]["hits"] == 3 and metrics["commands"]["SET"]["calls"] == 3
        assert caches["default"].metrics()["get"]["calls"] == 0  # another alias: its own
