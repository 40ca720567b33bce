"""Client-side caching: how soon a write by another client is seen by a cache that keeps values
locally (CLIENT_SIDE_CACHE), against a throwaway redis-server. Each round: the key is read until
it is served locally, a second client (no local cache) writes it, and the clock runs from that
write's return until this cache's get returns the new value.

    .venv/bin/python benches/invalidation.py            # 1,000 writes
    .venv/bin/python benches/invalidation.py --quick    # smoke mode (CI)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django_redis_rs.cache import RedisCache  # noqa: E402
from tests.servers import Server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    writes = 50 if parser.parse_args().quick else 1000
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed")
    server = Server("redis", binary).start()
    try:
        local = RedisCache(
            server.url, {"KEY_PREFIX": "inv", "OPTIONS": {"CLIENT_SIDE_CACHE": True}}
        )
        other = RedisCache(server.url, {"KEY_PREFIX": "inv"})
        other.set("k", 0)
        delays = []
        for i in range(1, writes + 1):
            hits = local.metrics()["client_side_cache"]["hits"]
            while local.metrics()["client_side_cache"]["hits"] == hits:  # served locally
                local.get("k")
            other.set("k", i)
            started = time.perf_counter()
            while local.get("k") != i:
                if time.perf_counter() - started > 1:
                    sys.exit(f"write {i} not seen after 1 s")
            delays.append((time.perf_counter() - started) * 1e6)
    finally:
        server.cleanup()
    delays.sort()
    print(
        f"{writes} writes by another client, seen by the next get after: median "
        f"{statistics.median(delays):.0f} µs, p90 {delays[int(writes * 0.9)]:.0f} µs, "
        f"p99 {delays[int(writes * 0.99)]:.0f} µs, max {delays[-1]:.0f} µs"
    )


if __name__ == "__main__":
    main()
