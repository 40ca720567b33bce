"""50 concurrent ``aget`` calls and ``aget_many(100)``: django-redis-rs (native async) beside
Django's built-in RedisCache and django-redis (both run the sync call in a thread through
``sync_to_async``), in one process run, interleaved; best of the blocks.

    .venv/bin/python benches/async.py
    .venv/bin/python benches/async.py --quick      # smoke mode (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.core.cache.backends.redis import RedisCache as BuiltinRedisCache  # noqa: E402
from django_redis.cache import RedisCache as DjangoRedisCache  # noqa: E402

from django_redis_rs.cache import RedisCache  # noqa: E402
from tests.servers import Server  # noqa: E402


async def concurrent_agets(cache: Any, rounds: int) -> float:
    """Operations per second for rounds of 50 concurrent aget calls."""
    started = time.perf_counter()
    for _ in range(rounds):
        await asyncio.gather(*(cache.aget(f"k{i}") for i in range(50)))
    return rounds * 50 / (time.perf_counter() - started)


async def aget_many(cache: Any, rounds: int, keys: list[str]) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        await cache.aget_many(keys)
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed")
    server = Server("redis", binary).start()
    try:
        caches = {
            "django-redis-rs": RedisCache(server.url, {}),
            "Django built-in": BuiltinRedisCache(server.url, {}),
            "django-redis": DjangoRedisCache(server.url, {}),
        }
        keys = [f"k{i}" for i in range(100)]
        for cache in caches.values():
            cache.set_many(dict.fromkeys(keys, "v" * 20))
        rounds, blocks = (2, 1) if args.quick else (60, 5)
        best: dict[tuple[str, str], float] = {}

        async def measure() -> None:
            for _ in range(blocks):
                for name, cache in caches.items():
                    ops = await concurrent_agets(cache, rounds)
                    best[name, "ops"] = max(best.get((name, "ops"), 0.0), ops)
                    took = await aget_many(cache, rounds, keys)
                    best[name, "many"] = min(best.get((name, "many"), 1e12), took)

        asyncio.run(measure())
        base = best["Django built-in", "ops"]
        print("| backend | 50 concurrent aget, ops/s | vs built-in | aget_many(100), µs |")
        print("| --- | ---: | ---: | ---: |")
        for name in caches:
            ops, many = best[name, "ops"], best[name, "many"]
            print(f"| {name} | {ops:,.0f} | {ops / base:.1f}x | {many:.0f} |")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
