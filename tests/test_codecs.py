"""The codecs on their own: property tests against the reference libraries, corrupt and
foreign input, options, and what the cache does with values it cannot read."""

from __future__ import annotations

import gzip
import json
import lzma
import math
import zlib
from typing import Any

import lz4.frame
import msgpack
import pytest
import pyzstd
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from hypothesis import given, settings
from hypothesis import strategies as st

from django_redis_rs import _native
from django_redis_rs.cache import RedisCache
from django_redis_rs.compressors.gzip import GzipCompressor
from django_redis_rs.compressors.lz4 import Lz4Compressor
from django_redis_rs.compressors.lzma import LzmaCompressor
from django_redis_rs.compressors.zlib import ZlibCompressor
from django_redis_rs.compressors.zstd import ZStdCompressor
from django_redis_rs.exceptions import CompressorError, SerializerError
from django_redis_rs.serializers.json import JSONSerializer
from django_redis_rs.serializers.msgpack import MSGPackSerializer
from tests.servers import Server

JSON = ("json",)
MSGPACK = ("msgpack",)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8) | st.binary(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_json_matches_json_dumps_and_loads(value: Any) -> None:
    expected = json.dumps(value, cls=DjangoJSONEncoder).encode()
    assert _native.dumps(JSON, value) == expected
    assert _native.loads(JSON, expected) == json.loads(expected)


@settings(max_examples=400, deadline=None)
@given(msgpack_values)
def test_msgpack_matches_msgpack(value: Any) -> None:
    expected = msgpack.dumps(value)
    assert _native.dumps(MSGPACK, value) == expected
    assert _native.loads(MSGPACK, expected) == msgpack.loads(expected, raw=False)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=5000))
def test_garbage_never_crashes_the_decoders(data: bytes) -> None:
    for spec in (JSON, MSGPACK):
        try:
            _native.loads(spec, data)
        except (ValueError, OverflowError):
            pass
    for spec in (
        ZlibCompressor({}),
        GzipCompressor({}),
        LzmaCompressor({}),
        Lz4Compressor({}),
        ZStdCompressor({}),
    ):
        try:
            spec.decompress(data)
        except CompressorError:
            pass


def test_json_specials() -> None:
    assert _native.dumps(JSON, float("nan")) == b"NaN"
    assert math.isnan(_native.loads(JSON, b"NaN"))
    assert _native.loads(JSON, b' {"a" : [1 , 2] } ') == {"a": [1, 2]}
    assert _native.loads(JSON, b'"\\ud83d\\ude80 \\u00e9 \\/"') == "🚀 é /"
    assert _native.loads(JSON, b'"\\udc00"') == "\udc00"  # a lone surrogate, as json.loads
    assert _native.dumps(JSON, "\udc00") == json.dumps("\udc00").encode()
    assert _native.loads(JSON, b"12345678901234567890123") == 12345678901234567890123
    for bad in [b"", b"[1,", b"{1: 2}", b"01", b'"\x01"', b"[1] x", b"\xff", b"tru"]:
        with pytest.raises(ValueError):
            _native.loads(JSON, bad)
    with pytest.raises(TypeError, match="not JSON serializable"):
        _native.dumps(JSON, object())
    with pytest.raises(TypeError, match="keys must be"):
        _native.dumps(JSON, {(1, 2): 3})
    # Deeper than the native codec goes: Python's json decides, as for django-redis (it takes
    # 900 levels here, and refuses 100,000 with RecursionError).
    deep: list[Any] = []
    for _ in range(900):
        deep = [deep]
    assert _native.dumps(JSON, deep) == json.dumps(deep).encode()
    assert _native.loads(JSON, json.dumps(deep).encode()) == deep
    with pytest.raises(RecursionError):
        _native.loads(JSON, b"[" * 100_000 + b"]" * 100_000)


def test_msgpack_specials() -> None:
    with pytest.raises(TypeError, match="can not serialize"):
        _native.dumps(MSGPACK, {1, 2})
    with pytest.raises(OverflowError):
        _native.dumps(MSGPACK, 2**64)
    with pytest.raises(ValueError, match="strict_map_key"):
        _native.loads(MSGPACK, msgpack.dumps({1: 2}))
    # Extension types are built by msgpack, as django-redis's serializer reads them.
    assert _native.loads(MSGPACK, msgpack.dumps(msgpack.ExtType(5, b"x"))) == msgpack.ExtType(
        5, b"x"
    )
    stamp = msgpack.Timestamp(1_700_000_000, 5)
    assert _native.loads(MSGPACK, msgpack.dumps([stamp])) == [stamp]
    for bad in [b"", b"\x92\x01", b"\xc1", b"\xdd\xff\xff\xff\xff", msgpack.dumps([1]) + b"\x01"]:
        with pytest.raises(ValueError):
            _native.loads(MSGPACK, bad)
    # what python callers of the classes see
    assert MSGPackSerializer({}).loads(MSGPackSerializer({}).dumps((1, "a"))) == [1, "a"]
    assert JSONSerializer({}).loads(JSONSerializer({}).dumps({"a": (1,)})) == {"a": [1]}


REFERENCE = [
    (ZlibCompressor, zlib.compress, zlib.decompress),
    (GzipCompressor, gzip.compress, gzip.decompress),
    (LzmaCompressor, lambda d: lzma.compress(d, preset=4), lzma.decompress),
    (Lz4Compressor, lz4.frame.compress, lz4.frame.decompress),
    (ZStdCompressor, pyzstd.compress, pyzstd.decompress),
]


@pytest.mark.parametrize(("cls", "their_compress", "their_decompress"), REFERENCE)
@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=20000) | st.text(max_size=20000).map(str.encode))
def test_compressors_interoperate_with_the_reference_libraries(
    cls: Any, their_compress: Any, their_decompress: Any, data: bytes
) -> None:
    ours = cls({})
    packed = ours.compress(data)
    if len(data) > ours.min_length:
        assert their_decompress(packed) == data
    else:
        assert packed == data
    assert ours.decompress(their_compress(data)) == data


@pytest.mark.parametrize("cls", [c for c, _, _ in REFERENCE])
def test_decompression_bomb_is_refused(cls: Any) -> None:
    bounded = cls({"COMPRESSOR_MAX_DECOMPRESSED_SIZE": 10_000})
    bomb = cls({}).compress(b"\x00" * 1_000_000)
    with pytest.raises(CompressorError, match="10000"):
        bounded.decompress(bomb)


def test_compressor_options() -> None:
    assert len(ZlibCompressor({"COMPRESSOR_MIN_LENGTH": 1000}).compress(b"a" * 500)) == 500
    fast = ZStdCompressor({"COMPRESSOR_LEVEL": 1}).compress(b"abc" * 10000)
    best = ZStdCompressor({"COMPRESSOR_LEVEL": 19}).compress(b"abc" * 10000)
    assert len(best) <= len(fast)
    for options, message in [
        ({"COMPRESSOR_LEVEL": 99}, "COMPRESSOR_LEVEL"),
        ({"COMPRESSOR_LEVEL": "9"}, "COMPRESSOR_LEVEL"),
        ({"COMPRESSOR_MIN_LENGTH": -1}, "COMPRESSOR_MIN_LENGTH"),
        ({"COMPRESSOR_MAX_DECOMPRESSED_SIZE": 0}, "COMPRESSOR_MAX_DECOMPRESSED_SIZE"),
    ]:
        with pytest.raises(ImproperlyConfigured, match=message):
            ZlibCompressor(options)


def make(server: Server, **options: Any) -> RedisCache:
    return RedisCache(server.url, {"OPTIONS": options})


def test_cache_errors_name_the_codec_and_the_key(server: Server) -> None:
    server.command("FLUSHALL")
    cache = make(
        server,
        SERIALIZER="django_redis_rs.serializers.json.JSONSerializer",
        COMPRESSOR="django_redis_rs.compressors.zlib.ZlibCompressor",
    )
    server.command("SET", ":1:bad", "{not json")
    with pytest.raises(SerializerError) as info:
        cache.get("bad")
    message = str(info.value)
    assert "JSONSerializer" in message and ":1:bad" in message and "zlib" in message
    assert server.command("GET", ":1:bad").endswith(b"{not json\r\n")  # nothing written back


def test_cache_refuses_a_decompression_bomb(server: Server) -> None:
    server.command("FLUSHALL")
    writer = make(server, COMPRESSOR="django_redis_rs.compressors.zstd.ZStdCompressor")
    writer.set("bomb", "\x00" * 2_000_000)
    reader = make(
        server,
        COMPRESSOR="django_redis_rs.compressors.zstd.ZStdCompressor",
        COMPRESSOR_MAX_DECOMPRESSED_SIZE=100_000,
    )
    with pytest.raises(CompressorError, match="bomb"):
        reader.get("bomb")
    assert writer.get("bomb") == "\x00" * 2_000_000


def test_integer_rule_holds_for_every_serializer(server: Server) -> None:
    import enum

    class Color(enum.IntEnum):
        RED = 1

    for serializer, spec in (("json.JSONSerializer", JSON), ("msgpack.MSGPackSerializer", MSGPACK)):
        server.command("FLUSHALL")
        cache = make(
            server,
            SERIALIZER=f"django_redis_rs.serializers.{serializer}",
            COMPRESSOR="django_redis_rs.compressors.zlib.ZlibCompressor",
        )
        cache.set("n", 10)
        assert server.command("GET", ":1:n") == b"$2\r\n10\r\n"
        assert cache.incr("n") == 11
        cache.set("flag", True)
        assert cache.get("flag") is True
        cache.set("color", Color.RED)  # serialized, as django-redis does (JSON writes it as 1)
        assert server.command("GET", ":1:color").endswith(_native.dumps(spec, Color.RED) + b"\r\n")


def test_a_json_subclass_with_its_own_encoder_runs_in_python(server: Server) -> None:
    server.command("FLUSHALL")
    cache = make(server, SERIALIZER="tests.helpers.SortedJSONSerializer")
    cache.set("k", {"b": 1, "a": 2})
    assert server.command("GET", ":1:k").endswith(b'{"a": 2, "b": 1}\r\n')


BUILTIN_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner)
        | st.tuples(inner, inner, inner, inner)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=5)
        | st.frozensets(st.integers() | st.text(max_size=4), max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(value=BUILTIN_VALUES, protocol=st.integers(min_value=2, max_value=5))
def test_pickles_of_builtins_decode_as_pickle_decodes_them(value: Any, protocol: int) -> None:
    """The native decoder of builtin pickles (dicts, lists, str, ... — what django-redis and
    pickle write) gives what pickle.loads gives: the same types, values and shared objects,
    which pickling both again to the same bytes shows. What it declines, pickle decodes."""
    import pickle

    data = pickle.dumps(value, protocol)
    ours = _native.loads(("pickle", pickle.DEFAULT_PROTOCOL), data)
    assert pickle.dumps(ours, 4) == pickle.dumps(pickle.loads(data), 4)
