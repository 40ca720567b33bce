"""The Prometheus collector with the real prometheus_client: every configured cache's metrics()
at scrape time, in Prometheus's names, and django-prometheus's four counters when asked (which
clash, clearly, with django-prometheus's own)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from django.core.cache import caches  # noqa: E402
from django.test import override_settings  # noqa: E402
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest  # noqa: E402

from django_redis_rs.contrib.prometheus import register  # noqa: E402
from tests.servers import Server  # noqa: E402


def settings_for(server: Server) -> dict[str, Any]:
    ours = {"BACKEND": "django_redis_rs.cache.RedisCache", "LOCATION": server.url}
    return {
        "default": {**ours, "KEY_PREFIX": "prom"},
        "sessions": {**ours, "KEY_PREFIX": "prom-s", "OPTIONS": {"CLIENT_SIDE_CACHE": True}},
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }


def test_metrics_are_exported_per_cache(server: Server) -> None:
    server.command("FLUSHALL")
    with override_settings(CACHES=settings_for(server)):
        registry = CollectorRegistry()
        register(registry)
        cache = caches["default"]
        cache.reset_metrics()
        cache.set("k", {"a": 1})
        cache.get("k")
        cache.get("missing")
        asyncio.run(cache.aget("k"))
        cache.get_many(["k", "nope"])
        value = registry.get_sample_value
        labels = {"cache": "default"}
        assert value("django_redis_rs_get_calls_total", {**labels, "outcome": "hit"}) == 2
        assert value("django_redis_rs_get_calls_total", {**labels, "outcome": "miss"}) == 1
        assert value("django_redis_rs_cache_hits_total", labels) == 3  # get_many's key too
        assert value("django_redis_rs_commands_total", {**labels, "command": "SET"}) == 1
        p99 = {**labels, "command": "GET", "quantile": "0.99"}
        assert 0 < value("django_redis_rs_command_duration_seconds", p99) < 1
        assert value("django_redis_rs_signature_failures_total", labels) == 0
        text = generate_latest(registry).decode()
        assert 'django_redis_rs_client_side_cache_live{cache="sessions"}' in text
        assert 'cache="local"' not in text  # not ours
        assert "django_cache_get_total" not in text  # only when asked
        assert 'django_redis_rs_circuit_breaker_open{cache="default"' in text


def test_django_prometheus_names_when_asked(server: Server) -> None:
    server.command("FLUSHALL")
    with override_settings(CACHES=settings_for(server)):
        registry = CollectorRegistry()
        register(registry, django_prometheus_names=True)
        for alias in ("default", "sessions"):
            caches[alias].reset_metrics()
            caches[alias].get("k")
        caches["default"].set("k", 1)
        caches["default"].get("k")
        redis = {"backend": "redis"}
        assert registry.get_sample_value("django_cache_get_total", redis) == 3
        assert registry.get_sample_value("django_cache_get_hits_total", redis) == 1
        assert registry.get_sample_value("django_cache_get_misses_total", redis) == 2
        assert registry.get_sample_value("django_cache_get_fail_total", redis) == 0


def test_a_clash_with_django_prometheus_is_refused_clearly() -> None:
    pytest.importorskip("django_prometheus")
    import django_prometheus.cache.metrics  # noqa: F401  # registers django_cache_get_*

    with pytest.raises(ValueError, match="django-prometheus's cache backends"):
        register(REGISTRY, django_prometheus_names=True)
    collector = register(REGISTRY)  # our own names do not clash
    REGISTRY.unregister(collector)
