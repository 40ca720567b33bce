"""Memory soak: 1,000,000 sync cache calls (get/set/get_many/incr), then 100,000 async calls,
against a throwaway redis-server; the process's RSS growth after warm-up, per phase. A leak of
even a few bytes per call shows as megabytes here. The sync phase must stay under 5 MB.

    .venv/bin/python benches/soak.py            # the full run (about a minute)
    .venv/bin/python benches/soak.py --quick    # smoke mode (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django_redis_rs.cache import RedisCache  # noqa: E402
from tests.servers import Server  # noqa: E402

LIMIT_MB = 5.0


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def sync_calls(cache: RedisCache, n: int) -> None:
    keys = [f"k{i}" for i in range(100)]
    for i in range(n // 4):
        key = keys[i % 100]
        cache.set(key, {"i": i, "payload": "x" * (i % 300)})
        cache.get(key)
        cache.get_many(keys[:10])
        cache.incr("counter", ignore_key_check=True)


async def async_calls(cache: RedisCache, n: int) -> None:
    for i in range(n // 100):
        await asyncio.gather(*(cache.aget(f"k{j}") for j in range(50)))
        await asyncio.gather(*(cache.aset(f"a{j}", i) for j in range(50)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    calls, acalls = (20_000, 2_000) if args.quick else (1_000_000, 100_000)
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed")
    server = Server("redis", binary).start()
    try:
        cache = RedisCache(server.url, {"OPTIONS": {"SOCKET_TIMEOUT": 5}})
        sync_calls(cache, 40_000)  # warm-up: pools, runtime, allocator arenas
        asyncio.run(async_calls(cache, 20_000))
        gc.collect()
        before = rss_mb()
        sync_calls(cache, calls)
        gc.collect()
        after_sync = rss_mb()
        asyncio.run(async_calls(cache, acalls))
        gc.collect()
        after_async = rss_mb()
    finally:
        server.cleanup()
    grown = after_sync - before
    print(f"{calls:,} sync calls: RSS {before:.1f} -> {after_sync:.1f} MB ({grown:+.2f} MB)")
    print(
        f"{acalls:,} async calls: RSS {after_sync:.1f} -> {after_async:.1f} MB "
        f"({after_async - after_sync:+.2f} MB)"
    )
    if not args.quick and grown > LIMIT_MB:
        sys.exit(f"RSS grew {grown:.2f} MB over the sync calls, over {LIMIT_MB} MB")


if __name__ == "__main__":
    main()
