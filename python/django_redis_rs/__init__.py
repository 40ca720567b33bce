"""django-redis-rs: a Redis/Valkey cache backend for Django with a Rust engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django_redis_rs._native import __version__

# django-redis's: the version as a tuple of ints (ours; code that compares it with django-redis's
# numbers should check which package it has).
VERSION = tuple(int(part) for part in __version__.split(".")[:3])

if TYPE_CHECKING:
    from redis import Redis


def get_redis_connection(alias: str = "default", write: bool = True) -> Redis:
    """django-redis's: the redis-py client (``redis.Redis``; for ``ClusterClient`` a
    ``redis.cluster.RedisCluster``) of the cache ``alias``, on the server django-redis would
    pick (``write=False``: a replica)."""
    from django.core.cache import caches

    try:
        get_client: Any = caches[alias].client.get_client  # type: ignore[attr-defined]
    except AttributeError:
        raise NotImplementedError("This backend does not support this feature") from None
    client: Redis = get_client(write)
    return client


__all__ = ["VERSION", "__version__", "get_redis_connection"]
