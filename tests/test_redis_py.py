"""Code that reaches past the cache: get_redis_connection() and cache.client.get_client() give
redis-py's clients, built from the cache's settings, on the single-server, replica, Sentinel and
Cluster set-ups; libraries handed them (rq, python-redis-lock) work; failures are redis-py's
exception classes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
import redis.cluster
import redis.exceptions
import redis.sentinel
from django.core.cache import caches
from django.test import override_settings

from django_redis_rs import get_redis_connection
from django_redis_rs.cache import RedisCache
from tests.servers import (
    SERVICE,
    SentinelDeployment,
    Server,
    server_binary,
    start_cluster,
    wait_for,
)


@dataclass
class Deployment:
    """Servers and the CACHES entry that uses them."""

    kind: str
    location: Any
    options: dict[str, Any]
    primaries: list[Server]
    replica: Server | None = None
    stop: list[Callable[[], None]] = field(default_factory=list)

    def flush(self) -> None:
        for srv in self.primaries:
            srv.command("FLUSHALL")
        if self.replica is not None:
            primary = self.primaries[0]
            wait_for(lambda: self.replica_caught_up(primary), "the replica to catch up")

    def replica_caught_up(self, primary: Server) -> bool:
        assert self.replica is not None
        offset = b"master_repl_offset:"
        mine = primary.command("INFO", "replication").split(offset)[1].split(b"\r\n")[0]
        theirs = self.replica.command("INFO", "replication").split(offset)[1].split(b"\r\n")[0]
        return mine == theirs


def _start(kind: str, server: Server) -> Deployment:
    binary = server_binary(server.kind)
    assert binary is not None
    if kind == "single":
        return Deployment(kind, f"{server.url}/3", {}, [server])
    if kind == "replicas":
        primary = Server(server.kind, binary, extra=["--repl-diskless-sync-delay", "0"]).start()
        replica = Server(server.kind, binary, extra=["--replicaof", "127.0.0.1", str(primary.port)])
        replica.start()
        wait_for(
            lambda: b"master_link_status:up" in replica.command("INFO", "replication"),
            "the replica to sync",
        )
        location = [f"{primary.url}/0", f"{replica.url}/0"]
        return Deployment(
            kind, location, {}, [primary], replica, [replica.cleanup, primary.cleanup]
        )
    if kind == "sentinel":
        sentinel = SentinelDeployment(server.kind, binary)
        return Deployment(
            kind,
            f"redis://{SERVICE}/0",
            sentinel.options(),
            [sentinel.primary],
            sentinel.replica,
            [sentinel.cleanup],
        )
    nodes = start_cluster(server.kind, binary)
    options = {"CLIENT_CLASS": "django_redis_rs.client.ClusterClient"}
    return Deployment(
        kind, [n.url for n in nodes[:2]], options, nodes, None, [n.cleanup for n in nodes]
    )


@pytest.fixture(scope="module", params=["single", "replicas", "sentinel", "cluster"])
def deployment(request: pytest.FixtureRequest, server: Server) -> Iterator[Deployment]:
    made = _start(request.param, server)
    yield made
    for stop in made.stop:
        stop()


@pytest.fixture
def cache(deployment: Deployment) -> Iterator[RedisCache]:
    deployment.flush()
    entry = {
        "BACKEND": "django_redis_rs.cache.RedisCache",
        "LOCATION": deployment.location,
        "OPTIONS": deployment.options,
    }
    with override_settings(CACHES={"default": entry}):
        cache = caches["default"]
        assert isinstance(cache, RedisCache)
        yield cache
        cache.client.do_close_clients()


@pytest.fixture
def r(cache: RedisCache) -> Any:
    return get_redis_connection("default")


@pytest.fixture
def single(server: Server) -> Iterator[RedisCache]:
    """The cache on one server, for patterns that need no other set-up."""
    server.command("FLUSHALL")
    entry = {"BACKEND": "django_redis_rs.cache.RedisCache", "LOCATION": f"{server.url}/3"}
    with override_settings(CACHES={"default": entry}):
        cache = caches["default"]
        assert isinstance(cache, RedisCache)
        yield cache


# ---- what the raw client is -----------------------------------------------------------------


def test_the_raw_client_is_redis_pys(deployment: Deployment, cache: RedisCache, r: Any) -> None:
    if deployment.kind == "cluster":
        assert type(r) is redis.cluster.RedisCluster
        assert cache.client.get_client(write=False) is r
        return
    assert type(r) is redis.Redis
    assert cache.client.get_client() is r  # made once, then reused
    assert r.ping() is True
    reader, index = cache.client.get_client(write=False, show_index=True)
    assert type(reader) is redis.Redis
    if deployment.kind == "sentinel":
        assert isinstance(r.connection_pool, redis.sentinel.SentinelConnectionPool)
        assert r.connection_pool.is_master and not reader.connection_pool.is_master
        assert (index, reader.info("replication")["role"]) == (1, "slave")
    elif deployment.kind == "replicas":
        assert index == 1
        assert reader.connection_pool.connection_kwargs["port"] == deployment.replica.port
        assert reader.info("replication")["role"] == "slave"
    else:
        assert index == 0 and reader is r


def test_values_are_shared_with_the_cache(cache: RedisCache, r: Any) -> None:
    cache.set("n", 5)
    cache.set("d", {"a": [1, 2]})
    assert r.get(cache.make_key("n")) == b"5"  # integers stored as integers
    assert cache.client.decode(r.get(cache.make_key("d"))) == {"a": [1, 2]}
    assert cache.client.encode(5) == 5  # django-redis 7's signature: redis-py sends ints as is
    assert cache.client.decode(cache.client.encode(5, allow_int=False)) == 5  # pickled
    r.set(cache.make_key("raw"), cache.client.encode(["x"]))
    assert cache.get("raw") == ["x"]
    assert r.incrby(cache.make_key("n"), 10) == 15
    assert cache.get("n") == 15


# ---- usage patterns ---------------------------------------------------------------------------


def test_pipelines(deployment: Deployment, r: Any) -> None:
    transactions = [False] if deployment.kind == "cluster" else [True, False]
    for transaction in transactions:
        pipe = r.pipeline(transaction=transaction)
        pipe.incr("{p}hits").expire("{p}hits", 60).hset("{p}h", "f", "v").hgetall("{p}h")
        assert pipe.execute() == [1, True, 1, {b"f": b"v"}]
        r.delete("{p}hits", "{p}h")


def test_watch_multi_retry_loop(deployment: Deployment, r: Any) -> None:
    if deployment.kind == "cluster":
        pytest.skip("WATCH needs one connection to one node")
    r.set("balance", 100)
    attempts = []

    def withdraw(pipe: Any) -> None:
        attempts.append(1)
        balance = int(pipe.get("balance"))
        if len(attempts) == 1:  # another client changes the key between WATCH and EXEC
            get_redis_connection().incrby("balance", 5)
        pipe.multi()
        pipe.set("balance", balance - 30)

    r.transaction(withdraw, "balance")
    assert len(attempts) == 2  # the first EXEC was refused and the loop ran again
    assert r.get("balance") == b"75"
    with r.pipeline() as pipe:
        pipe.watch("balance")
        pipe.multi()
        pipe.incr("balance")
        assert pipe.execute() == [76]


def test_publish_and_subscribe(r: Any) -> None:
    pubsub = r.pubsub()
    pubsub.subscribe("news")
    received: list[Any] = []

    def listen() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not received:
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                received.append(message["data"])

    subscriber = threading.Thread(target=listen)
    subscriber.start()
    wait_for(lambda: r.publish("news", "hello") == 1, "the subscriber to listen", 10)
    subscriber.join()
    pubsub.close()
    assert received == [b"hello"]


def test_scripts(r: Any) -> None:
    assert r.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, "s", 7) == 7
    double = r.register_script("return redis.call('SET', KEYS[1], ARGV[1] * 2) and 1")
    r.script_flush()  # the first call meets NOSCRIPT and loads it
    assert double(keys=["t"], args=[21]) == 1
    assert r.get("t") == b"42"


def test_streams(r: Any) -> None:
    first = r.xadd("events", {"type": "signup", "user": "1"})
    r.xadd("events", {"type": "login", "user": "1"}, maxlen=100)
    assert r.xlen("events") == 2
    [(stream, entries)] = r.xread({"events": "0"}, count=10)
    assert stream == b"events" and entries[0] == (first, {b"type": b"signup", b"user": b"1"})
    assert r.xread({"events": "$"}, block=50) == []


@pytest.mark.filterwarnings("ignore:Call to deprecated setex")
def test_strings_hashes_and_lists(r: Any) -> None:
    assert r.setex("session", 30, "x") is True and 0 < r.ttl("session") <= 30
    assert r.setnx("session", "y") is False
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.getset("session", "z") == b"x"
    assert r.hincrby("counts", "views", 3) == 3 and r.hincrbyfloat("counts", "f", 0.5) == 0.5
    assert r.hmget("counts", "views", "missing") == [b"3", None]
    assert dict(r.hscan_iter("counts")) == {b"views": b"3", b"f": b"0.5"}
    assert r.hdel("counts", "f") == 1
    assert r.rpush("q", "a", "b", "a", "c") == 4
    assert r.lrem("q", 0, "a") == 2 and r.lrange("q", 0, -1) == [b"b", b"c"]
    assert r.ltrim("q", 0, 0) is True and r.llen("q") == 1
    assert r.blpop(["q"], timeout=1) == (b"q", b"b")
    started = time.monotonic()
    assert r.blpop(["q"], timeout=0.2) is None
    assert 0.15 < time.monotonic() - started < 2
    assert r.sadd("s", "m") == 1 and r.sismember("s", "m") and r.spop("s") == b"m"
    assert r.zincrby("board", 5, "alice") == 5.0 and r.zscore("board", "alice") == 5.0


def test_context_manager_keeps_the_pool(single: RedisCache) -> None:
    with get_redis_connection() as conn:
        conn.set("k", "v")
    # `with` closes the client, not the pool the cache's other raw clients share
    assert get_redis_connection().get("k") == b"v"
    assert single.client.get_client().connection_pool is conn.connection_pool


def add(a: int, b: int) -> int:
    """An rq job (found by its dotted path in the worker)."""
    return a + b


def test_rq_job_runs_on_the_raw_connection(single: RedisCache) -> None:
    import rq

    r = get_redis_connection()
    queue = rq.Queue("default", connection=r)
    job = queue.enqueue(add, 2, 3)
    rq.SimpleWorker([queue], connection=r).work(burst=True)
    job.refresh()
    assert job.get_status() == "finished" and job.return_value() == 5


def test_python_redis_lock_on_get_client(single: RedisCache) -> None:
    import redis_lock

    conn = single.client.get_client()
    lock = redis_lock.Lock(conn, "report", expire=10)
    assert lock.acquire(blocking=False)
    assert not redis_lock.Lock(conn, "report").acquire(blocking=False)
    lock.release()
    assert redis_lock.Lock(conn, "report").acquire(blocking=False)


def test_cache_lock_raises_redis_pys_lock_error(cache: RedisCache) -> None:
    with cache.lock("job", timeout=5):
        try:
            with cache.lock("job", timeout=5, blocking_timeout=0.05):
                pytest.fail("a held lock was taken")
        except redis.exceptions.LockError as e:
            assert "Unable to acquire" in str(e)
    held = cache.lock("job", timeout=5)
    assert held.acquire()
    cache.delete("job")  # it expired, say
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        held.release()


def test_cache_lock_takes_redis_pys_arguments(cache: RedisCache) -> None:
    from redis.lock import Lock as RedisLock

    class Audited(RedisLock):
        acquired = 0

        def do_acquire(self, token: Any) -> bool:
            Audited.acquired += 1
            return bool(super().do_acquire(token))

    lock = cache.lock("job", timeout=5, sleep=0.01, blocking_timeout=1, lock_class=Audited)
    assert isinstance(lock, Audited) and lock.name == cache.make_key("job")
    with lock:
        assert not cache.lock("job", blocking=False).acquire()
    assert Audited.acquired == 1
    shared = cache.lock("job", timeout=5, thread_local=False, version=2)
    assert shared.acquire() and cache.has_key("job", version=2)
    threading.Thread(target=shared.release).start()  # another thread may release it
    wait_for(lambda: not cache.has_key("job", version=2), "the release", 5)


# ---- failures -------------------------------------------------------------------------------


def test_a_stopped_server_raises_redis_pys_connection_error(own_server: Server) -> None:
    entry = {
        "BACKEND": "django_redis_rs.cache.RedisCache",
        "LOCATION": own_server.url,
        "OPTIONS": {"SOCKET_TIMEOUT": 1},
    }
    with override_settings(CACHES={"default": entry}):
        conn = get_redis_connection()
        conn.set("k", 1)
        own_server.stop()
        with pytest.raises(redis.exceptions.ConnectionError):
            conn.get("k")
        with pytest.raises(redis.exceptions.ConnectionError):
            caches["default"].get("k")
        with pytest.raises(redis.exceptions.ConnectionError):
            caches["default"].set("k", 1)


def test_the_cache_path_never_imports_redis_py(server: Server) -> None:
    script = f"""
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
django.setup()
from django_redis_rs.cache import RedisCache
json = "django_redis.serializers.json.JSONSerializer"
cache = RedisCache("{server.url}/4", {{"OPTIONS": {{"SERIALIZER": json}}}})
cache.set("k", {{"v": 1}})
assert cache.get_many(["k"]) == {{"k": {{"v": 1}}}}
with cache.lock("l", timeout=5):
    pass
assert "redis" not in sys.modules, "the cache imported redis-py"
cache.client.get_client().ping()
assert "redis" in sys.modules
"""
    root = os.path.dirname(os.path.dirname(__file__))
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
