"""What telemetry costs: ``get``/``set``/``aget``/``aset`` on a cached dict, uninstrumented and
with OpenTelemetry's SDK instrumented (spans to a discarding exporter, and the duration
histogram), beside django-redis in the same process run; then ``aget`` with sentry-sdk's cache
spans, ours and django-redis's. Blocks of each row are interleaved; each row reports the median
block, in µs per call.

With ``--callgrind``, also the instructions one uninstrumented ``get``, ``set`` and ``sadd`` cost,
counted by valgrind's callgrind (the same figure on a noisy machine): the process runs 200 and
then 1,200 calls under callgrind, and the difference over 1,000 is one call's count, Python's part
included; for three fixed hash seeds, as the seed alone moves the count by up to a tenth.
``--package DIR`` counts another build's package instead (an unpacked wheel of an earlier
commit: the 1% budget is measured against it).

    .venv/bin/python benches/telemetry.py                 # latency rows
    .venv/bin/python benches/telemetry.py --callgrind     # and instructions per get
    .venv/bin/python benches/telemetry.py --quick         # smoke mode (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

VALUE = {"user": 42, "name": "alice", "roles": ["a", "b"], "ok": True}


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def per_acall_us(make: Callable[[], Any], n: int) -> float:
    async def run() -> float:
        started = time.perf_counter()
        for _ in range(n):
            await make()
        return (time.perf_counter() - started) / n * 1e6

    return asyncio.run(run())


class NullObserver:
    """An observer that records nothing: what the native layer's share of tracing costs
    (gathering each call's requests and handing them over), without the SDK's."""

    is_instrumented_by_opentelemetry = False

    def instrument(self, **kwargs: Any) -> None:
        from django_redis_rs import _native

        _native.set_observer(self)
        self.is_instrumented_by_opentelemetry = True

    def uninstrument(self) -> None:
        from django_redis_rs import _native

        _native.set_observer(None)
        self.is_instrumented_by_opentelemetry = False

    def begin(self) -> None:
        return None

    def end(self, context: Any, requests: Any) -> None:
        pass


def latency_rows(url: str, quick: bool) -> None:
    import django

    django.setup()
    from django_redis.cache import RedisCache as DjangoRedisCache
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    from django_redis_rs.cache import RedisCache
    from django_redis_rs.contrib.opentelemetry import RedisCacheInstrumentor

    class Discard(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Discard()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    # django-redis traced the way its users trace it: redis-py's instrumentor.
    instrumentors: dict[str, Any] = {"ours": RedisCacheInstrumentor(), "null": NullObserver()}
    try:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        instrumentors["django-redis"] = RedisInstrumentor()
    except ImportError:
        pass
    ours = RedisCache(url, {"KEY_PREFIX": "tel"})
    made = {
        "ours": ours,
        "null": ours,
        "django-redis": DjangoRedisCache(url, {"KEY_PREFIX": "tel-dr"}),
    }
    for cache in made.values():
        cache.set("k", VALUE)

    def instrumented(who: str, on: bool) -> None:
        for name, instrumentor in instrumentors.items():
            wanted = on and name == who
            if wanted and not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(**providers)
            if not wanted and instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()

    n, blocks = (50, 3) if quick else (2000, 7)
    rows: dict[tuple[str, str, bool], list[float]] = {}
    ops: dict[str, Callable[[Any], float]] = {
        "get": lambda c: per_call_us(lambda: c.get("k"), n),
        "set": lambda c: per_call_us(lambda: c.set("k", VALUE), n),
        "aget": lambda c: per_acall_us(lambda: c.aget("k"), n),
        "aset": lambda c: per_acall_us(lambda: c.aset("k", VALUE), n),
    }
    for _ in range(blocks):
        for who, cache in made.items():
            for on in ((False, True) if who in instrumentors else (False,))[who == "null" :]:
                instrumented(who, on)
                for op, measure in ops.items():
                    rows.setdefault((op, who, on), []).append(measure(cache))
    instrumented("", False)
    median = {row: statistics.median(times) for row, times in rows.items()}
    traced_theirs = "django-redis" in instrumentors
    print(
        f"| call (dict value), µs median of {blocks} blocks of {n} | ours | null observer "
        "| ours, instrumented | added | django-redis"
        + (" | django-redis, redis-py instrumented | added |" if traced_theirs else " |")
    )
    print("|---|---|---|---|---|---|" + ("---|---|" if traced_theirs else ""))
    for op in ops:
        off, on, dr = (
            median[(op, "ours", False)],
            median[(op, "ours", True)],
            median[(op, "django-redis", False)],
        )
        null = median[(op, "null", True)]
        line = f"| {op} | {off:.1f} | {null:.1f} | {on:.1f} | +{on - off:.1f} | {dr:.1f} |"
        if traced_theirs:
            dr_on = median[(op, "django-redis", True)]
            line += f" {dr_on:.1f} | +{dr_on - dr:.1f} |"
        print(line)


def sentry_rows(url: str, quick: bool) -> None:
    """``aget`` with sentry-sdk's cache spans on (``DjangoIntegration(cache_spans=True)``):
    ours with the span opened around the native coroutine, ours through the generic path (the
    wrapped sync ``get`` in a thread, as for a wrapper we do not know), django-redis's (Django's
    default ``aget``); and both without sentry. Calls run in transactions of 100 (sentry keeps
    at most 1,000 spans per transaction)."""
    import sentry_sdk
    from django_redis.cache import RedisCache as DjangoRedisCache
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.django.caching import _patch_cache
    from sentry_sdk.transport import Transport

    from django_redis_rs.cache import RedisCache

    class Discard(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            pass

    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",
        transport=Discard,
        traces_sample_rate=1.0,
        default_integrations=False,
        integrations=[DjangoIntegration(cache_spans=True)],
    )
    made: dict[str, Any] = {
        "ours": RedisCache(url, {"KEY_PREFIX": "s"}),
        "ours, sentry": RedisCache(url, {"KEY_PREFIX": "s"}),
        "ours, sentry, generic path": RedisCache(url, {"KEY_PREFIX": "s"}),
        "django-redis": DjangoRedisCache(url, {"KEY_PREFIX": "s-dr"}),
        "django-redis, sentry": DjangoRedisCache(url, {"KEY_PREFIX": "s-dr"}),
    }
    for who, cache in made.items():
        if "sentry" in who:
            _patch_cache(cache, "redis://127.0.0.1", None)
        cache.set("k", VALUE)
    generic = made["ours, sentry, generic path"]
    generic._arounds = {"get": (generic.get, None)}  # as for a wrapper we do not recognise

    n, blocks = (100, 3) if quick else (2000, 7)

    async def block(cache: Any) -> float:
        started = time.perf_counter()
        for _ in range(n // 100):
            with sentry_sdk.start_transaction(name="view", op="http.server"):
                for _ in range(100):
                    await cache.aget("k")
        return (time.perf_counter() - started) / n * 1e6

    rows: dict[str, list[float]] = {}
    for _ in range(blocks):
        for who, cache in made.items():
            rows.setdefault(who, []).append(asyncio.run(block(cache)))
    median = {who: statistics.median(times) for who, times in rows.items()}
    print(f"| aget (dict value), µs median of {blocks} blocks of {n} | µs |")
    print("|---|---|")
    for who, us in median.items():
        print(f"| {who} | {us:.1f} |")
    advantage = median["django-redis, sentry"] - median["ours, sentry"]
    fallback = median["ours, sentry, generic path"] - median["ours, sentry"]
    print(
        f"async advantage with sentry on: {advantage:.1f} µs; the generic path would cost "
        f"{fallback:.1f} µs of it ({fallback / advantage:.0%})"
    )
    sentry_sdk.init()  # off again


CALLS_CHILD = """
import os, sys
sys.path.insert(0, {root!r})
if {package!r}:
    sys.path.insert(0, {package!r})
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
django.setup()
from django_redis_rs.cache import RedisCache
cache = RedisCache({url!r}, {{"KEY_PREFIX": "tel"}})
cache.set("k", {value!r})
value = {value!r}
for _ in range(50):
    {call}  # warm: connection open, caches filled
for _ in range({n}):
    {call}
"""
# The calls counted: the hot path (get, written out in cache.py), a forwarded method (set,
# through IGNORE_EXCEPTIONS' wrapper) and a command-table method (sadd).
COUNTED = {
    "get": 'cache.get("k")',
    "set": 'cache.set("k", value)',
    "sadd": 'cache.sadd("s", 1)',
}


def instructions(url: str, n: int, package: str | None, seed: int, call: str) -> int:
    # The hash seed moves the count by up to a tenth (dict and set layouts): fixed, so two
    # builds are compared on the same ones.
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    script = CALLS_CHILD.format(
        root=str(ROOT), package=package or "", url=url, value=VALUE, n=n, call=call
    )
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}/cg.out",
                sys.executable,
                "-c",
                script,
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        summary = (Path(out) / "cg.out").read_text().split("summary:")[-1]
        return int(re.search(r"\d+", summary).group())  # type: ignore[union-attr]


SEEDS = (0, 1, 2)


def callgrind_rows(url: str, package: str | None) -> None:
    for name, call in COUNTED.items():
        counts = []
        for seed in SEEDS:
            few = instructions(url, 200, package, seed, call)
            many = instructions(url, 1200, package, seed, call)
            counts.append((many - few) / 1000)
        each = ", ".join(f"{c:,.0f}" for c in counts)
        print(
            f"instructions per uninstrumented {name} ({package or 'this build'}), hash seeds "
            f"{SEEDS}: {each}; median {statistics.median(counts):,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--package", help="count this directory's django_redis_rs instead")
    args = parser.parse_args()
    from tests.servers import Server, server_binary

    binary = server_binary("redis")
    assert binary is not None, "no redis-server"
    server = Server("redis", binary).start()
    try:
        if not args.package:
            latency_rows(server.url, args.quick)
            sentry_rows(server.url, args.quick)
        if args.callgrind:
            if shutil.which("valgrind") is None:
                sys.exit("--callgrind needs valgrind")
            callgrind_rows(server.url, args.package)
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
