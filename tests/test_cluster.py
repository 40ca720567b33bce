"""ClusterClient against a real 3-primary Redis Cluster, including a slot migrated while its
keys are read and written."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from django_redis_rs.cache import RedisCache
from django_redis_rs.exceptions import ResponseError
from tests.helpers import OUTAGE
from tests.servers import (
    CLUSTER_RANGES,
    Server,
    add_cluster_replica,
    node_id,
    wait_for,
)

CLUSTER_CLIENT = "django_redis_rs.client.ClusterClient"


def cluster_cache(nodes: list[Server], **params: Any) -> RedisCache:
    return RedisCache(nodes[0].url, {"OPTIONS": {"CLIENT_CLASS": CLUSTER_CLIENT}, **params})


def owner(nodes: list[Server], key: str) -> Server:
    slot = int(nodes[0].command("CLUSTER", "KEYSLOT", key)[1:-2])
    return next(n for n, (lo, hi) in zip(nodes, CLUSTER_RANGES, strict=True) if lo <= slot <= hi)


def test_keys_go_to_the_slot_owner(cluster: list[Server]) -> None:
    cache = cluster_cache(cluster)
    for i in range(60):
        cache.set(f"k{i}", i)
    for i in range(60):
        assert cache.get(f"k{i}") == i
        assert owner(cluster, f":1:k{i}").command("EXISTS", f":1:k{i}") == b":1\r\n"
    assert all(n.command("DBSIZE") != b":0\r\n" for n in cluster)


def test_multi_key_operations_split_by_slot(cluster: list[Server]) -> None:
    cache = cluster_cache(cluster)
    data = {f"m{i}": i for i in range(100)}
    assert cache.set_many(data) == []
    assert cache.get_many([*data, "missing"]) == data
    cache.set_many({"t1": 1, "t2": 2}, timeout=30)
    assert 20 < cache.ttl("t2") <= 30
    assert sorted(cache.keys("m*")) == sorted(data)
    assert sorted(cache.iter_keys("m*", itersize=9)) == sorted(data)
    assert cache.delete_many([f"m{i}" for i in range(40)]) == 40
    assert cache.delete_pattern("m*") == 60
    assert cache.incr_version("t1") == 2 and cache.get("t1", version=2) == 1
    cache.sadd("{s}a", 1, 2)
    cache.sadd("{s}b", 2)
    assert cache.sinter("{s}a", "{s}b") == {2}
    with pytest.raises(ResponseError, match="CROSSSLOT"):
        cache.sunion(*[f"x{i}" for i in range(10)])
    cache.clear()
    assert cache.keys("*") == []


def test_a_migrating_slot_keeps_serving(cluster: list[Server]) -> None:
    cache = cluster_cache(cluster)
    key = ":1:{moving}a"
    slot = cluster[0].command("CLUSTER", "KEYSLOT", key)[1:-2].decode()
    source = owner(cluster, key)
    target = next(n for n in cluster if n is not source)
    cache.set("{moving}a", "before")
    cache.set("{moving}b", "stays")
    # Meanwhile another thread reads and writes keys of the moving slot, and must see no error
    # and no wrong value.
    stop, problems = threading.Event(), []

    def traffic() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                cache.set(f"{{moving}}bg{n % 50}", n)
                got = cache.get(f"{{moving}}bg{n % 50}")
                if got != n:
                    problems.append(f"read {got!r} after writing {n}")
            except Exception as e:  # noqa: BLE001 - any failure is a finding
                problems.append(repr(e))

    background = threading.Thread(target=traffic)
    background.start()
    # Start moving the slot, and move one of its two keys.
    assert target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(source)) == b"+OK\r\n"
    assert source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(target)) == b"+OK\r\n"
    assert source.command("MIGRATE", "127.0.0.1", str(target.port), key, "0", "5000") == b"+OK\r\n"
    assert cache.get("{moving}a") == "before"  # ASK -> the importing node
    assert cache.get("{moving}b") == "stays"  # still on the source
    assert cache.set("{moving}c", "new") is True  # absent on the source: ASK -> written on target
    assert source.command("EXISTS", ":1:{moving}c").startswith(b"-ASK")  # not on the source
    # Finish the move, as redis-cli's resharding does: migrate whatever the slot still holds on
    # the source, then hand the slot over; the source now answers MOVED and the client fetches
    # the map again.
    time.sleep(0.2)
    while True:
        reply = source.command("CLUSTER", "GETKEYSINSLOT", slot, "100")
        keys = [line.decode() for line in reply.split(b"\r\n")[2::2] if line]
        if not keys:
            break
        for k in keys:
            source.command("MIGRATE", "127.0.0.1", str(target.port), k, "0", "5000")
    for node in cluster:
        node.command("CLUSTER", "SETSLOT", slot, "NODE", node_id(target))
    for i in range(20):
        assert cache.get("{moving}a") == "before"
        assert cache.set(f"{{moving}}n{i}", i) is True
    assert cache.get_many(["{moving}a", "{moving}b", "{moving}c"]) == {
        "{moving}a": "before",
        "{moving}b": "stays",
        "{moving}c": "new",
    }
    stop.set()
    background.join()
    assert problems == []
    assert target.command("EXISTS", ":1:{moving}c") == b":1\r\n"
    assert target.command("EXISTS", ":1:{moving}n19") == b":1\r\n"


def test_cluster_rejects_a_database(cluster: list[Server]) -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="database 0"):
        RedisCache(f"{cluster[0].url}/3", {"OPTIONS": {"CLIENT_CLASS": CLUSTER_CLIENT}}).get("k")


def test_writes_resume_when_a_primary_dies_and_its_replica_takes_over(
    cluster: list[Server],
) -> None:
    """The seed node (the only one LOCATION names) is SIGKILLed; the cluster promotes its
    replica; the client finds the new owner of those slots through the nodes it knew."""
    replica = add_cluster_replica(cluster, cluster[0])
    try:
        cache = cluster_cache(cluster, TIMEOUT=None)
        keys = [k for k in (f"k{i}" for i in range(200)) if owner(cluster, k) is cluster[0]][:5]
        cache.set_many({k: 1 for k in keys})
        wait_for(lambda: replica.command("DBSIZE") == b":5\r\n", "the replica to copy the keys")
        cluster[0].kill()
        killed_at = time.monotonic()
        failures = 0
        while True:
            try:
                cache.set(keys[0], 2)
                break
            except OUTAGE:  # until the replica is promoted
                failures += 1
                assert time.monotonic() - killed_at < 30, "no failover"
                time.sleep(0.1)
        print(f"writes resumed {time.monotonic() - killed_at:.1f} s after the kill")
        assert b"role:master" in replica.command("INFO", "replication")
        assert failures > 0
        assert cache.get(keys[0]) == 2
        assert cache.get_many(keys[1:]) == {k: 1 for k in keys[1:]}
        assert cache.incr(keys[1]) == 2
    finally:
        replica.cleanup()


def keys_in_slot(node: Server, slot: str) -> list[str]:
    reply = node.command("CLUSTER", "GETKEYSINSLOT", slot, "1000")
    return [line.decode() for line in reply.split(b"\r\n")[2::2] if line]


def test_resharding_and_failover_under_load_surface_no_error(cluster: list[Server]) -> None:
    """8 threads (7 sync, one asyncio loop) run single- and multi-key calls while a slot their
    keys share migrates key by key (multi-key calls meet TRYAGAIN and ASK) and then the node
    that received it fails over to its replica (MOVED, a paused primary). Nothing reaches the
    callers, and every value read is the one written."""
    import asyncio

    key = ":1:{mv}"
    slot = cluster[0].command("CLUSTER", "KEYSLOT", key)[1:-2].decode()
    source = owner(cluster, key)
    target = next(n for n in cluster if n is not source)
    replica = add_cluster_replica(cluster, target)
    cache = cluster_cache(
        cluster,
        TIMEOUT=None,
        OPTIONS={
            "CLIENT_CLASS": CLUSTER_CLIENT,
            "SOCKET_TIMEOUT": 5,
        },
    )
    stop, problems, rounds = threading.Event(), [], [0] * 8
    slowest = [0.0]  # the longest call, in seconds

    def check(what: str, got: object, expected: object) -> None:
        if got != expected:
            problems.append(f"{what}: read {got!r}, expected {expected!r}")

    def timed(started: float) -> None:
        slowest[0] = max(slowest[0], time.monotonic() - started)

    def traffic(t: int) -> None:
        moving = [f"{{mv}}t{t}k{j}" for j in range(4)]
        both = moving + [f"t{t}s{j}" for j in range(6)]
        doomed = [f"{{mv}}t{t}d{j}" for j in range(3)]
        counter = f"{{mv}}t{t}count"
        cache.set(counter, 0)
        calls: list[tuple[str, Any, tuple[Any, ...], Any]] = []
        n = 0
        while not stop.is_set():
            n += 1
            calls = [
                ("set", cache.set, (moving[0], n), True),
                ("get", cache.get, (moving[0],), n),
                ("set_many", cache.set_many, (dict.fromkeys(both, n),), []),
                ("get_many", cache.get_many, (both,), dict.fromkeys(both, n)),
                ("incr", cache.incr, (counter,), n),
                ("set_many", cache.set_many, (dict.fromkeys(doomed, n),), []),
                ("delete_many", cache.delete_many, (doomed,), 3),
            ]
            for what, call, args, expected in calls:
                started = time.monotonic()
                try:
                    check(what, call(*args), expected)
                except Exception as e:  # noqa: BLE001 - any failure is a finding
                    problems.append(f"thread {t} {what}: {type(e).__name__}: {e}")
                timed(started)
            rounds[t] = n

    async def async_traffic(t: int) -> None:
        keys = [f"{{mv}}a{j}" for j in range(4)] + [f"a{j}" for j in range(4)]
        doomed = [f"{{mv}}ad{j}" for j in range(3)]
        n = 0
        while not stop.is_set():
            n += 1
            calls = [
                ("aset", cache.aset, (keys[0], n), True),
                ("aget", cache.aget, (keys[0],), n),
                ("aset_many", cache.aset_many, (dict.fromkeys(keys, n),), []),
                ("aget_many", cache.aget_many, (keys,), dict.fromkeys(keys, n)),
                ("aset_many", cache.aset_many, (dict.fromkeys(doomed, n),), []),
                ("adelete_many", cache.adelete_many, (doomed,), 3),
            ]
            for what, call, args, expected in calls:
                started = time.monotonic()
                try:
                    check(what, await call(*args), expected)
                except Exception as e:  # noqa: BLE001
                    problems.append(f"async {what}: {type(e).__name__}: {e}")
                timed(started)
            rounds[t] = n

    threads = [threading.Thread(target=traffic, args=(t,)) for t in range(7)]
    threads.append(threading.Thread(target=lambda: asyncio.run(async_traffic(7))))
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        # Migrate the slot key by key, as redis-cli's resharding does, slowly enough that the
        # keys of one multi-key call are split between the two nodes.
        assert (
            target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(source)) == b"+OK\r\n"
        )
        assert (
            source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(target)) == b"+OK\r\n"
        )
        deadline = time.monotonic() + 30
        while keys := keys_in_slot(source, slot):
            assert time.monotonic() < deadline, "the slot never emptied"
            for k in keys:
                source.command("MIGRATE", "127.0.0.1", str(target.port), k, "0", "5000")
                time.sleep(0.01)
        for node in [target, source, *(n for n in cluster if n not in (source, target))]:
            node.command("CLUSTER", "SETSLOT", slot, "NODE", node_id(target))
        time.sleep(0.3)
        # Fail the slot's new owner over to its replica (a manual failover: the primary pauses
        # its clients, the replica catches up and takes over, the old primary answers MOVED).
        assert replica.command("CLUSTER", "FAILOVER") == b"+OK\r\n"
        wait_for(lambda: b"role:master" in replica.command("INFO", "replication"), "the failover")
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        replica.cleanup()
    print(f"{sum(rounds) * 7} calls, {len(problems)} problems, slowest {slowest[0] * 1000:.0f} ms")
    assert problems == [], problems[:10]
    assert slowest[0] < 5, "a call outlived SOCKET_TIMEOUT"
    assert min(rounds) >= 5, rounds
    assert keys_in_slot(target, slot)  # the slot's keys now live on the target
