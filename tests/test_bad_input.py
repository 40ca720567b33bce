"""Bad input through the public API: property tests over keys and values, foreign bytes in
Redis, odd key types, oversized values, and credentials that must never leak."""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import pytest
from django.core.cache import CacheKeyWarning
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_redis_rs.cache import RedisCache
from django_redis_rs.exceptions import (
    CompressorError,
    SerializerError,
    ValueTooLargeError,
)
from tests.helpers import OUTAGE
from tests.servers import Server

CODECS = [
    (serializer, compressor)
    for serializer in (
        "pickle.PickleSerializer",
        "json.JSONSerializer",
        "msgpack.MSGPackSerializer",
    )
    for compressor in ("identity.IdentityCompressor", "zstd.ZStdCompressor", "zlib.ZlibCompressor")
]


def codec_cache(server: Server, serializer: str, compressor: str) -> RedisCache:
    return RedisCache(
        server.url,
        {
            "KEY_PREFIX": "fuzz",
            "OPTIONS": {
                "SERIALIZER": f"django_redis_rs.serializers.{serializer}",
                "COMPRESSOR": f"django_redis_rs.compressors.{compressor}",
                "COMPRESSOR_MIN_LENGTH": 1 if "Identity" not in compressor else 15,
            },
        },
    )


keys = st.text(min_size=0, max_size=300) | st.integers() | st.floats(allow_nan=False)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=200)
    | st.binary(max_size=200)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
quiet = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@quiet
@given(key=keys, value=values)
def test_any_key_and_picklable_value_round_trips(server: Server, key: Any, value: Any) -> None:
    cache = codec_cache(server, "pickle.PickleSerializer", "zstd.ZStdCompressor")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheKeyWarning)  # memcached's limits, not Redis's
        assert cache.set(key, value) is True
        got = cache.get(key, "missing")
        assert got == value or (isinstance(value, float) and math.isclose(got, value))
        assert cache.get_many([key]) == {key: got}
        assert cache.delete(key) is True
        assert cache.get(key, "missing") == "missing"


@quiet
@given(data=st.binary(max_size=300), codec=st.sampled_from(CODECS))
def test_foreign_bytes_in_redis_give_a_value_or_a_codec_error(
    server: Server, data: bytes, codec: tuple[str, str]
) -> None:
    """Bytes some other program wrote under our key: decoded, or SerializerError /
    CompressorError naming the key — never another exception, never a crash."""
    cache = codec_cache(server, *codec)
    server_key = cache.make_and_validate_key("foreign")
    cache.client.get_native_client().set(server_key, data)
    for call in (lambda: cache.get("foreign"), lambda: cache.get_many(["foreign", "absent"])):
        try:
            call()
        except (SerializerError, CompressorError) as e:
            assert "foreign" in str(e)


def test_odd_key_types_are_keys_by_their_text(cache: RedisCache) -> None:
    """Django makes keys with str(): 1 and "1" are the same key, as in every Django backend."""
    cache.set(1, "int")
    assert cache.get("1") == "int"
    cache.set(2.5, "float")
    assert cache.get("2.5") == "float"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheKeyWarning)  # the space in "('a', 1)"
        cache.set(("a", 1), "tuple")
        assert cache.get("('a', 1)") == "tuple"


def test_very_long_keys_work(cache: RedisCache) -> None:
    key = "k" * 1_000_000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheKeyWarning)
        assert cache.set(key, 1) is True
        assert cache.get(key) == 1
        assert cache.get_many([key, "x"]) == {key: 1}


def test_values_over_512_mb_are_refused_before_sending(cache: RedisCache) -> None:
    huge = b"x" * (512 * 2**20 + 1)
    with pytest.raises(ValueTooLargeError, match="512 MB"):
        cache.set("big", huge)
    with pytest.raises(ValueTooLargeError):
        cache.set_many({"small": 1, "big": huge})
    del huge
    assert cache.get("big", "absent") == "absent"
    assert cache.get("small", "absent") == "absent"  # set_many sent nothing
    assert cache.set("after", 1) is True  # the connection was never touched


def test_values_over_512_mb_refused_even_with_ignore_exceptions(make_cache) -> None:
    cache = make_cache(options={"IGNORE_EXCEPTIONS": True})
    with pytest.raises(ValueTooLargeError):
        cache.set("big", b"x" * (512 * 2**20 + 1))


def test_a_compressed_value_is_measured_as_sent(make_cache) -> None:
    cache = make_cache(
        options={
            "COMPRESSOR": "django_redis_rs.compressors.zstd.ZStdCompressor",
            "COMPRESSOR_MAX_DECOMPRESSED_SIZE": 2**30,
        }
    )
    big_but_compressible = b"\0" * (513 * 2**20)
    assert cache.set("zeros", big_but_compressible) is True
    assert cache.get("zeros") == big_but_compressible


@pytest.mark.parametrize(
    "options",
    [
        {"SOCKET_TIMEOUT": "1"},
        {"SOCKET_TIMEOUT": -1},
        {"CONNECTION_POOL_KWARGS": {"max_connections": 0}},
        {"CONNECTION_POOL_KWARGS": {"health_check_interval": "often"}},
        {"CIRCUIT_BREAKER": {"failures": 0}},
        {"CIRCUIT_BREAKER": {"failures": 3, "reset_timeout": 0}},
        {"CIRCUIT_BREAKER": {"after": 3}},
        {"CIRCUIT_BREAKER": 3},
        {"SERIALIZER": "no.such.Serializer"},
        {
            "COMPRESSOR_LEVEL": "max",
            "COMPRESSOR": "django_redis_rs.compressors.zlib.ZlibCompressor",
        },
    ],
)
def test_invalid_options_name_the_option(options: dict[str, Any]) -> None:
    name = next(iter(options))
    with pytest.raises(ImproperlyConfigured, match=name):
        RedisCache("redis://127.0.0.1:1", {"OPTIONS": options}).get("k")


# --- credentials never appear in messages, reprs or logs ---

SECRET = "hunter2-s3cr3t"


def secret_free(*texts: object) -> bool:
    return not any(SECRET in str(t) for t in texts)


def test_credentials_never_in_errors_reprs_or_logs(dead_url: str, caplog) -> None:
    host = dead_url.split("//")[1]
    url = f"redis://app:{SECRET}@{host}/0"
    cache = RedisCache(url, {})
    with pytest.raises(OUTAGE) as info:
        cache.get("k")
    assert secret_free(
        info.value, info.value.__context__, repr(info.value), repr(info.value.__context__)
    )
    assert secret_free(repr(cache.client._native), cache.client._native.servers)
    assert secret_free(repr(cache.client.get_native_client()))
    by_option = RedisCache(dead_url, {"OPTIONS": {"PASSWORD": SECRET}})
    with pytest.raises(OUTAGE) as info:
        by_option.set("k", 1)
    assert secret_free(info.value, info.value.__context__)
    with override_settings(DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS=True):
        ignoring = RedisCache(url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True}})
    with caplog.at_level(logging.DEBUG):
        assert ignoring.get("k", "d") == "d"
    assert caplog.records
    assert secret_free(caplog.text, *(r.getMessage() for r in caplog.records))


def test_a_refused_password_is_never_echoed(own_server: Server) -> None:
    own_server.command("CONFIG", "SET", "requirepass", "the-right-one")
    cache = RedisCache(f"redis://:{SECRET}@127.0.0.1:{own_server.port}", {})
    with pytest.raises(OUTAGE) as info:
        cache.get("k")
    assert secret_free(info.value, info.value.__context__)
    assert "the-right-one" not in str(info.value)


@pytest.mark.parametrize(
    "location",
    [
        f"redis://app:{SECRET}@host:notaport/0",
        f"redis://app:{SECRET}@host/notadb",
        f"redis://app:{SECRET}@host/0?bogus=1",
        f"ftp://app:{SECRET}@host/0",
        # redis-py's form, before or after the parameter at fault
        f"redis://host:6379/0?password={SECRET}&db=abc",
        f"redis://host:6379/0?db=abc&password={SECRET}",
        f"redis://host:6379/0?password={SECRET}&bogus=1",
        f"unix:///tmp/r.sock?password={SECRET}&db=z",
    ],
)
def test_invalid_urls_never_show_the_password(location: str) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        RedisCache(location, {}).get("k")
    assert secret_free(info.value)
    from django_redis_rs.checks import check_caches

    caches = {"default": {"BACKEND": "django_redis_rs.cache.RedisCache", "LOCATION": location}}
    with override_settings(CACHES=caches):
        [message] = check_caches()
    assert message.id == "django_redis_rs.E001" and secret_free(message.msg, message.hint)
