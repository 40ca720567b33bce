"""django-redis's set, hash, sorted-set and list commands (plus hget/hgetall and lists)."""

from __future__ import annotations

import pytest

from django_redis_rs.cache import RedisCache


def test_sets(cache: RedisCache) -> None:
    assert cache.sadd("s", "a", "b", 3) == 3
    assert cache.sadd("s", "a") == 0
    assert cache.scard("s") == 3
    assert cache.smembers("s") == {"a", "b", 3}
    assert cache.sismember("s", "a") is True
    assert cache.sismember("s", "z") is False
    assert cache.smismember("s", "a", "z", 3) == [True, False, True]
    cache.sadd("t", "b", "c")
    assert cache.sdiff("s", "t") == {"a", 3}
    assert cache.sinter("s", "t") == {"b"}
    assert cache.sunion("s", "t") == {"a", "b", "c", 3}
    assert cache.sdiffstore("d", "s", "t") == 2
    assert cache.smembers("d") == {"a", 3}
    assert cache.sinterstore("i", "s", "t") == 1
    assert cache.sunionstore("u", "s", "t") == 4
    assert cache.smove("s", "t", "a") is True
    assert cache.smove("s", "t", "a") is False
    assert "a" in cache.smembers("t")
    assert cache.srem("s", "b", "nope") == 1
    assert cache.smembers("s") == {3}
    assert cache.srandmember("s") == 3
    assert cache.srandmember("s", 5) == [3]
    assert cache.spop("s") == 3
    assert cache.spop("s") is None
    cache.sadd("p", 1, 2, 3)
    assert cache.spop("p", 3) == {1, 2, 3}
    cache.sadd("many", *range(100))
    assert cache.sscan("many") == set(range(100))
    assert sorted(cache.sscan_iter("many", count=7)) == list(range(100))
    cache.sadd("words", "apple", "banana")
    assert cache.sscan("words", match="apple") == {"apple"}


def test_sets_respect_versions(cache: RedisCache) -> None:
    cache.sadd("s", 1, version=2)
    assert cache.smembers("s") == set()
    assert cache.smembers("s", version=2) == {1}


def test_hashes(cache: RedisCache) -> None:
    assert cache.hset("h", "f1", {"v": 1}) == 1
    assert cache.hset("h", mapping={"f2": 2, "f3": "three"}) == 2
    assert cache.hlen("h") == 3
    assert sorted(cache.hkeys("h")) == ["f1", "f2", "f3"]
    assert cache.hexists("h", "f1") is True
    assert cache.hexists("h", "zz") is False
    assert cache.hget("h", "f1") == {"v": 1}
    assert cache.hget("h", "zz") is None
    assert cache.hgetall("h") == {"f1": {"v": 1}, "f2": 2, "f3": "three"}
    assert cache.hdel("h", "f1") == 1
    assert cache.hdel("h", "f1") == 0
    with pytest.raises(ValueError):
        cache.hset("h")


def test_sorted_sets(cache: RedisCache) -> None:
    assert cache.zadd("z", {"a": 1.0, "b": 2.0, "c": 3.0}) == 3
    assert cache.zadd("z", {"a": 5.0}, xx=True, ch=True) == 1
    assert cache.zadd("z", {"a": 1.0}, nx=True) == 0
    assert cache.zadd("z", {"a": 1.5}, incr=True) == 6.5
    assert cache.zcard("z") == 3
    assert cache.zcount("z", 2, 3) == 2
    assert cache.zincrby("z", 1.0, "b") == 3.0
    assert cache.zscore("z", "b") == 3.0
    assert cache.zscore("z", "missing") is None
    assert cache.zrange("z", 0, -1) == ["b", "c", "a"]
    assert cache.zrange("z", 0, -1, desc=True) == ["a", "c", "b"]
    assert cache.zrange("z", 0, 0, withscores=True) == [("b", 3.0)]
    assert cache.zrange("z", 0, 0, withscores=True, score_cast_func=int) == [("b", 3)]
    assert cache.zrevrange("z", 0, 1) == ["a", "c"]
    assert cache.zrevrange("z", 0, 0, withscores=True) == [("a", 6.5)]
    assert cache.zrangebyscore("z", 3, 4) == ["b", "c"]
    assert cache.zrangebyscore("z", "-inf", "+inf", start=1, num=1, withscores=True) == [("c", 3.0)]
    assert cache.zrevrangebyscore("z", 10, 3, start=0, num=2) == ["a", "c"]
    assert cache.zrank("z", "b") == 0
    assert cache.zrank("z", "missing") is None
    version = tuple(
        int(p) for p in cache.client.get_client().info("server")["redis_version"].split(".")
    )
    if version >= (7, 2):  # ZRANK ... WITHSCORE is new in Redis 7.2
        assert cache.zrank("z", "a", withscore=True) == [2, 6.5]
    assert cache.zrevrank("z", "a") == 0
    assert cache.zpopmax("z") == ("a", 6.5)
    assert cache.zpopmin("z", 1) == [("b", 3.0)]
    assert cache.zrem("z", "c", "nope") == 1
    assert cache.zpopmax("z") is None
    assert cache.zpopmin("z", 2) == []
    cache.zadd("r", {"x": 1, "y": 2, "w": 9})
    assert cache.zremrangebyscore("r", 0, 5) == 2
    # members are pickled even when they are ints (django-redis's allow_int=False)
    cache.zadd("ints", {7: 1})
    assert cache.zrange("ints", 0, -1) == [7]


def test_lists(cache: RedisCache) -> None:
    assert cache.rpush("l", "a", {"b": 1}) == 2
    assert cache.lpush("l", 0) == 3
    assert cache.llen("l") == 3
    assert cache.lrange("l", 0, -1) == [0, "a", {"b": 1}]
    assert cache.lindex("l", 1) == "a"
    assert cache.lindex("l", 10) is None
    cache.rpush("l", "a")
    assert cache.lrem("l", 0, "a") == 2
    assert cache.ltrim("l", 0, 0) is True
    assert cache.lrange("l", 0, -1) == [0]
    cache.rpush("l", 1, 2, 3)
    assert cache.lpop("l") == 0
    assert cache.rpop("l") == 3
    assert cache.lpop("l", 5) == [1, 2]
    assert cache.lpop("l") is None
    assert cache.rpop("l", 2) is None


def test_wrong_type_raises_response_error(cache: RedisCache) -> None:
    from django_redis_rs.exceptions import ResponseError

    cache.set("str", "x")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        cache.sadd("str", 1)
    assert cache.get("str") == "x"
