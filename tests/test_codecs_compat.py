"""Every serializer x compressor reads what django-redis 7.0 writes, and the reverse, on a real
server; serializers write the very bytes django-redis writes."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest
from django_redis.cache import RedisCache as DjangoRedisCache

from django_redis_rs.cache import RedisCache
from tests.servers import Server

SERIALIZERS = ["pickle.PickleSerializer", "json.JSONSerializer", "msgpack.MSGPackSerializer"]
COMPRESSORS = [
    "identity.IdentityCompressor",
    "zlib.ZlibCompressor",
    "gzip.GzipCompressor",
    "lzma.LzmaCompressor",
    "lz4.Lz4Compressor",
    "zstd.ZStdCompressor",
]

COMMON: dict[str, Any] = {
    "str": "hello",
    "non_ascii": "ünïcödé ✓ 🚀 \u2028",
    "int": 42,
    "negative": -7,
    "huge_int": 2**70,
    "float": 0.1,
    "big_float": 1e16,
    "bool": True,
    "none": None,
    "list": [1, "two", 3.5, None, [False]],
    "dict": {"a": 1, "b": {"nested": ["x", {"y": []}]}},
    "empty": "",
    "one_mb": "compressible text " * 58255,
}
PER_SERIALIZER: dict[str, dict[str, Any]] = {
    "pickle.PickleSerializer": {
        "bytes": b"\x00\xffraw",
        "tuple": (1, (2, 3)),
        "set": {1, 2},
        "datetime": datetime.datetime(
            2026, 11, 28, 12, 30, 1, 123456, tzinfo=datetime.timezone.utc
        ),
        "decimal": decimal.Decimal("1.10"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    },
    "json.JSONSerializer": {
        "tuple": (1, (2, 3)),
        "datetime": datetime.datetime(
            2026, 11, 28, 12, 30, 1, 123456, tzinfo=datetime.timezone.utc
        ),
        "naive_datetime": datetime.datetime(2026, 11, 28, 12, 30, 1),
        "date": datetime.date(2026, 11, 28),
        "time": datetime.time(12, 30, 1, 500),
        "timedelta": datetime.timedelta(days=1, seconds=5, microseconds=7),
        "decimal": decimal.Decimal("1.10"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "escapes": 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f',
        "non_str_keys": {1: "a", 2.5: "b", False: "c", None: "d"},
        "special_floats": [float("inf"), float("-inf"), -0.0, 1e-7, 123456789.123456789],
    },
    "msgpack.MSGPackSerializer": {
        "bytes": b"\x00\xffraw",
        "tuple": (1, (2, 3)),
        "ints": [
            0,
            127,
            128,
            255,
            256,
            65535,
            65536,
            2**32,
            2**64 - 1,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            -(2**31) - 1,
            -(2**63),
        ],
        "long_str": "x" * 70000,
        "long_list": list(range(70000)),
        "bytes_keys": {b"k": 1, "s": 2},
    },
}


def values_for(serializer: str) -> dict[str, Any]:
    return {**COMMON, **PER_SERIALIZER[serializer]}


def options(package: str, serializer: str, compressor: str) -> dict[str, Any]:
    return {
        "SERIALIZER": f"{package}.serializers.{serializer}",
        "COMPRESSOR": f"{package}.compressors.{compressor}",
    }


@pytest.fixture
def pair(server: Server, request: pytest.FixtureRequest):
    server.command("FLUSHALL")
    serializer, compressor = request.param
    ours = RedisCache(server.url, {"OPTIONS": options("django_redis_rs", serializer, compressor)})
    theirs = DjangoRedisCache(
        server.url, {"OPTIONS": options("django_redis", serializer, compressor)}
    )
    yield ours, theirs
    theirs.close()


MATRIX = [(s, c) for s in SERIALIZERS for c in COMPRESSORS]


@pytest.mark.parametrize(
    "pair", MATRIX, indirect=True, ids=[f"{s.split('.')[0]}-{c.split('.')[0]}" for s, c in MATRIX]
)
def test_cross_read(pair, request) -> None:
    ours, theirs = pair
    serializer = request.node.callspec.params["pair"][0]
    for name, value in values_for(serializer).items():
        theirs.set(f"theirs:{name}", value)
        ours.set(f"ours:{name}", value)
        expected = theirs.get(f"theirs:{name}")  # what the value becomes in this format
        assert ours.get(f"theirs:{name}") == expected, f"we misread django-redis's {name}"
        assert theirs.get(f"ours:{name}") == expected, f"django-redis misreads our {name}"
        assert ours.get(f"ours:{name}") == expected, name


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_serializers_write_django_redis_bytes(server: Server, serializer: str) -> None:
    server.command("FLUSHALL")
    ours = RedisCache(
        server.url, {"OPTIONS": options("django_redis_rs", serializer, COMPRESSORS[0])}
    )
    theirs = DjangoRedisCache(
        server.url, {"OPTIONS": options("django_redis", serializer, COMPRESSORS[0])}
    )
    raw = theirs.client.get_client()
    for name, value in values_for(serializer).items():
        ours.set(f"ours:{name}", value)
        theirs.set(f"theirs:{name}", value)
        assert raw.get(f":1:ours:{name}") == raw.get(f":1:theirs:{name}"), name


@pytest.mark.parametrize("compressor", COMPRESSORS[1:])
def test_values_written_before_compression_stay_readable(server: Server, compressor: str) -> None:
    server.command("FLUSHALL")
    plain = RedisCache(server.url, {})
    plain.set("old", "x" * 1000)
    compressed = RedisCache(
        server.url, {"OPTIONS": {"COMPRESSOR": f"django_redis_rs.compressors.{compressor}"}}
    )
    assert compressed.get("old") == "x" * 1000
    compressed.set("new", "y" * 1000)
    assert plain.client.get_client().execute_command("STRLEN", ":1:new") < 200
