"""ClusterClient: Redis Cluster, which django-redis does not support."""

from __future__ import annotations

from typing import Any

from django_redis_rs.client.default import DefaultClient


class ClusterClient(DefaultClient):
    """``LOCATION`` names one or more nodes of the cluster (seeds); the client fetches the slot
    map from the first that answers and sends each command to the primary serving its key's
    slot, following ``MOVED`` (fetching the map again) and ``ASK`` (slot being migrated)
    redirects. Keys with the same ``{hash tag}`` share a slot. ``get_many``, ``set_many`` and
    ``delete_many`` split keys by slot and send one pipelined request per node, all nodes at
    once; ``keys``, ``iter_keys``, ``delete_pattern`` and ``clear`` cover every primary. Commands
    on several keys (``sdiff``, ``smove``, ...) need the keys in one slot. Reads go to primaries.

    The raw client is one ``redis.cluster.RedisCluster`` seeded with every LOCATION node."""

    def _layout(self) -> dict[str, Any]:
        return {"layout": "cluster"}

    def get_next_client_index(self, write: bool = True, tried: list[int] | None = None) -> int:
        return 0  # one cluster client for every node

    def _new_raw_client(self, index: int) -> Any:
        return self.connection_factory.connect_cluster(self._raw_urls)
