from django_redis_rs.client.cluster import ClusterClient
from django_redis_rs.client.default import DefaultClient
from django_redis_rs.client.herd import HerdClient
from django_redis_rs.client.sentinel import SentinelClient
from django_redis_rs.client.sharded import ShardClient
from django_redis_rs.client.valkey import DefaultValkeyClient

__all__ = [
    "ClusterClient",
    "DefaultClient",
    "DefaultValkeyClient",
    "HerdClient",
    "SentinelClient",
    "ShardClient",
]
