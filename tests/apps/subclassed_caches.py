"""The subclasses of tests/apps/subclasses.py as BACKEND: django-prometheus's counters move for
sync and async reads (aget calls the overridden get), and python-redis-lock's lock works."""

import asyncio
import os

from tests.apps import configure, report

url = os.environ["REDIS_URL"]
configure(
    [],
    CACHES={
        "default": {"BACKEND": "tests.apps.subclasses.PrometheusRedisCache", "LOCATION": url},
        "locks": {"BACKEND": "tests.apps.subclasses.LockingRedisCache", "LOCATION": url},
    },
)

from django.core.cache import caches  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"backend": "redis"}) or 0.0


cache = caches["default"]
cache.clear()
cache.set("k", {"a": 1})
assert cache.get("k") == {"a": 1} and cache.get("missing") is None


async def view() -> None:
    assert await cache.aget("k") == {"a": 1}
    assert await cache.aget("missing", "d") == "d"


asyncio.run(view())
gets = counted("django_cache_get_total")
hits, misses = counted("django_cache_get_hits_total"), counted("django_cache_get_misses_total")
assert (gets, hits, misses) == (4, 2, 2), (gets, hits, misses)

locks = caches["locks"]
made = locks.locked_get_or_set("report", lambda: {"rows": 3}, expire=10)
assert made == {"rows": 3} and locks.get("report") == {"rows": 3}
with locks.lock("job", expire=10) as held:
    assert held is not None
report(gets=gets, hits=hits, misses=misses, locked=made)
