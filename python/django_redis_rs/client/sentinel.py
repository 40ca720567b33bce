"""SentinelClient: the primary and replicas of a Redis Sentinel service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import ParseResult, urlencode, urlunparse

from django_redis_rs.client.default import DefaultClient
from django_redis_rs.options import pop_flag


def replace_query(url: ParseResult, query: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> str:
    """django-redis's: the parsed `url` again, with `query` as its query string."""
    return urlunparse((*url[:4], urlencode(query, doseq=True), url[5]))


class SentinelClient(DefaultClient):
    """``LOCATION = "redis://SERVICE_NAME/db"`` and ``OPTIONS["SENTINELS"] = [(host, port), ...]``.
    Writes go to the primary Sentinel names, reads to its replicas (to the primary when there are
    none, or with ``?is_master=1`` alone). After a failover the client asks Sentinel again: a
    write refused by the demoted primary (``READONLY``) is retried on the new one.

    Raw clients, as django-redis's SentinelClient gives them: ``get_client()`` a ``redis.Redis``
    on a ``SentinelConnectionPool`` of the primary, ``get_client(write=False)`` of the
    replicas."""

    def _layout(self) -> dict[str, Any]:
        return {"layout": "sentinel", "read_from_replicas": True}

    def _redis_py_urls(self) -> list[str]:
        url, _ = pop_flag(self._native.locations[0], "is_master")
        joiner = "&" if "?" in url else "?"
        return [f"{url}{joiner}is_master={flag}" for flag in ("1", "0")]

    @property
    def _uses_sentinel(self) -> bool:
        return True
