"""The command table (``client/table.py``): its stub is current, and every data-structure and
expiry method — the client's and the cache's, sync and async — and every command method of the
native raw client comes from a row, except the ones ``structures.HAND_WRITTEN`` and
``raw.RAW_HAND_WRITTEN`` list."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from django_redis_rs.cache import RedisCache
from django_redis_rs.client import DefaultClient, table
from django_redis_rs.client.structures import HAND_WRITTEN, DataStructures
from django_redis_rs.raw import RAW_HAND_WRITTEN, Pipeline, RawClient, _Commands
from tests.servers import Server

STUB = Path(table.__file__).with_name("_table_stub.pyi")


def test_the_stub_is_what_the_table_writes() -> None:
    assert STUB.read_text() == table.stub(), "run: python python/django_redis_rs/client/table.py"


@pytest.mark.parametrize("row", table.TABLE, ids=lambda row: row.name)
def test_each_row_gives_the_client_and_the_cache_their_methods(row: table.Row) -> None:
    for name in (row.name, "a" + row.name):
        method = getattr(DefaultClient, name)
        assert method.__qualname__.startswith("TableCommands."), name
        assert getattr(table.TableCommands, name) is method
        forward = getattr(RedisCache, name)
        assert forward.neutral == row.answer, name
    assert inspect.iscoroutinefunction(getattr(RedisCache, "a" + row.name))
    params = list(inspect.signature(getattr(DefaultClient, row.name)).parameters)
    assert params[-2:] == ["version", "client"]


def test_every_other_structure_method_is_listed_as_hand_written() -> None:
    written = {
        name
        for name, member in vars(DataStructures).items()
        if not name.startswith("_") and callable(member) and not name.startswith("a")
    }
    # asscan/asscan_iter are the hand-written twins of sscan/sscan_iter.
    assert written == set(HAND_WRITTEN)
    assert not written & {row.name for row in table.TABLE}


def test_a_bad_row_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown parameter kind"):
        table._source(table.Row("x", "X", False, ("q:key",), table.REPLY_INT))
    with pytest.raises(ValueError, match="keys must come first"):
        table._source(table.Row("x", "X", False, ("p:n", "k:a", "k:b"), table.REPLY_INT))


def test_rows_run_on_a_server_sync_and_async(server: Server) -> None:
    import asyncio

    cache = RedisCache(server.url, {"KEY_PREFIX": "table"})
    server.command("FLUSHALL")
    assert cache.sadd("s", 1, 2, 3) == 3
    assert cache.smembers("s") == {1, 2, 3}
    assert cache.sinterstore("dest", "s") == 3
    assert cache.smove("s", "other", 2) is True
    assert cache.rpush("l", "a", {"b": 1}) == 2
    assert cache.lrange("l", 0, -1) == ["a", {"b": 1}]
    assert cache.zincrby("z", 2.5, "m") == 2.5
    assert cache.zscore("z", "m") == 2.5

    async def twins() -> tuple[object, ...]:
        return (
            await cache.asismember("s", 1),
            await cache.allen("l"),
            await cache.azrevrank("z", "m"),
            await cache.apersist("l"),
        )

    assert asyncio.run(twins()) == (True, 2, 0, False)
    # IGNORE_EXCEPTIONS: a dead server answers the row's neutral value.
    dead = RedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"IGNORE_EXCEPTIONS": True}})
    assert (dead.smembers("s"), dead.zrevrank("z", "m"), dead.llen("l")) == (set(), None, 0)


def test_every_raw_client_command_is_a_row_or_listed_as_hand_written() -> None:
    rows = {row.name for row in table.RAW_TABLE}
    for name in rows:
        method = getattr(_Commands, name)
        assert method.__qualname__ == f"RawTableCommands.{name}"
        assert getattr(RawClient, name) is getattr(Pipeline, name) is method
    written = {n for n, m in vars(_Commands).items() if not n.startswith("_") and callable(m)}
    assert written == set(RAW_HAND_WRITTEN)
    assert not written & rows


def test_raw_rows_run_on_a_server_and_queue_in_a_pipeline(server: Server) -> None:
    cache = RedisCache(server.url, {})
    raw = cache.client.get_native_client()
    server.command("FLUSHALL")
    assert raw.ping() is True
    assert raw.incr("n") == 1 and raw.incr("n", 5) == 6
    assert raw.expire("n", 100.7) is True and 0 < raw.ttl("n") <= 100
    assert raw.sadd("s", b"a", b"b") == 2 and raw.smembers("s") == {b"a", b"b"}
    assert raw.hgetall("missing") == {}
    assert sorted(raw.keys()) == [b"n", b"s"]
    with raw.pipeline() as pipe:
        pipe.get("n").exists("n", "s", "x").delete("s")
        assert pipe.execute() == [b"6", 2, 1]
