"""The libraries around the cache, from PyPI, on our cache and a real server, each in a process
of its own (tests/apps/): what a team that switches BACKEND from django-redis keeps using. CI
also runs them where django-redis is not installed (tox's `integrations` environment)."""

from __future__ import annotations

import importlib.util

import pytest

from tests.apps import run
from tests.servers import Server

APPS = {
    "rq_jobs": "django_rq",
    "drf_throttling": "rest_framework",
    "ratelimit_views": "django_ratelimit",
    "debug_toolbar_panel": "debug_toolbar",
    "defender_lockout": "defender",
    "constance_redis": "constance",
    "health_check_cache": "health_check",
    "cachalot_queries": "cachalot",
    "subclassed_caches": "django_prometheus",
}


@pytest.mark.parametrize("script", sorted(APPS))
def test_library_works_on_our_cache(server: Server, script: str) -> None:
    if importlib.util.find_spec(APPS[script]) is None:
        pytest.skip(f"{APPS[script]} is not installed")
    server.command("FLUSHALL")
    seen = run(script, server.url)
    assert seen  # each script asserts what it needs; this is what it reported
