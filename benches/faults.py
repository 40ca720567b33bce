"""Reliability figures for README: how long calls take to fail when Redis is stalled, closed or
unreachable, how fast 8 busy threads recover from a SIGKILL + restart, and what a call costs
with the circuit open. Throwaway redis-servers on free ports.

    .venv/bin/python benches/faults.py            # the figures README quotes
    .venv/bin/python benches/faults.py --quick    # smoke mode (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django_redis_rs.cache import RedisCache  # noqa: E402
from tests.helpers import OUTAGE  # noqa: E402
from tests.servers import Server, free_port  # noqa: E402


def failing_ms(call: Callable[[], Any], n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        try:
            call()
        except OUTAGE:
            pass
        else:
            raise AssertionError("the call should have failed")
        times.append((time.perf_counter() - started) * 1000)
    return times


def spread(times: list[float]) -> str:
    return f"median {statistics.median(times):.1f} ms, max {max(times):.1f} ms"


def stalled(server: Server, n: int) -> None:
    timeout = 0.5
    cache = RedisCache(server.url, {"OPTIONS": {"SOCKET_TIMEOUT": timeout}})
    cache.set("k", 1)
    server.pause()
    try:
        sync = failing_ms(lambda: cache.get("k"), n)
        asyn = failing_ms(lambda: asyncio.run(cache.aget("k")), n)
    finally:
        server.resume()
    print(f"stalled server (SIGSTOP), SOCKET_TIMEOUT {timeout * 1000:.0f} ms:")
    print(f"  get:  {spread(sync)}; aget: {spread(asyn)}")


def closed_and_unreachable(n: int) -> None:
    closed = RedisCache(f"redis://127.0.0.1:{free_port()}", {})
    print(f"closed port: get fails in {spread(failing_ms(lambda: closed.get('k'), n))}")
    listener = socket.socket()  # a full accept queue: SYNs go unanswered
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())
    try:
        url = f"redis://127.0.0.1:{listener.getsockname()[1]}"
        cache = RedisCache(url, {"OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.3}})
        times = failing_ms(lambda: cache.get("k"), n)
    finally:
        filler.close()
        listener.close()
    print(f"unreachable host, SOCKET_CONNECT_TIMEOUT 300 ms: {spread(times)}")


def restart(server: Server) -> None:
    cache = RedisCache(server.url, {"OPTIONS": {"SOCKET_TIMEOUT": 1}})
    stop = threading.Event()
    back: list[float] = []
    recovered: dict[int, float] = {}
    errors_after = [0]

    def worker(n: int) -> None:
        while not stop.is_set():
            try:
                cache.set(f"w{n}", n)
                ok = cache.get(f"w{n}") == n
            except OUTAGE:
                if n in recovered:
                    errors_after[0] += 1
                continue
            if ok and back and n not in recovered:
                recovered[n] = (time.monotonic() - back[0]) * 1000

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    server.kill()
    time.sleep(0.5)
    server.start()
    back.append(time.monotonic())
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()
    print(
        f"SIGKILL + restart under 8 threads: all threads served again "
        f"{max(recovered.values()):.1f} ms after the server's return "
        f"(first {min(recovered.values()):.1f} ms); {errors_after[0]} errors after recovery"
    )


def breaker(server: Server, n: int) -> None:
    cache = RedisCache(
        server.url,
        {
            "OPTIONS": {
                "SOCKET_TIMEOUT": 0.2,
                "IGNORE_EXCEPTIONS": True,
                "CIRCUIT_BREAKER": {"failures": 3, "reset_timeout": 30},
            }
        },
    )
    server.pause()
    try:
        for _ in range(3):
            cache.get("k")
        started = time.perf_counter()
        for _ in range(n):
            cache.get("k")
        per_call = (time.perf_counter() - started) / n * 1e6
    finally:
        server.resume()
    print(f"stalled server, circuit open, IGNORE_EXCEPTIONS: get costs {per_call:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 2 if args.quick else 10
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed")
    server = Server("redis", binary).start()
    try:
        stalled(server, n)
        closed_and_unreachable(n)
        restart(server)
        breaker(server, 100 if args.quick else 10_000)
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
