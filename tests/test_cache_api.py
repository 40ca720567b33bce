"""Django's cache API with Django's semantics, against real servers (Redis and Valkey)."""

from __future__ import annotations

import time
import warnings

import pytest
from django.core.cache.backends.base import CacheKeyWarning

from django_redis_rs.cache import RedisCache
from tests.servers import Server


def test_get_set_roundtrip_of_python_values(cache: RedisCache) -> None:
    values = [
        "text",
        "ünïcödé ✓",
        b"\x00\xffbytes",
        1.5,
        None,
        [1, "two", 3.0],
        (1, 2),
        {"a": {"nested": [1, 2]}},
        {1, 2, 3},
        True,
        False,
        "",
    ]
    for i, value in enumerate(values):
        assert cache.set(f"k{i}", value) is True
        assert cache.get(f"k{i}", "missing") == value
        assert type(cache.get(f"k{i}")) is type(value)


def test_missing_key_returns_default_but_stored_none_is_none(cache: RedisCache) -> None:
    assert cache.get("nope") is None
    assert cache.get("nope", "dflt") == "dflt"
    cache.set("none", None)
    assert cache.get("none", "dflt") is None


def test_integers_are_stored_as_plain_integers(cache: RedisCache, server: Server) -> None:
    cache.set("n", 42)
    cache.set("big", 2**80)
    cache.set("neg", -7)
    assert server.command("GET", ":1:n") == b"$2\r\n42\r\n"
    assert cache.get("n") == 42
    assert cache.get("big") == 2**80
    assert cache.get("neg") == -7
    # bools are pickled, not stored as 1/0
    cache.set("flag", True)
    assert cache.get("flag") is True
    assert not server.command("GET", ":1:flag").endswith(b"\r\n1\r\n")


def test_key_prefix_version_and_key_function(make_cache) -> None:
    a = make_cache(KEY_PREFIX="app", VERSION=3)
    a.set("k", "v")
    assert a.client.make_key("k") == "app:3:k"
    assert a.get("k") == "v"
    assert a.get("k", version=2) is None
    b = make_cache(KEY_FUNCTION=lambda key, prefix, version: f"custom-{key}")
    b.set("k", "w")
    assert a.client._native.get("custom-k") == "w"


def test_add_only_when_absent(cache: RedisCache) -> None:
    assert cache.add("k", 1) is True
    assert cache.add("k", 2) is False
    assert cache.get("k") == 1


def test_set_nx_xx(cache: RedisCache) -> None:
    assert cache.set("k", 1, xx=True) is False
    assert cache.get("k") is None
    assert cache.set("k", 1, nx=True) is True
    assert cache.set("k", 2, nx=True) is False
    assert cache.set("k", 3, xx=True) is True
    assert cache.get("k") == 3


def test_timeouts(cache: RedisCache) -> None:
    cache.set("forever", 1, timeout=None)
    assert cache.ttl("forever") is None
    cache.set("short", 1, timeout=10)
    assert 8 <= cache.ttl("short") <= 10
    assert 8000 < cache.pttl("short") <= 10000
    cache.set("default", 1)  # DEFAULT_TIMEOUT = 300
    assert 290 < cache.ttl("default") <= 300
    cache.set("zero", 1, timeout=0)
    assert cache.get("zero") is None
    cache.set("neg", 1)
    cache.set("neg", 2, timeout=-1)
    assert cache.get("neg") is None
    assert cache.add("zero-add", 1, timeout=0) is True
    assert cache.get("zero-add") is None
    assert cache.ttl("missing") == 0


def test_subsecond_timeout_expires(cache: RedisCache) -> None:
    cache.set("k", 1, timeout=0.2)
    assert cache.get("k") == 1
    time.sleep(0.3)
    assert cache.get("k") is None


def test_touch(cache: RedisCache) -> None:
    cache.set("k", 1, timeout=1)
    assert cache.touch("k", 100) is True
    assert cache.ttl("k") > 90
    assert cache.touch("k", None) is True
    assert cache.ttl("k") is None
    assert cache.touch("k", None) is True  # exists, already persistent
    assert cache.touch("missing") is False
    assert cache.touch("k", 0) is True
    assert cache.get("k") is None


def test_delete_and_has_key(cache: RedisCache) -> None:
    cache.set("k", 1)
    assert cache.has_key("k") is True
    assert "k" in cache
    assert cache.delete("k") is True
    assert cache.delete("k") is False
    assert cache.has_key("k") is False


def test_many(cache: RedisCache) -> None:
    assert cache.set_many({"a": 1, "b": "two", "c": [3]}) == []
    assert cache.get_many(["a", "b", "c", "missing"]) == {"a": 1, "b": "two", "c": [3]}
    assert cache.get_many([]) == {}
    assert cache.delete_many(["a", "b", "missing"]) == 2
    assert cache.get_many(["a", "b", "c"]) == {"c": [3]}
    assert cache.delete_many([]) is None  # Django's contract; a count otherwise
    cache.set_many({"t1": 1, "t2": 2}, timeout=50)
    assert 40 < cache.ttl("t1") <= 50
    cache.set_many({"t1": 1, "t2": 2}, timeout=0)
    assert cache.get_many(["t1", "t2"]) == {}


def test_get_many_maps_back_original_keys(cache: RedisCache) -> None:
    cache.set(1, "int key")
    assert cache.get_many([1]) == {1: "int key"}


def test_incr_decr(cache: RedisCache) -> None:
    cache.set("n", 1)
    assert cache.incr("n") == 2
    assert cache.incr("n", 10) == 12
    assert cache.decr("n") == 11
    assert cache.decr("n", 20) == -9
    with pytest.raises(ValueError):
        cache.incr("missing")
    with pytest.raises(ValueError):
        cache.decr("missing")
    assert cache.incr("created", 5, ignore_key_check=True) == 5


def test_incr_beyond_64_bits_and_keeps_ttl(cache: RedisCache) -> None:
    cache.set("big", 2**63 - 1, timeout=100)
    assert cache.incr("big") == 2**63
    assert cache.get("big") == 2**63
    assert 90 < cache.ttl("big") <= 100
    cache.set("huge", 2**100)
    assert cache.incr("huge", 2**100) == 2**101


def test_incr_is_atomic_under_threads(cache: RedisCache) -> None:
    from concurrent.futures import ThreadPoolExecutor

    cache.set("counter", 0)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: cache.incr("counter"), range(400)))
    assert cache.get("counter") == 400


def test_versions(cache: RedisCache) -> None:
    cache.set("k", "v", timeout=100)
    assert cache.incr_version("k") == 2
    assert cache.get("k") is None
    assert cache.get("k", version=2) == "v"
    assert 90 < cache.ttl("k", version=2) <= 100
    assert cache.decr_version("k", version=2) == 1
    assert cache.get("k") == "v"
    with pytest.raises(ValueError):
        cache.incr_version("missing")


def test_get_or_set(cache: RedisCache) -> None:
    assert cache.get_or_set("k", lambda: "computed") == "computed"
    assert cache.get_or_set("k", "other") == "computed"


def test_clear(cache: RedisCache) -> None:
    cache.set("a", 1)
    cache.clear()
    assert cache.get("a") is None


def test_expire_persist(cache: RedisCache) -> None:
    import datetime

    cache.set("k", 1, timeout=None)
    assert cache.expire("k", 100) is True
    assert 90 < cache.ttl("k") <= 100
    assert cache.persist("k") is True
    assert cache.ttl("k") is None
    assert cache.pexpire("k", 20000) is True
    assert 10000 < cache.pttl("k") <= 20000
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=60)
    assert cache.expire_at("k", when) is True
    assert 50 < cache.ttl("k") <= 60
    assert cache.pexpire_at("k", when) is True
    assert cache.expire("missing", 10) is False


def test_keys_iter_keys_delete_pattern(make_cache) -> None:
    cache = make_cache(KEY_PREFIX="p*x")
    other = make_cache(KEY_PREFIX="other")
    for i in range(50):
        cache.set(f"foo-{i}", i)
    cache.set("bar", 1)
    other.set("foo-1", 1)
    assert sorted(cache.keys("foo-*")) == sorted(f"foo-{i}" for i in range(50))
    assert sorted(cache.iter_keys("foo-*", itersize=7)) == sorted(f"foo-{i}" for i in range(50))
    assert cache.delete_pattern("foo-*", itersize=8) == 50
    assert cache.keys("*") == ["bar"]
    assert other.get("foo-1") == 1


def test_close_only_disconnects_when_asked(make_cache) -> None:
    keep = make_cache()
    keep.get("x")
    keep.close()
    stats = list(keep.client._native.pool_stats().values())[0]
    assert stats["idle"] >= 1
    closing = make_cache(options={"CLOSE_CONNECTION": True, "SOCKET_TIMEOUT": 3})
    closing.get("x")
    closing.close()
    stats = list(closing.client._native.pool_stats().values())[0]
    assert (stats["open"], stats["idle"]) == (0, 0)
    assert closing.get("x") is None  # reconnects on demand


def test_key_warnings_match_django(make_cache) -> None:
    cache = make_cache(KEY_FUNCTION=lambda key, prefix, version: key)
    with pytest.warns(CacheKeyWarning) as record:
        cache.set("has space", 1)
    assert str(record[0].message) == (
        "Cache key contains characters that will cause errors if used with memcached: 'has space'"
    )
    long_key = "a" * 251
    with pytest.warns(CacheKeyWarning) as record:
        cache.get(long_key)
    assert str(record[0].message) == (
        f"Cache key will cause errors if used with memcached: '{long_key}' (longer than 250)"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.set("fine-key", 1)
    with pytest.warns(CacheKeyWarning):
        assert cache.get("has space") == 1


def test_unpicklable_value_raises_and_writes_nothing(cache: RedisCache) -> None:
    import pickle

    with pytest.raises((pickle.PicklingError, AttributeError)):  # pickle's own error, as Django
        cache.set("k", lambda: 1)
    assert cache.has_key("k") is False


def test_corrupt_value_raises_serializer_error_naming_the_key(
    cache: RedisCache, server: Server
) -> None:
    from django_redis_rs.exceptions import SerializerError

    server.command("SET", ":1:bad", "\x80garbage")
    with pytest.raises(SerializerError, match=":1:bad"):
        cache.get("bad")
    assert server.command("EXISTS", ":1:bad") == b":1\r\n"  # nothing written back


def test_pickle_version_option(make_cache, server: Server) -> None:
    cache = make_cache(options={"PICKLE_VERSION": 2})
    cache.set("k", "v")
    assert server.command("GET", ":1:k")[5:7] == b"\x80\x02"
    assert cache.get("k") == "v"


def test_set_many_under_ignore_exceptions_returns_the_keys_not_stored(dead_url: str) -> None:
    import asyncio

    cache = RedisCache(dead_url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True}})
    assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
    assert cache.set_many(data={"c": 3}) == ["c"]
    assert asyncio.run(cache.aset_many({"d": 4})) == ["d"]
    assert cache.delete_many([]) is None and cache.delete_many(["a"]) == 0
    assert asyncio.run(cache.adelete_many([])) is None
