"""A LOCATION list: the first server takes writes, reads go to the replicas."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from django_redis_rs.cache import RedisCache
from tests.servers import Server, server_binary


def get_calls(server: Server) -> int:
    info = server.command("INFO", "commandstats").decode()
    for line in info.splitlines():
        if line.startswith("cmdstat_get:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


@pytest.fixture
def primary_and_replica(server: Server) -> Iterator[tuple[Server, Server]]:
    binary = server_binary(server.kind)
    assert binary is not None
    primary = Server(server.kind, binary, extra=["--repl-diskless-sync-delay", "0"]).start()
    replica = Server(server.kind, binary, extra=["--replicaof", "127.0.0.1", str(primary.port)])
    replica.start()
    deadline = time.monotonic() + 10
    while b"master_link_status:up" not in replica.command("INFO", "replication"):
        assert time.monotonic() < deadline, "replica did not sync"
        time.sleep(0.05)
    yield primary, replica
    replica.cleanup()
    primary.cleanup()


def test_writes_go_to_the_primary_and_reads_to_the_replica(primary_and_replica) -> None:
    primary, replica = primary_and_replica
    cache = RedisCache([primary.url, replica.url], {})
    assert cache.set("k", "v") is True  # a write to the read-only replica would fail
    assert cache.incr("n", ignore_key_check=True) == 1
    deadline = time.monotonic() + 5
    while replica.command("EXISTS", ":1:k") != b":1\r\n":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    before_primary, before_replica = get_calls(primary), get_calls(replica)
    for _ in range(10):
        assert cache.get("k") == "v"
    assert get_calls(replica) - before_replica == 10
    assert get_calls(primary) == before_primary
