"""Faults with real processes: a server killed and restarted under load, stalled (SIGSTOP),
unreachable; stale pooled sockets; the circuit breaker. Timings are asserted with the margins the
README's reliability section quotes."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_redis_rs.cache import RedisCache
from tests.helpers import OUTAGE
from tests.servers import Server
from tests.test_pool import pool_stats


def fill_pool(cache: RedisCache, n: int) -> None:
    """Leave `n` idle connections in the cache's pool."""
    barrier = threading.Barrier(n)

    def hold() -> None:
        barrier.wait()
        for _ in range(50):
            cache.get("warm")

    threads = [threading.Thread(target=hold) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pool_stats(cache)["idle"] >= 2


# --- a stalled server: every call fails within SOCKET_TIMEOUT (+10 %) ---

TIMEOUT = 0.5

STALLED_CALLS: list[tuple[str, Callable[[RedisCache], Any]]] = [
    ("get", lambda c: c.get("k")),
    ("set", lambda c: c.set("k", 2)),
    ("incr", lambda c: c.incr("n")),
    ("get_many", lambda c: c.get_many(["k", "n", "x"])),
    ("delete_many", lambda c: c.delete_many(["x", "y"])),
    ("aget", lambda c: asyncio.run(c.aget("k"))),
    ("aset_many", lambda c: asyncio.run(c.aset_many({"a": 1, "b": 2}))),
]


@pytest.mark.parametrize("db", [0, 3], ids=["db0", "db3-select-on-connect"])
def test_stalled_server_fails_within_socket_timeout(own_server: Server, db: int) -> None:
    cache = RedisCache(f"{own_server.url}/{db}", {"OPTIONS": {"SOCKET_TIMEOUT": TIMEOUT}})
    cache.set("k", 1)
    cache.set("n", 1)
    own_server.pause()
    try:
        for name, call in STALLED_CALLS:
            # A fresh connection each time (the timed-out one is dropped): with db 3 its SELECT
            # meets the stalled server too, and SOCKET_TIMEOUT bounds that handshake as well.
            started = time.monotonic()
            with pytest.raises(OUTAGE) as info:
                call(cache)
            elapsed = time.monotonic() - started
            assert isinstance(info.value, TimeoutError), name
            assert TIMEOUT * 0.9 < elapsed < TIMEOUT * 1.1, (name, elapsed)
    finally:
        own_server.resume()
    # The server woke up and ran whatever it had received (with db 3 the writes never left,
    # stuck behind SELECT): a timeout never says whether a write happened. The timed-out
    # connections were dropped, so no caller reads a reply meant for another.
    assert cache.get("k") in (1, 2)
    n = cache.get("n")
    assert n in (1, 2)
    assert cache.incr("n") == n + 1
    assert cache.get_many(["a", "b"]) in ({}, {"a": 1, "b": 2})


def test_a_closed_port_fails_at_once(dead_url: str) -> None:
    cache = RedisCache(dead_url, {"OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 5}})
    for call in (lambda: cache.get("k"), lambda: asyncio.run(cache.aget("k"))):
        started = time.monotonic()
        with pytest.raises(OUTAGE) as info:
            call()
        assert time.monotonic() - started < 0.5  # a tenth of the connect timeout: refused at once
        assert isinstance(info.value, ConnectionError)


@pytest.fixture
def unreachable_port() -> Iterator[int]:
    """A port whose SYNs go unanswered, as an unreachable host's would: a listener whose
    accept queue is full (this sandbox refuses connections to absent hosts at once)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        yield port
    finally:
        filler.close()
        listener.close()


def test_an_unreachable_host_fails_within_the_connect_timeout(unreachable_port: int) -> None:
    url = f"redis://127.0.0.1:{unreachable_port}"
    cache = RedisCache(url, {"OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.3, "SOCKET_TIMEOUT": 5}})
    for call in (lambda: cache.get("k"), lambda: asyncio.run(cache.aget("k"))):
        started = time.monotonic()
        with pytest.raises(OUTAGE) as info:
            call()
        assert 0.27 < time.monotonic() - started < 0.45  # (the upper margin: a loaded CI host)
        assert isinstance(info.value, TimeoutError)


# --- a restart: stale pooled sockets never reach the caller ---


def test_idle_connections_that_died_in_a_restart_are_replaced(own_server: Server) -> None:
    cache = RedisCache(own_server.url, {"OPTIONS": {"SOCKET_TIMEOUT": 1}})
    fill_pool(cache, 4)
    own_server.kill()
    own_server.start()
    # Every idle socket is dead. The first call meets one, learns of the restart, drops the
    # other idle sockets and sends the GET again on a new connection.
    assert cache.get("k", "default") == "default"
    stats = pool_stats(cache)
    assert (stats["open"], stats["idle"]) == (1, 1)
    assert stats["dropped"] == stats["opened"] - 1 >= 1  # all but the new one: the restart
    cache.set("k", 1)
    assert cache.incr("k") == 2


def test_async_connection_that_died_in_a_restart_is_replaced(own_server: Server) -> None:
    cache = RedisCache(own_server.url, {"OPTIONS": {"SOCKET_TIMEOUT": 1}})

    async def scenario() -> None:
        await cache.aset("k", 1)
        own_server.kill()
        own_server.start()
        assert await cache.aget("k", "default") == "default"
        assert await cache.aset("k", 5)
        assert await cache.aincr("k") == 6

    asyncio.run(scenario())


def test_a_command_unsafe_to_repeat_is_not_resent(own_server: Server) -> None:
    """INCR on a socket that broke mid-exchange may or may not have run: it is not sent twice,
    the caller hears of it, and the next call works."""
    cache = RedisCache(own_server.url, {"OPTIONS": {"SOCKET_TIMEOUT": 1}})
    cache.set("n", 1)
    own_server.kill()
    own_server.start()
    with pytest.raises(OUTAGE):
        cache.incr("n", ignore_key_check=True)
    assert cache.incr("n", ignore_key_check=True) == 1  # a fresh server, counted once


def test_health_checks_spare_even_unrepeatable_commands(own_server: Server) -> None:
    cache = RedisCache(
        own_server.url,
        {"OPTIONS": {"CONNECTION_POOL_KWARGS": {"health_check_interval": 0.01}}},
    )
    fill_pool(cache, 3)
    own_server.kill()
    own_server.start()
    time.sleep(0.02)
    # Each idle socket is PINGed before use; the dead ones are closed.
    assert cache.incr("n", ignore_key_check=True) == 1
    assert cache.add("a", 1) is True


@pytest.mark.parametrize("ignore", [False, True], ids=["raise", "ignore-exceptions"])
def test_kill_and_restart_under_eight_threads(own_server: Server, ignore: bool) -> None:
    """8 threads set and read back their own keys while the server is SIGKILLed and restarted
    (empty: no persistence). No call returns a wrong value; calls in the outage raise
    ConnectionInterrupted (or return the default); every thread is served again within 1 s of
    the server's return, and nothing fails after that."""
    cache = RedisCache(
        own_server.url,
        {"OPTIONS": {"SOCKET_TIMEOUT": 1, "IGNORE_EXCEPTIONS": ignore}},
    )
    stop = threading.Event()
    back_at: list[float] = []
    wrong: list[str] = []
    failures_after: list[str] = []
    first_ok_after: dict[int, float] = {}
    failed = [0] * 8

    def worker(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            key, value = f"w{n}", (n, i)
            try:
                stored = cache.set(key, value)
                got = cache.get(key, "missing")
            except OUTAGE:
                assert not ignore
                failed[n] += 1
                if back_at and n in first_ok_after:
                    failures_after.append(f"thread {n} call {i}")
                continue
            if ignore and (stored is False or got == "missing"):
                failed[n] += 1
                continue
            # Read right after our own write: ours, or nothing if the restart fell between.
            if got not in (value, "missing"):
                wrong.append(f"thread {n}: {got!r} instead of {value!r}")
            if back_at and n not in first_ok_after and got == value:
                first_ok_after[n] = time.monotonic() - back_at[0]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        own_server.kill()
        time.sleep(0.5)
        own_server.start()
        back_at.append(time.monotonic())
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not wrong
    assert all(failed), "every thread saw the outage"
    assert sorted(first_ok_after) == list(range(8))
    assert max(first_ok_after.values()) < 1.0, first_ok_after
    assert not failures_after


# --- the circuit breaker ---


def breaker_cache(server: Server, **options: Any) -> RedisCache:
    return RedisCache(
        server.url,
        {
            "OPTIONS": {
                "SOCKET_TIMEOUT": 0.2,
                "CIRCUIT_BREAKER": {"failures": 2, "reset_timeout": 0.5},
                **options,
            }
        },
    )


def test_an_open_circuit_fails_fast_then_probes(own_server: Server) -> None:
    cache = breaker_cache(own_server)
    cache.set("k", 1)
    own_server.pause()
    try:
        for _ in range(2):  # two timeouts open the circuit
            with pytest.raises(OUTAGE):
                cache.get("k")
        for call in (lambda: cache.get("k"), lambda: asyncio.run(cache.aget("k"))):
            started = time.monotonic()
            with pytest.raises(OUTAGE, match="circuit open"):
                call()
            assert time.monotonic() - started < 0.1  # half the socket timeout: no server asked
    finally:
        own_server.resume()
    with pytest.raises(OUTAGE, match="circuit open"):
        cache.get("k")  # still open: the reset timeout has not passed
    time.sleep(0.55)
    assert cache.get("k") == 1  # the probe succeeds and closes the circuit
    assert asyncio.run(cache.aget("k")) == 1


def test_a_down_redis_costs_microseconds_with_ignore_exceptions(own_server: Server) -> None:
    cache = breaker_cache(own_server, IGNORE_EXCEPTIONS=True)
    own_server.pause()
    try:
        assert cache.get("k", "d") == "d"
        assert cache.get("k", "d") == "d"  # two timeouts: the circuit opens
        started = time.perf_counter()
        for _ in range(1000):
            assert cache.get("k", "d") == "d"
        per_call = (time.perf_counter() - started) / 1000
    finally:
        own_server.resume()
    assert per_call < 100e-6, per_call


def test_a_failed_probe_keeps_the_circuit_open(own_server: Server) -> None:
    cache = breaker_cache(own_server)
    own_server.kill()
    for _ in range(2):
        with pytest.raises(OUTAGE, match="refused"):
            cache.get("k")
    with pytest.raises(OUTAGE, match="circuit open"):
        cache.get("k")
    time.sleep(0.55)
    with pytest.raises(OUTAGE, match="refused"):
        cache.get("k")  # the probe
    with pytest.raises(OUTAGE, match="circuit open"):
        cache.get("k")
