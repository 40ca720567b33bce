"""Cache classes that other projects build on django-redis's, written on ours the same way
(README, "Works with"): django-prometheus's counting backend and python-redis-lock's."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT

from django_redis_rs.cache import RedisCache, omit_exception
from django_redis_rs.exceptions import ConnectionInterrupted


class PrometheusRedisCache(RedisCache):
    """django-prometheus's ``cache.backends.redis.RedisCache``, with our imports."""

    @omit_exception
    def get(self, key: Any, default: Any = None, version: Any = None, client: Any = None) -> Any:
        from django_prometheus.cache.metrics import (
            django_cache_get_fail_total,
            django_cache_get_total,
            django_cache_hits_total,
            django_cache_misses_total,
        )

        try:
            django_cache_get_total.labels(backend="redis").inc()
            cached = self.client.get(key, default=None, version=version, client=client)
        except ConnectionInterrupted:
            django_cache_get_fail_total.labels(backend="redis").inc()
            raise
        if cached is not None:
            django_cache_hits_total.labels(backend="redis").inc()
            return cached
        django_cache_misses_total.labels(backend="redis").inc()
        return default


class LockingRedisCache(RedisCache):
    """python-redis-lock's ``redis_lock.django_cache.RedisCache``, with our imports."""

    @property
    def _raw(self) -> Any:
        return self.client.get_client()

    def lock(self, key: Any, expire: Any = None, id: Any = None, auto_renewal: bool = False) -> Any:  # type: ignore[override]
        from redis_lock import Lock

        return Lock(self._raw, key, expire=expire, id=id, auto_renewal=auto_renewal)

    def locked_get_or_set(
        self,
        key: str,
        value_creator: Any,
        version: Any = None,
        expire: Any = None,
        timeout: Any = DEFAULT_TIMEOUT,
    ) -> Any:
        value = self.get(key, version=version)
        if value is not None:
            return value
        with self.lock("get_or_set:" + key, expire=expire):
            value = self.get(key, version=version)
            if value is None:
                value = value_creator()
                self.set(key, value, timeout=timeout, version=version)
            return value
