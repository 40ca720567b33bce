"""The OpenTelemetry instrumentor with the real opentelemetry-sdk (in-memory span exporter and
metric reader) on real servers: a CLIENT span per request sent to one node, under the caller's
span, in sync and async code, for pipelines, fan-outs, failures and redirects; the duration
histogram and the pool and lookup metrics; and nothing at all when not instrumented."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.instrumentation")

from django.core.cache import caches  # noqa: E402
from django.test import override_settings  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode, Tracer  # noqa: E402

from django_redis_rs.cache import RedisCache  # noqa: E402
from django_redis_rs.contrib.opentelemetry import RedisCacheInstrumentor  # noqa: E402
from django_redis_rs.exceptions import ResponseError  # noqa: E402
from tests.servers import Server, node_id, wait_for  # noqa: E402

SECRET = "the-value-never-shows"


@dataclass
class Telemetry:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer: Tracer

    def cache_spans(self) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


def instrument(**kwargs: Any) -> Iterator[Telemetry]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentor = RedisCacheInstrumentor()
    instrumentor.instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider, **kwargs
    )
    try:
        yield Telemetry(exporter, reader, tracer_provider.get_tracer("test"))
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    yield from instrument()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_each_request_is_a_client_span_under_the_callers_span(
    otel: Telemetry, make_cache: Callable[..., RedisCache], server: Server
) -> None:
    cache = make_cache()
    with otel.tracer.start_as_current_span("view") as view:
        cache.set("k", {"secret": SECRET})
        assert cache.get("k") == {"secret": SECRET}
        assert cache.get_many(["k", "missing"]) == {"k": {"secret": SECRET}}
        cache.set_many({"a": 1, "b": 2}, timeout=60)
    spans = otel.cache_spans()
    assert [s.name for s in spans][:3] == ["SET 0", "GET 0", "MGET 0"]
    view_id = view.get_span_context().span_id
    for span in spans:
        assert span.parent is not None and span.parent.span_id == view_id
        a = attrs(span)
        assert a["db.system.name"] == server.kind
        assert (a["server.address"], a["server.port"], a["db.namespace"]) == (
            "127.0.0.1",
            server.port,
            "0",
        )
        assert "error.type" not in a and span.status.status_code is StatusCode.UNSET
        assert span.end_time is not None and span.start_time is not None
        assert span.end_time > span.start_time
        # No value, and no key unless asked for.
        assert SECRET not in repr(a) and "db.query.text" not in a
    # set_many with a timeout is one pipeline: one span, a batch.
    batch = spans[3]
    assert attrs(batch)["db.operation.batch.size"] > 1
    assert batch.name.startswith("BATCH")
    assert "db.operation.batch.size" not in attrs(spans[2])  # MGET is one command
    # The duration histogram has a point per operation kind, fed by the same requests.
    durations = otel.points("db.client.operation.duration")
    assert sum(p.count for p in durations) == len(spans)
    get_point = next(p for p in durations if p.attributes["db.operation.name"] == "GET")
    assert 0 < get_point.sum < 1


def test_a_failure_is_recorded_with_its_class_and_code(
    otel: Telemetry, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache()
    cache.set("text", "not a set")
    with pytest.raises(ResponseError):
        cache.sadd("text", "member")
    (span,) = [s for s in otel.cache_spans() if s.name.startswith("SADD")]
    assert attrs(span)["error.type"] == "ResponseError"
    assert attrs(span)["db.response.status_code"] == "WRONGTYPE"
    assert span.status.status_code is StatusCode.ERROR


def test_a_dead_server_is_recorded_as_a_connection_error(
    otel: Telemetry, make_cache: Callable[..., RedisCache], dead_url: str
) -> None:
    cache = make_cache(dead_url, {"IGNORE_EXCEPTIONS": True})
    assert cache.get("k", "fallback") == "fallback"
    (span,) = otel.cache_spans()
    assert attrs(span)["error.type"] == "ConnectionError"
    assert "db.response.status_code" not in attrs(span)


def test_async_calls_are_spans_under_each_tasks_own_span(
    otel: Telemetry, make_cache: Callable[..., RedisCache]
) -> None:
    cache = make_cache()

    async def view(name: str) -> str:
        with otel.tracer.start_as_current_span(name):
            await cache.aset(name, name)
            got = await cache.aget(name)
            await cache.aget_many([name, "other"])
            return str(got)

    async def both() -> list[str]:
        # Concurrent: their requests share one runtime task and one write, yet each span
        # belongs to the view that made it.
        return list(await asyncio.gather(view("first"), view("second")))

    assert asyncio.run(both()) == ["first", "second"]
    finished = otel.exporter.get_finished_spans()
    views = {s.context.span_id: s.name for s in finished if s.kind is SpanKind.INTERNAL}
    per_view: dict[str, list[str]] = {"first": [], "second": []}
    for span in otel.cache_spans():
        assert span.parent is not None
        per_view[views[span.parent.span_id]].append(span.name)
    assert per_view == {
        "first": ["SET 0", "GET 0", "MGET 0"],
        "second": ["SET 0", "GET 0", "MGET 0"],
    }


def test_a_client_side_cache_hit_sends_nothing_and_is_counted(
    otel: Telemetry, server: Server
) -> None:
    server.command("FLUSHALL")
    settings = {
        "default": {
            "BACKEND": "django_redis_rs.cache.RedisCache",
            "LOCATION": server.url,
            "KEY_PREFIX": "otel",
            "OPTIONS": {"CLIENT_SIDE_CACHE": True},
        }
    }
    with override_settings(CACHES=settings):
        cache = caches["default"]
        cache.get("warm-up")  # starts the invalidation listener
        wait_for(lambda: cache.metrics()["client_side_cache"]["live"], "the listener")
        cache.set("k", 1)
        cache.reset_metrics()
        otel.exporter.clear()
        assert cache.get("k") == 1  # from Redis, now held locally
        assert cache.get("k") == 1  # from process memory
        assert cache.get("nope") is None
        # The local hit made no span (a get asks for the value and its TTL, in one batch).
        queried = [attrs(s)["server.port"] for s in otel.cache_spans()]
        assert queried == [server.port, server.port]
        lookups = {
            p.attributes["outcome"]: p.value for p in otel.points("django_redis_rs.cache.lookups")
        }
        assert lookups == {"hit": 1, "local_hit": 1, "miss": 1}
        (limit,) = otel.points("db.client.connection.max")
        assert limit.value >= 1
        states = {
            p.attributes["db.client.connection.state"]
            for p in otel.points("db.client.connection.count")
        }
        assert states == {"idle", "used"}


def test_keys_appear_only_when_asked_and_values_never(
    make_cache: Callable[..., RedisCache],
) -> None:
    cache = make_cache()
    for telemetry in instrument(capture_keys=True):
        cache.set("visible-key", SECRET)
        cache.get_many(["visible-key", "other-key"])
        set_span, mget_span = telemetry.cache_spans()
        assert attrs(set_span)["db.query.text"].startswith("SET :1:visible-key")
        assert attrs(mget_span)["db.query.text"] == "MGET :1:visible-key :1:other-key"
        assert SECRET not in repr(attrs(set_span))


def test_nothing_is_recorded_once_uninstrumented(make_cache: Callable[..., RedisCache]) -> None:
    cache = make_cache()
    telemetry = next(instrument_and_stop())
    cache.set("k", 1)
    cache.get("k")
    asyncio.run(cache.aget("k"))
    assert telemetry.cache_spans() == []


def instrument_and_stop() -> Iterator[Telemetry]:
    generator = instrument()
    telemetry = next(generator)
    generator.close()  # uninstruments
    yield telemetry


def test_cluster_fan_out_is_a_span_per_node_and_redirects_and_retries_are_events(
    otel: Telemetry, cluster: list[Server]
) -> None:
    cache = RedisCache(
        cluster[0].url, {"OPTIONS": {"CLIENT_CLASS": "django_redis_rs.client.ClusterClient"}}
    )
    data = {f"m{i}": i for i in range(30)}
    cache.set_many(data)
    otel.exporter.clear()
    assert cache.get_many(list(data)) == data
    ports = {attrs(s)["server.port"] for s in otel.cache_spans()}
    assert ports == {n.port for n in cluster}  # one request to each node
    # A slot being migrated: the source answers ASK, and the client asks the target.
    key = ":1:{moving}a"
    slot = cluster[0].command("CLUSTER", "KEYSLOT", key)[1:-2].decode()
    cache.set("{moving}a", "before")
    source = next(n for n in cluster if n.command("EXISTS", key) == b":1\r\n")
    target = next(n for n in cluster if n is not source)
    target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(source))
    source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(target))
    source.command("MIGRATE", "127.0.0.1", str(target.port), key, "0", "5000")
    otel.exporter.clear()
    assert cache.get("{moving}a") == "before"
    asked, answered = otel.cache_spans()
    assert attrs(asked)["server.port"] == source.port
    assert attrs(asked)["db.response.status_code"] == "ASK"
    assert [(e.name, e.attributes["detail"]) for e in asked.events] == [
        ("redirect", f"127.0.0.1:{target.port}")
    ]
    assert (attrs(answered)["server.port"], answered.name) == (target.port, "GET 0")
    assert "error.type" not in attrs(answered)
    # The slot handed over: the source answers MOVED, and the request is routed again (the
    # slot map fetched anew).
    for node in cluster:
        node.command("CLUSTER", "SETSLOT", slot, "NODE", node_id(target))
    otel.exporter.clear()
    assert cache.get("{moving}a") == "before"
    moved, answered = otel.cache_spans()
    assert (attrs(moved)["server.port"], attrs(moved)["db.response.status_code"]) == (
        source.port,
        "MOVED",
    )
    assert [e.name for e in moved.events] == ["retry"]
    assert attrs(answered)["server.port"] == target.port


def test_the_entry_point_names_the_instrumentor() -> None:
    (found,) = [
        e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "django_redis_rs"
    ]
    assert found.load() is RedisCacheInstrumentor


def test_opentelemetry_is_not_imported_unless_asked(server: Server) -> None:
    script = f"""
import os, sys, django
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
django.setup()
from django_redis_rs.cache import RedisCache
cache = RedisCache({server.url!r}, {{}})
cache.set("k", 1)
assert cache.get("k") == 1
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
