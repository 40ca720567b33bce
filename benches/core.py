"""Core cache operations, django-redis-rs beside django-redis 7.0 (with hiredis) and a raw-socket
floor (a bare RESP GET over one TCP socket), in one process run, interleaved in blocks; the best
block of each is kept. A throwaway redis-server is started on a free port.

    taskset -c 1 .venv/bin/python benches/core.py      # pinned: client and server on one CPU
    .venv/bin/python benches/core.py --quick           # smoke mode (CI)
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django_redis.cache import RedisCache as DjangoRedisCache  # noqa: E402

from django_redis_rs.cache import RedisCache  # noqa: E402
from tests.servers import Server  # noqa: E402


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed")
    server = Server("redis", binary).start()
    try:
        run(server, 1 if args.quick else args.blocks, 0.02 if args.quick else 1.0)
    finally:
        server.cleanup()


def run(server: Server, blocks: int, scale: float) -> None:
    ours = RedisCache(server.url, {"KEY_PREFIX": "ours"})
    parser = {"PARSER_CLASS": "redis.connection._HiredisParser"}
    theirs = DjangoRedisCache(server.url, {"KEY_PREFIX": "theirs", "OPTIONS": parser})
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nabc\r\n")
    sock.recv(100)

    def floor() -> None:
        sock.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        sock.recv(100)

    keys = [f"k{i}" for i in range(100)]
    data = dict.fromkeys(keys, "v" * 20)
    for cache in (ours, theirs):
        cache.set("small", "x" * 50)
        cache.set_many(data)
    ops: dict[str, tuple[Callable[[Any], Callable[[], Any]], int]] = {
        "get": (lambda c: lambda: c.get("small"), 3000),
        "get miss": (lambda c: lambda: c.get("missing"), 3000),
        "set": (lambda c: lambda: c.set("small", "x" * 50), 3000),
        "incr": (lambda c: lambda: c.incr("n", ignore_key_check=True), 3000),
        "get_many(100)": (lambda c: lambda: c.get_many(keys), 500),
        "set_many(100)": (lambda c: lambda: c.set_many(data), 300),
        "delete_many(100)": (lambda c: lambda: c.delete_many(keys), 300),
    }
    best: dict[Any, float] = {}
    for _ in range(blocks):
        best["floor"] = min(best.get("floor", 1e9), per_call_us(floor, max(3, int(3000 * scale))))
        for name, (make, n) in ops.items():
            for label, cache in (("ours", ours), ("theirs", theirs)):
                took = per_call_us(make(cache), max(3, int(n * scale)))
                best[name, label] = min(best.get((name, label), 1e9), took)
    print(f"raw-socket floor (GET): {best['floor']:.1f} µs")
    print("| operation | django-redis-rs µs | django-redis µs | ratio | vs floor |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in ops:
        o, t = best[name, "ours"], best[name, "theirs"]
        print(f"| {name} | {o:.1f} | {t:.1f} | {o / t:.2f}x | {o / best['floor']:.2f}x |")


if __name__ == "__main__":
    main()
