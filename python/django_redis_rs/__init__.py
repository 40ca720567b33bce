"""django-redis-rs: a Redis/Valkey cache backend for Django with a Rust engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django_redis_rs._native import __version__

if TYPE_CHECKING:
    from django_redis_rs.raw import RawClient


def get_redis_connection(alias: str = "default", write: bool = True) -> RawClient:
    """A redis-py-style raw client on the pools of the cache ``alias``."""
    from django.core.cache import caches

    cache = caches[alias]
    client = getattr(cache, "client", None)
    if client is None or not hasattr(client, "get_client"):
        raise NotImplementedError("This backend does not support this feature")
    raw: RawClient = client.get_client(write)
    return raw


__all__ = ["__version__", "get_redis_connection"]
