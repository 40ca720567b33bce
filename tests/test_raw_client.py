"""The native raw client (cache.client.get_native_client()): redis-py's names and return
types over the native pools, pipelines and locks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from django.core.cache import caches
from django.test import override_settings

from django_redis_rs.exceptions import LockError, LockNotOwnedError, ResponseError
from django_redis_rs.raw import RawClient
from tests.servers import Server


@pytest.fixture
def raw(server: Server) -> Iterator[RawClient]:
    server.command("FLUSHALL")
    backend = {"BACKEND": "django_redis_rs.cache.RedisCache", "LOCATION": server.url}
    with override_settings(CACHES={"default": backend}):  # Django resets `caches` on change
        yield caches["default"].client.get_native_client()


def test_strings_and_keys(raw: RawClient) -> None:
    assert raw.ping() is True
    assert raw.set("a", "1") is True
    assert raw.get("a") == b"1"
    assert raw.get("missing") is None
    assert raw.set("a", "2", nx=True) is None
    assert raw.set("a", 3, xx=True, ex=100) is True
    assert 90 < raw.ttl("a") <= 100
    assert raw.set("p", b"x", px=5000) is True
    assert raw.incr("n") == 1
    assert raw.incr("n", 5) == 6
    assert raw.exists("a", "n", "missing") == 2
    assert raw.mget(["a", "missing", "n"]) == [b"3", None, b"6"]
    assert sorted(raw.keys("*")) == [b"a", b"n", b"p"]
    assert sorted(raw.scan_iter(match="*", count=1)) == [b"a", b"n", b"p"]
    assert raw.expire("a", 10) is True
    assert raw.delete("a", "n") == 2
    assert raw.execute_command("SET", "raw", "v") is True
    assert raw.execute_command("GET", "raw") == b"v"
    assert raw.publish("chan", "msg") == 0
    info = raw.info()
    assert info["tcp_port"] > 0
    assert raw.flushdb() is True
    assert raw.keys() == []


def test_collections(raw: RawClient) -> None:
    assert raw.hset("h", "f", "v") == 1
    assert raw.hset("h", mapping={"g": 1, "k": 2.5}) == 2
    assert raw.hget("h", "f") == b"v"
    assert raw.hgetall("h") == {b"f": b"v", b"g": b"1", b"k": b"2.5"}
    assert raw.lpush("l", "a", "b") == 2
    assert raw.lrange("l", 0, -1) == [b"b", b"a"]
    assert raw.sadd("s", "x", "y") == 2
    assert raw.smembers("s") == {b"x", b"y"}
    assert raw.zadd("z", {"m": 1, "n": 2}) == 2
    assert raw.zrange("z", 0, -1) == [b"m", b"n"]
    assert raw.zrange("z", 0, -1, withscores=True) == [(b"m", 1.0), (b"n", 2.0)]


def test_errors_and_bad_arguments(raw: RawClient) -> None:
    raw.set("s", "x")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        raw.lpush("s", "a")
    with pytest.raises(TypeError, match="bool"):
        raw.set("b", True)
    with pytest.raises(TypeError, match="dict"):
        raw.set("b", {"a": 1})


def test_pipeline(raw: RawClient) -> None:
    pipe = raw.pipeline()
    pipe.set("a", 1).incr("a").get("a").exists("a", "b").hgetall("nothing")
    assert len(pipe) == 5
    assert pipe.execute() == [True, 2, b"2", 1, {}]
    assert pipe.execute() == []
    with raw.pipeline(transaction=False) as plain:
        plain.set("x", "1")
        plain.get("x")
        assert plain.execute() == [True, b"1"]


def test_lock_context_and_ownership(raw: RawClient) -> None:
    lock = raw.lock("L", timeout=5)
    with lock:
        assert lock.locked() and lock.owned()
        other = raw.lock("L", timeout=5, blocking=False)
        assert other.acquire() is False
        assert lock.extend(5) is True
        assert 8000 < int(raw.execute_command("PTTL", "L")) <= 10000
        assert lock.extend(3, replace_ttl=True) is True
        assert int(raw.execute_command("PTTL", "L")) <= 3000
        assert lock.reacquire() is True
    assert lock.locked() is False
    with pytest.raises(LockError):
        lock.release()


def test_lock_blocking_timeout_and_expiry(raw: RawClient) -> None:
    holder = raw.lock("L", timeout=0.3)
    assert holder.acquire()
    waiter = raw.lock("L", timeout=5, sleep=0.02)
    started = time.monotonic()
    assert waiter.acquire(blocking_timeout=0.1) is False
    assert time.monotonic() - started < 0.3
    assert waiter.acquire(blocking_timeout=2) is True  # the holder's lock expired
    with pytest.raises(LockNotOwnedError):
        holder.release()
    waiter.release()


def test_lock_is_thread_local(raw: RawClient) -> None:
    lock = raw.lock("L", timeout=5)
    assert lock.acquire()
    seen = []
    thread = threading.Thread(target=lambda: seen.append(lock.owned()))
    thread.start()
    thread.join()
    assert seen == [False]
    lock.release()


def test_lock_contention_is_exclusive(raw: RawClient) -> None:
    counter = {"inside": 0, "max": 0}

    def work() -> None:
        for _ in range(10):
            with raw.lock("L", timeout=5, sleep=0.001):
                counter["inside"] += 1
                counter["max"] = max(counter["max"], counter["inside"])
                time.sleep(0.001)
                counter["inside"] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter["max"] == 1


def test_cache_lock_uses_made_keys(server: Server, make_cache) -> None:
    cache = make_cache(KEY_PREFIX="app")
    with cache.lock("job", timeout=5):
        assert server.command("EXISTS", "app:1:job") == b":1\r\n"
    assert server.command("EXISTS", "app:1:job") == b":0\r\n"
