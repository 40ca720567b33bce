"""Prometheus: every configured cache's ``metrics()``, read at scrape time (nothing is counted
per call beyond what the native layer counts anyway). Needs ``prometheus_client``
(``pip install django-redis-rs[prometheus]``).

    from django_redis_rs.contrib.prometheus import register
    register()  # into prometheus_client's REGISTRY, which django-prometheus's /metrics serves

``register(django_prometheus_names=True)`` also exports django-prometheus's four
``django_cache_get_*`` counters (``backend="redis"``), for dashboards built on them; its own
cache backends register the same names, so that is refused while they are in use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.cache import caches
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

from django_redis_rs.cache import RedisCache

PREFIX = "django_redis_rs"
QUANTILES = (("0.5", "p50_us"), ("0.9", "p90_us"), ("0.99", "p99_us"))
# django-prometheus's counters (each exported as <name>_total) and what of metrics()["get"]
# they count.
DJANGO_PROMETHEUS = (
    ("django_cache_get", "calls"),
    ("django_cache_get_hits", "hits"),
    ("django_cache_get_misses", "misses"),
    ("django_cache_get_fail", "failures"),
)


class CacheCollector(Collector):
    def __init__(self, *, django_prometheus_names: bool = False) -> None:
        self.django_prometheus_names = django_prometheus_names

    def describe(self) -> Iterator[Metric]:
        """The families' names without reading any cache, so that a clash shows at register."""
        yield from self._families().values()

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        compat = dict.fromkeys((outcome for _, outcome in DJANGO_PROMETHEUS), 0)
        for alias, cache in _our_caches():
            metrics = cache.metrics()
            self._add(families, alias, metrics)
            for outcome in compat:
                compat[outcome] += metrics["get"][outcome]
        if self.django_prometheus_names:
            for name, outcome in DJANGO_PROMETHEUS:
                families[name].add_metric(["redis"], compat[outcome])
        yield from families.values()

    def _families(self) -> dict[str, Any]:
        def counter(name: str, doc: str, *labels: str) -> CounterMetricFamily:
            return CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=["cache", *labels])

        def gauge(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=["cache", *labels])

        families: dict[str, Any] = {
            "hits": counter("cache_hits", "Keys found by get and get_many"),
            "misses": counter("cache_misses", "Keys not found by get and get_many"),
            "get": counter("get_calls", "get/aget calls by outcome", "outcome"),
            "calls": counter("commands", "Redis requests sent, by first command", "command"),
            "errors": counter("command_errors", "Failed Redis requests", "command"),
            "latency": gauge(
                "command_duration_seconds",
                "Request latency quantiles since start or reset (within 1/8)",
                "command",
                "quantile",
            ),
            "local_hits": counter("client_side_cache_hits", "Hits served from process memory"),
            "local_entries": gauge("client_side_cache_entries", "Values held locally"),
            "local_bytes": gauge("client_side_cache_bytes", "Bytes held locally"),
            "local_live": gauge("client_side_cache_live", "1 while invalidations arrive"),
            "ignored": counter("ignored_errors", "Errors IGNORE_EXCEPTIONS swallowed", "error"),
            "forged": counter("signature_failures", "Values SIGNED_VALUES read as misses"),
            "connections": gauge("connections", "Pooled connections", "server", "state"),
            "breaker": gauge("circuit_breaker_open", "1 while the circuit is open", "server"),
            "trips": counter("circuit_breaker_trips", "Times the circuit opened", "server"),
        }
        if self.django_prometheus_names:
            for name, outcome in DJANGO_PROMETHEUS:
                doc = f"get {outcome} (django-prometheus's name)"
                families[name] = CounterMetricFamily(name, doc, labels=["backend"])
        return families

    @staticmethod
    def _add(families: dict[str, Any], alias: str, metrics: dict[str, Any]) -> None:
        families["hits"].add_metric([alias], metrics["hits"])
        families["misses"].add_metric([alias], metrics["misses"])
        for outcome, key in (("hit", "hits"), ("miss", "misses"), ("failure", "failures")):
            families["get"].add_metric([alias, outcome], metrics["get"][key])
        for command, figures in metrics["commands"].items():
            families["calls"].add_metric([alias, command], figures["calls"])
            families["errors"].add_metric([alias, command], figures["errors"])
            for quantile, key in QUANTILES:
                families["latency"].add_metric([alias, command, quantile], figures[key] / 1e6)
        local = metrics.get("client_side_cache")
        if local is not None:
            families["local_hits"].add_metric([alias], local["hits"])
            families["local_entries"].add_metric([alias], local["entries"])
            families["local_bytes"].add_metric([alias], local["bytes"])
            families["local_live"].add_metric([alias], int(local["live"]))
        for error, count in metrics["ignored_errors"].items():
            families["ignored"].add_metric([alias, error], count)
        families["forged"].add_metric([alias], metrics["signature_failures"])
        for server, stats in metrics["servers"].items():
            families["connections"].add_metric([alias, server, "in_use"], stats["in_use"])
            families["connections"].add_metric([alias, server, "idle"], stats["idle"])
            families["breaker"].add_metric([alias, server], int(stats["breaker"] == "open"))
            families["trips"].add_metric([alias, server], stats["breaker_trips"])


def _our_caches() -> Iterator[tuple[str, RedisCache]]:
    for alias in settings.CACHES:
        cache = caches[alias]
        if isinstance(cache, RedisCache) and cache.configuration_error is None:
            yield alias, cache


def register(
    registry: CollectorRegistry = REGISTRY, *, django_prometheus_names: bool = False
) -> CacheCollector:
    """Register the collector (once per process: at startup, say in an ``AppConfig.ready``)."""
    collector = CacheCollector(django_prometheus_names=django_prometheus_names)
    try:
        registry.register(collector)
    except ValueError as clash:
        raise ValueError(
            f"django_redis_rs.contrib.prometheus could not register ({clash}): "
            "django_prometheus_names=True exports django_cache_get_*, which "
            "django-prometheus's cache backends register themselves. Use one or the other."
        ) from None
    return collector


__all__ = ["CacheCollector", "register"]
