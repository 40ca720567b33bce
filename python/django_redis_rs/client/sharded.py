"""ShardClient: keys spread over several servers by django-redis's consistent hash ring."""

from __future__ import annotations

from typing import Any

from django_redis_rs.client.default import DefaultClient
from django_redis_rs.options import locations


class ShardClient(DefaultClient):
    """Each key lives on one of the ``LOCATION`` servers, chosen exactly as django-redis's
    ShardClient chooses (so existing data stays where it is); ``{tag}`` in a key pins it by the
    tag. Every method works: multi-key operations go to each shard in one request, all shards at
    once; ``keys``, ``iter_keys``, ``delete_pattern`` and ``clear`` span the shards; commands on
    several keys (``sdiff``, ``smove``, ...) need the keys on one shard (use a hash tag)."""

    def _layout(self, server: Any) -> tuple[list[str], dict[str, Any]]:
        # django-redis names ring nodes by the LOCATION entries exactly as written.
        names = list(server) if isinstance(server, (list, tuple)) else server.split(",")
        return locations(server), {"shard_names": names}
