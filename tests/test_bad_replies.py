"""A connection whose reply could not be read is dropped, never reused: after a garbled, cut or
unparseable reply (from a real server or a fake one), later calls on the same pool get their
own replies, sync and async."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis.exceptions

from django_redis_rs._native import REPLY_RAW
from django_redis_rs.cache import RedisCache
from django_redis_rs.exceptions import ConnectionInterrupted
from tests.servers import Server

# What the fake server answers to `GET <key>`, by key; any other GET gets the integer 5.
BAD_REPLIES = {
    "garbled": b"$3\r\nabcdef\r\n",  # longer than announced
    "unknown-type": b"?what\r\n",
    "binary-error": b"-ERR \xff\xfe\r\n",  # an error line that is not UTF-8
    "cut": b"$10\r\nabc",  # then the server hangs up
}


def read_command(stream: Any) -> list[bytes] | None:
    header = stream.readline()
    if not header.startswith(b"*"):
        return None
    parts = []
    for _ in range(int(header[1:])):
        size = int(stream.readline()[1:])
        parts.append(stream.read(size + 2)[:-2])
    return parts


class FakeServer:
    """Answers GET on a loopback port, badly for the keys in BAD_REPLIES, slowly for "drip",
    endlessly for "huge"."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as stream:
            while (command := read_command(stream)) is not None:
                # The handshake's commands (CLIENT SETINFO, HELLO) are answered +OK below.
                key = command[-1].decode(errors="replace").rsplit(":", 1)[-1]
                if command[0].upper() != b"GET":
                    conn.sendall(b"+OK\r\n")
                elif key == "drip":
                    # A valid reply, one byte every 0.25 s (each read gets a byte in time).
                    try:
                        for byte in b"$5\r\nhello\r\n":
                            conn.sendall(bytes([byte]))
                            time.sleep(0.25)
                    except OSError:  # the client gave up, as it should
                        return
                elif key == "huge":
                    # 2^40 nils announced, then sent until the client hangs up.
                    try:
                        conn.sendall(b"*1099511627776\r\n")
                        while not self.stopped:
                            conn.sendall(b"$-1\r\n" * 65536)
                    except OSError:
                        return
                elif key in BAD_REPLIES:
                    conn.sendall(BAD_REPLIES[key])
                    if key == "cut":
                        return
                else:
                    conn.sendall(b"$1\r\n5\r\n")

    def close(self) -> None:
        self.stopped = True
        self.listener.close()


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    srv = FakeServer()
    yield srv
    srv.close()


def hammer(call: Callable[[], Any], expected: Any) -> tuple[int, int]:
    """100 calls from each of 8 threads: (errors, wrong values)."""
    errors = wrong = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal errors, wrong
        for _ in range(100):
            try:
                got = call()
            except Exception:
                with lock:
                    errors += 1
                continue
            if got != expected:
                with lock:
                    wrong += 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors, wrong


def one_connection(url: str) -> RedisCache:
    """A pool of one connection: a kept bad connection would serve every later call."""
    options = {"SOCKET_TIMEOUT": 2, "CONNECTION_POOL_KWARGS": {"max_connections": 1}}
    return RedisCache(url, {"OPTIONS": options})


@pytest.mark.parametrize("bad", sorted(BAD_REPLIES))
def test_a_bad_reply_from_a_fake_server_drops_the_connection(fake: FakeServer, bad: str) -> None:
    cache = one_connection(f"redis://127.0.0.1:{fake.port}")
    assert cache.get("k") == 5
    with pytest.raises(redis.exceptions.ConnectionError):
        cache.get(bad)
    assert hammer(lambda: cache.get("k"), 5) == (0, 0)


@pytest.mark.parametrize("bad", sorted(BAD_REPLIES))
def test_a_bad_reply_drops_the_async_connection_too(fake: FakeServer, bad: str) -> None:
    cache = one_connection(f"redis://127.0.0.1:{fake.port}")

    async def scenario() -> list[Any]:
        assert await cache.aget("k") == 5
        with pytest.raises(redis.exceptions.ConnectionError):
            await cache.aget(bad)
        return await asyncio.gather(*(cache.aget("k") for _ in range(100)))

    assert asyncio.run(scenario()) == [5] * 100


def test_a_non_utf8_error_reply_from_redis(server: Server) -> None:
    cache = one_connection(f"{server.url}/1")
    cache.set("k", {"v": 1})
    native = cache.client._native
    poison = ("EVAL", "return redis.error_reply(ARGV[1])", 0, b"\xff")
    with pytest.raises(redis.exceptions.ConnectionError, match="could not be read"):
        cache.client.get_native_client().execute_command(*poison)
    assert hammer(lambda: cache.get("k"), {"v": 1}) == (0, 0)
    assert native.execute(False, ("GET", ":1:missing"), REPLY_RAW) is None

    async def scenario() -> list[Any]:
        with pytest.raises(Exception) as info:
            await native.aexecute(True, poison, REPLY_RAW)
        assert "could not be read" in str(info.value)
        return await asyncio.gather(*(cache.aget("k") for _ in range(100)))

    assert asyncio.run(scenario()) == [{"v": 1}] * 100
    # An ordinary error reply keeps its connection: it was read whole. At the client level it
    # is a ConnectionInterrupted caused by a ResponseError, as django-redis's client raises it.
    stats_before = native.pool_stats()
    with pytest.raises(ConnectionInterrupted) as refused:
        native.execute(True, ("EVAL", "return redis.error_reply('MINE')", 0), REPLY_RAW)
    assert isinstance(refused.value.__cause__, redis.exceptions.ResponseError)
    assert native.pool_stats() == stats_before


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_socket_timeout_bounds_the_whole_call_not_each_read(fake: FakeServer, mode: str) -> None:
    """A reply trickling in a byte every 0.25 s (3 s in all) fails at SOCKET_TIMEOUT (1 s),
    though no single read waits that long."""
    cache = RedisCache(f"redis://127.0.0.1:{fake.port}", {"OPTIONS": {"SOCKET_TIMEOUT": 1}})
    assert cache.get("k") == 5
    started = time.monotonic()
    with pytest.raises(redis.exceptions.TimeoutError):
        if mode == "sync":
            cache.get("drip")
        else:
            asyncio.run(cache.aget("drip"))
    took = time.monotonic() - started
    assert 0.9 < took < 1.3, took
    assert cache.get("k") == 5


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_reply_over_the_size_limit_is_refused_at_its_header(fake: FakeServer, mode: str) -> None:
    """2^40 nils announced: the call fails at once with a clear error instead of growing the
    process while they arrive; the connection is dropped and the next call is served."""
    cache = one_connection(f"redis://127.0.0.1:{fake.port}")
    assert cache.get("k") == 5
    before = rss_mb()
    started = time.monotonic()
    with pytest.raises(redis.exceptions.ConnectionError, match="values in one reply"):
        if mode == "sync":
            cache.get("huge")
        else:
            asyncio.run(cache.aget("huge"))
    assert time.monotonic() - started < 1
    assert rss_mb() - before < 50
    assert hammer(lambda: cache.get("k"), 5) == (0, 0)
