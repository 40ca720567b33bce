"""OpenTelemetry: a CLIENT span per request sent to one node, on every path (sync, async,
pipelines, multi-key fan-out; every topology), and the database client metrics. Off until
instrumented; needs ``pip install django-redis-rs[otel]``.

    from django_redis_rs.contrib.opentelemetry import RedisCacheInstrumentor
    RedisCacheInstrumentor().instrument(tracer_provider=..., meter_provider=...)

``opentelemetry-instrument`` turns it on by itself (the ``opentelemetry_instrumentor`` entry
point). The requests are seen, timed and classified by the native layer: this module only turns
each one into a span, once the call ends, under the context of the code that made the call.

Spans follow the database semantic conventions: ``db.system.name`` (``redis``, or ``valkey``
where the server says so), ``db.operation.name`` (``BATCH ...`` for a pipeline, with
``db.operation.batch.size``), ``db.namespace`` (the db index), ``server.address`` and
``server.port`` of the node that answered, and on failure ``error.type`` (redis-py's class) and
``db.response.status_code`` (the server's error code). A failed request that is retried or
redirected carries a ``retry`` or ``redirect`` event. Values never appear; keys appear in
``db.query.text`` only with ``instrument(capture_keys=True)``. A hit served by the client-side
cache sends nothing and makes no span; it is counted.

Metrics: ``db.client.operation.duration`` (histogram, seconds, from the native timings),
``db.client.connection.count`` (``state`` idle/used) and ``db.client.connection.max`` per
server, and ``django_redis_rs.cache.lookups`` (``outcome`` hit/miss/local_hit) per cache.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any

from django.core.cache import caches
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.metrics import CallbackOptions, Meter, Observation, get_meter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from django_redis_rs import _native
from django_redis_rs.cache import RedisCache

__all__ = ["RedisCacheInstrumentor"]

_VERSION: str = _native.__version__
_SCHEMA = "https://opentelemetry.io/schemas/1.33.0"
# The conventions' advice for db.client.operation.duration (seconds).
_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)


class _Observer:
    """What the native layer calls: ``begin`` as a call starts, in the caller's context;
    ``end`` with the call's requests once it has ended."""

    def __init__(self, tracer: Tracer, meter: Meter) -> None:
        self._tracer = tracer
        self._duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )

    def begin(self) -> otel_context.Context:
        return otel_context.get_current()

    def end(self, parent: otel_context.Context, requests: Iterable[tuple[Any, ...]]) -> None:
        for request in requests:
            self._record(parent, *request)

    def _record(
        self,
        parent: otel_context.Context,
        operation: str,
        batch: int,
        address: str,
        port: int | None,
        db: int,
        system: str,
        started_ns: int,
        ended_ns: int,
        error: str | None,
        status_code: str | None,
        events: list[tuple[str, str]],
        query: str | None,
    ) -> None:
        namespace = str(db)
        common: dict[str, Any] = {
            "db.system.name": system,
            "db.operation.name": operation,
            "db.namespace": namespace,
            "server.address": address,
        }
        if port is not None:
            common["server.port"] = port
        if error is not None:
            common["error.type"] = error
        if status_code is not None:
            common["db.response.status_code"] = status_code
        self._duration.record((ended_ns - started_ns) / 1e9, common)
        attributes = dict(common)
        if batch > 1:
            attributes["db.operation.batch.size"] = batch
        if query is not None:
            attributes["db.query.text"] = query
        span = self._tracer.start_span(
            f"{operation} {namespace}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=started_ns,
        )
        for name, detail in events:
            span.add_event(name, {"detail": detail}, timestamp=ended_ns)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=ended_ns)


def _our_caches() -> Iterator[tuple[str, RedisCache]]:
    from django.conf import settings

    for alias in getattr(settings, "CACHES", {}):
        cache = caches[alias]
        if isinstance(cache, RedisCache):
            yield alias, cache


def _servers() -> dict[str, dict[str, Any]]:
    """Each server's pool figures once, though several caches may share its pool."""
    servers: dict[str, dict[str, Any]] = {}
    for _, cache in _our_caches():
        try:
            servers.update(cache.metrics()["servers"])
        except Exception:  # a cache whose settings were refused has no servers to report
            continue
    return servers


def _connections(options: CallbackOptions) -> Iterator[Observation]:
    for server, stats in _servers().items():
        for state, count in (("idle", stats["idle"]), ("used", stats["in_use"])):
            yield Observation(
                count,
                {"db.client.connection.pool.name": server, "db.client.connection.state": state},
            )


def _connection_limits(options: CallbackOptions) -> Iterator[Observation]:
    for server, stats in _servers().items():
        yield Observation(stats["max"], {"db.client.connection.pool.name": server})


def _lookups(options: CallbackOptions) -> Iterator[Observation]:
    for alias, cache in _our_caches():
        try:
            metrics = cache.metrics()
        except Exception:
            continue
        local = metrics.get("client_side_cache", {}).get("hits", 0)
        for outcome, count in (
            ("hit", metrics["hits"] - local),
            ("local_hit", local),
            ("miss", metrics["misses"]),
        ):
            yield Observation(count, {"cache": alias, "outcome": outcome})


# The instruments read at collection time: the pools' counts (up-down counters, as the
# conventions name them) and the cache's lookups (a counter).
_OBSERVED = (
    (
        "db.client.connection.count",
        _connections,
        "{connection}",
        "The connections open to each server, by state.",
    ),
    (
        "db.client.connection.max",
        _connection_limits,
        "{connection}",
        "The most connections each server's pool opens.",
    ),
    (
        "django_redis_rs.cache.lookups",
        _lookups,
        "{key}",
        "Keys looked up by get and get_many, by outcome.",
    ),
)


class RedisCacheInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Spans and metrics for every django-redis-rs cache in the process."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(
            __name__, _VERSION, tracer_provider=kwargs.get("tracer_provider"), schema_url=_SCHEMA
        )
        meter = get_meter(
            __name__, _VERSION, meter_provider=kwargs.get("meter_provider"), schema_url=_SCHEMA
        )
        for name, callback, unit, description in _OBSERVED:
            create = (
                meter.create_observable_counter
                if name.startswith("django_redis_rs.")
                else meter.create_observable_up_down_counter
            )
            create(name, callbacks=[callback], unit=unit, description=description)
        _native.set_observer(
            _Observer(tracer, meter), with_keys=bool(kwargs.get("capture_keys", False))
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        _native.set_observer(None)
