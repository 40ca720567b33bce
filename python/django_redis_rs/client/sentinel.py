"""SentinelClient: the primary and replicas of a Redis Sentinel service."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from django_redis_rs.client.default import DefaultClient
from django_redis_rs.options import locations, sentinel_layout


class SentinelClient(DefaultClient):
    """``LOCATION = "redis://SERVICE_NAME/db"`` and ``OPTIONS["SENTINELS"] = [(host, port), ...]``.
    Writes go to the primary Sentinel names, reads to its replicas (to the primary when there are
    none, or with ``?is_master=1`` alone). After a failover the client asks Sentinel again: a
    write refused by the demoted primary (``READONLY``) is retried on the new one.

    Raw clients, as django-redis's SentinelClient gives them: ``get_client()`` a ``redis.Redis``
    on a ``SentinelConnectionPool`` of the primary, ``get_client(write=False)`` of the
    replicas."""

    def _layout(self, server: Any) -> tuple[list[str], dict[str, Any]]:
        return sentinel_layout(server, self._options, read_from_replicas=True)

    def _redis_py_urls(self, server: Any) -> list[str]:
        url = urlsplit(locations(server)[0])
        query = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True)]
        query = [(k, v) for k, v in query if k != "is_master"]
        return [
            url._replace(query=urlencode([*query, ("is_master", flag)])).geturl()
            for flag in ("1", "0")
        ]

    @property
    def _uses_sentinel(self) -> bool:
        return True
