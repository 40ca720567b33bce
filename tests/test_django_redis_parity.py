"""The same code through django-redis and through django-redis-rs, in one process, on one server:
snippets in the style of public Django projects that reach past the cache (raw connections,
pipelines, scripts, locks, the stored bytes) must give equal results, and failures must be
caught by the same redis-py exception classes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import django_redis
import pytest
import redis.exceptions
from django.core.cache import caches
from django.test import override_settings

import django_redis_rs
from tests.servers import Server

Connect = Callable[[], Any]
Snippet = Callable[[Any, Connect], Any]


@pytest.fixture
def backends(server: Server) -> Iterator[dict[str, tuple[Any, Connect]]]:
    """Each backend's cache and get_redis_connection, on databases of their own."""
    entries = {
        "ours": {"BACKEND": "django_redis_rs.cache.RedisCache", "LOCATION": f"{server.url}/5"},
        "theirs": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"{server.url}/6"},
    }
    with override_settings(CACHES=entries):
        made = {
            "ours": (caches["ours"], lambda: django_redis_rs.get_redis_connection("ours")),
            "theirs": (caches["theirs"], lambda: django_redis.get_redis_connection("theirs")),
        }
        for _, connect in made.values():
            connect().flushdb()
        yield made


def outcome(snippet: Snippet, cache: Any, connect: Connect) -> tuple[str, Any]:
    """What a snippet returned, or the redis-py class (else the class) of what it raised."""
    try:
        return ("returned", snippet(cache, connect))
    except Exception as e:
        theirs = next((c for c in type(e).__mro__ if c.__module__.startswith("redis.")), type(e))
        return ("raised", theirs)


def rate_limit(cache: Any, connect: Connect) -> Any:
    r = connect()
    counts = []
    for _ in range(3):
        pipe = r.pipeline()
        pipe.incr("ratelimit:user:1")
        pipe.expire("ratelimit:user:1", 60)
        count, _ = pipe.execute()
        counts.append(count)
    return counts, 0 < r.ttl("ratelimit:user:1") <= 60


def one_time_code(cache: Any, connect: Connect) -> Any:
    r = connect()
    r.setex("otp:42", 300, "123456")
    first = r.get("otp:42")
    r.delete("otp:42")
    return first, r.get("otp:42"), r.setnx("otp:42", "x"), r.setnx("otp:42", "y")


def leaderboard(cache: Any, connect: Connect) -> Any:
    r = connect()
    r.zincrby("board", 10, "ann")
    r.zincrby("board", 5, "bob")
    r.zincrby("board", 7, "bob")
    return r.zrevrange("board", 0, 9, withscores=True), r.zscore("board", "bob")


def job_queue(cache: Any, connect: Connect) -> Any:
    r = connect()
    r.rpush("jobs", "a", "b", "c", "b")
    r.lpush("jobs", "z")
    removed = r.lrem("jobs", 0, "b")
    r.ltrim("jobs", 0, 1)
    return removed, r.lrange("jobs", 0, -1), r.blpop(["jobs"], timeout=1), r.llen("jobs")


def hash_counters(cache: Any, connect: Connect) -> Any:
    r = connect()
    r.hincrby("stats", "views", 3)
    r.hincrby("stats", "views", 2)
    r.hincrbyfloat("stats", "score", 1.25)
    fields = r.hmget("stats", "views", "score", "missing")
    return fields, sorted(r.hscan_iter("stats")), r.hdel("stats", "score"), r.hgetall("stats")


def optimistic_transaction(cache: Any, connect: Connect) -> Any:
    r = connect()
    r.set("stock", 3)

    def buy(pipe: Any) -> None:
        left = int(pipe.get("stock"))
        pipe.multi()
        pipe.set("stock", left - 1)

    r.transaction(buy, "stock")
    return r.get("stock")


def scripts(cache: Any, connect: Connect) -> Any:
    r = connect()
    add = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    return r.eval("return ARGV[1]", 0, "hi"), add(keys=["n"], args=[5]), add(keys=["n"], args=[5])


def stored_bytes(cache: Any, connect: Connect) -> Any:
    cache.set("count", 7)
    cache.set("profile", {"name": "ann", "roles": ["a", "b"]})
    r = connect()
    return r.get(cache.make_key("count")), r.get(cache.make_key("profile"))


def raw_writes_read_by_the_cache(cache: Any, connect: Connect) -> Any:
    r = connect()
    r.set(cache.make_key("n"), 9)
    r.set(cache.make_key("s"), cache.client.encode("text"))
    return cache.get("n"), cache.get("s"), cache.incr("n")


def codec(cache: Any, connect: Connect) -> Any:
    client = cache.client
    return (
        client.encode(5),
        client.encode({"a": 1}),
        client.decode(b"5"),
        client.decode(client.encode([1, "x"])),
    )


def raw_client_shapes(cache: Any, connect: Connect) -> Any:
    client = cache.client
    reader, index = client.get_client_with_index(write=False)
    return (
        type(connect()).__name__,
        type(reader).__name__,
        index,
        client.get_next_client_index(write=True),
        client.get_client(write=True) is connect(),
    )


def contended_lock(cache: Any, connect: Connect) -> Any:
    with cache.lock("job", timeout=5):
        try:
            with cache.lock("job", timeout=5, blocking_timeout=0.05):
                return "taken twice"
        except redis.exceptions.LockError:
            return "busy"


def lock_lost(cache: Any, connect: Connect) -> Any:
    lock = cache.lock("job", timeout=5)
    lock.acquire()
    cache.delete("job")
    lock.release()


def lock_shape(cache: Any, connect: Connect) -> Any:
    lock = cache.lock("job", timeout=5, thread_local=False)
    got = lock.acquire(blocking=False)
    return got, lock.locked(), lock.owned(), lock.extend(5), lock.reacquire(), lock.release()


def wrong_type_through_the_cache(cache: Any, connect: Connect) -> Any:
    cache.set("text", "x")
    cache.sadd("text", 1)


def wrong_type_through_the_connection(cache: Any, connect: Connect) -> Any:
    connect().set("text", "x")
    connect().lpush("text", 1)


def incr_of_a_missing_key(cache: Any, connect: Connect) -> Any:
    cache.incr("missing")


SNIPPETS = [
    rate_limit,
    one_time_code,
    leaderboard,
    job_queue,
    hash_counters,
    optimistic_transaction,
    scripts,
    stored_bytes,
    raw_writes_read_by_the_cache,
    codec,
    raw_client_shapes,
    contended_lock,
    lock_lost,
    lock_shape,
    wrong_type_through_the_cache,
    wrong_type_through_the_connection,
    incr_of_a_missing_key,
]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.__name__ for s in SNIPPETS])
def test_same_results_and_exceptions(
    backends: dict[str, tuple[Any, Connect]], snippet: Snippet
) -> None:
    ours, theirs = (outcome(snippet, *backends[side]) for side in ("ours", "theirs"))
    assert ours == theirs


def test_same_exceptions_when_the_server_is_down(dead_url: str) -> None:
    entries = {
        "ours": {"BACKEND": "django_redis_rs.cache.RedisCache", "LOCATION": dead_url},
        "theirs": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": dead_url},
    }
    connects = {
        "ours": lambda: django_redis_rs.get_redis_connection("ours"),
        "theirs": lambda: django_redis.get_redis_connection("theirs"),
    }
    snippets: list[Snippet] = [
        lambda cache, connect: cache.get("k"),
        lambda cache, connect: cache.set("k", 1),
        lambda cache, connect: cache.get_many(["a", "b"]),
        lambda cache, connect: cache.ttl("k"),
        lambda cache, connect: connect().get("k"),
        lambda cache, connect: connect().pipeline().incr("k").execute(),
    ]
    with override_settings(CACHES=entries):
        for snippet in snippets:
            ours, theirs = (outcome(snippet, caches[side], connects[side]) for side in entries)
            assert ours == theirs == ("raised", redis.exceptions.ConnectionError)


# --- versions past 64 bits, and odd timeouts ---------------------------------------------------

BIG_VERSIONS = [2**63, 2**64 + 5, -(2**63) - 1, 10**30]


@pytest.mark.parametrize("version", BIG_VERSIONS)
def test_big_versions_make_django_redis_keys_on_every_method(
    backends: dict[str, tuple[Any, Connect]], version: int
) -> None:
    """Django's key function takes any integer version: the native key maker takes 64 bits,
    so bigger ones are made by Django's, with the same keys as django-redis on every method."""
    import asyncio

    def calls(cache: Any) -> list[Any]:
        async def async_calls() -> list[Any]:
            await cache.aset_many({"c": 3, "d": 4}, version=version)
            got = await cache.aget_many(["a", "c", "d", "x"], version=version)
            await cache.adelete_many(["d"], version=version)  # Django's returns None, ours a count
            return [got, await cache.aget_many(["c", "d"], version=version)]

        out = [
            cache.set("s", 0, version=version),
            cache.set_many({"a": 1, "b": 2}, version=version) or [],
            cache.get_many(["a", "b", "s", "x"], version=version),
            cache.delete_many(["b"], version=version),
            cache.get("a", version=version),
            cache.incr("s", version=version),
            *asyncio.run(async_calls()),
        ]
        return out

    results = {name: calls(cache) for name, (cache, _) in backends.items()}
    assert results["ours"] == results["theirs"]
    stored = {
        name: sorted(k[len(":") :] for k in (connect().keys("*")))
        for name, (_, connect) in backends.items()
    }
    assert stored["ours"] == stored["theirs"]
    assert f":{version}:a".encode() in {k for k in backends["ours"][1]().keys("*")}


ODD_EXPIRIES = [5.5, True, 1e10]


@pytest.mark.parametrize("timeout", ODD_EXPIRIES, ids=repr)
def test_expire_takes_floats_and_bools_where_django_redis_sends_them_to_be_refused(
    backends: dict[str, tuple[Any, Connect]], timeout: Any
) -> None:
    """A deliberate difference (README): expire/pexpire truncate a float to whole seconds or
    milliseconds, and take True as 1, as Django's own timeouts do; django-redis passes them to
    Redis, which refuses a float ("value is not an integer"), or to redis-py, which refuses a
    bool (DataError)."""
    ours, _ = backends["ours"]
    theirs, _ = backends["theirs"]
    for cache in (ours, theirs):
        cache.set("k", 1)
    assert ours.expire("k", timeout) is True
    assert ours.ttl("k") == int(timeout)
    assert ours.pexpire("k", timeout) is True
    with pytest.raises((redis.exceptions.ResponseError, redis.exceptions.DataError)):
        theirs.expire("k", timeout)


ODD_TIMEOUTS = ["5", float("inf"), float("nan"), 2**64]


@pytest.mark.parametrize("timeout", ODD_TIMEOUTS, ids=repr)
def test_a_timeout_that_is_no_number_of_seconds_raises_before_anything_is_sent(
    backends: dict[str, tuple[Any, Connect]], timeout: Any
) -> None:
    """set, set_many and touch raise for these the way django-redis does for inf and nan
    (OverflowError, ValueError); for '5' (which django-redis multiplies by 1000 as a string)
    and 2**64 (which it sends) Redis refuses django-redis's request, while ours is refused
    before sending, with OverflowError: a bug in the caller, which IGNORE_EXCEPTIONS does not
    hide (deliberate; README)."""
    ours, connect = backends["ours"]
    theirs, _ = backends["theirs"]
    raised = (OverflowError, ValueError, TypeError)
    for call in (
        lambda c: c.set("k", 1, timeout=timeout),
        lambda c: c.set_many({"k": 1}, timeout=timeout),
        lambda c: c.touch("k", timeout),
    ):
        with pytest.raises(raised):
            call(ours)
        with pytest.raises((*raised, redis.exceptions.ResponseError)):
            call(theirs)
    assert connect().keys("*") == []
