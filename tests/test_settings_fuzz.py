"""No setting, however extreme, gets past configuration to crash the native module: every
numeric option and URL parameter takes any value, and the cache either refuses it with
ImproperlyConfigured naming the option, or works (or fails as an outage would). A panic in Rust
would reach Python as pyo3's PanicException, a BaseException that nothing here catches."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_redis_rs.cache import RedisCache
from django_redis_rs.exceptions import CompressorError, SerializerError
from tests.helpers import OUTAGE
from tests.servers import Server

ZLIB = "django_redis_rs.compressors.zlib.ZlibCompressor"
ZSTD = "django_redis_rs.compressors.zstd.ZStdCompressor"

EXTREMES = [0, -1, 1, 1e-12, 1e-9, 0.5, 63, 64, 1e9, 1e30, 1e300, 2**31, 2**63, 2**64, 2**70]
NUMBERS = st.one_of(
    st.sampled_from(EXTREMES + [-x for x in EXTREMES] + [float("nan"), float("inf"), True]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)


def options_with(name: str, value: Any) -> dict[str, Any]:
    """OPTIONS (and the URL query) that put `value` where `name` says."""
    pool, breaker, local = "CONNECTION_POOL_KWARGS", "CIRCUIT_BREAKER", "CLIENT_SIDE_CACHE"
    where: dict[str, dict[str, Any]] = {
        "SOCKET_TIMEOUT": {"SOCKET_TIMEOUT": value},
        "SOCKET_CONNECT_TIMEOUT": {"SOCKET_CONNECT_TIMEOUT": value},
        "max_connections": {pool: {"max_connections": value}},
        "pool timeout": {pool: {"timeout": value}},
        "health_check_interval": {pool: {"health_check_interval": value}},
        "zlib COMPRESSOR_LEVEL": {"COMPRESSOR": ZLIB, "COMPRESSOR_LEVEL": value},
        "zstd COMPRESSOR_LEVEL": {"COMPRESSOR": ZSTD, "COMPRESSOR_LEVEL": value},
        "COMPRESSOR_MIN_LENGTH": {"COMPRESSOR": ZLIB, "COMPRESSOR_MIN_LENGTH": value},
        "zlib COMPRESSOR_MAX_DECOMPRESSED_SIZE": {
            "COMPRESSOR": ZLIB,
            "COMPRESSOR_MAX_DECOMPRESSED_SIZE": value,
        },
        "zstd COMPRESSOR_MAX_DECOMPRESSED_SIZE": {
            "COMPRESSOR": ZSTD,
            "COMPRESSOR_MAX_DECOMPRESSED_SIZE": value,
        },
        "PICKLE_VERSION": {"PICKLE_VERSION": value},
        "SINGLE_FLIGHT_TIMEOUT": {"SINGLE_FLIGHT_TIMEOUT": value},
        "breaker failures": {breaker: {"failures": value}},
        "breaker reset_timeout": {breaker: {"reset_timeout": value}},
        "local max_entries": {local: {"max_entries": value}},
        "local max_bytes": {local: {"max_bytes": value}},
        "local ttl": {local: {"ttl": value}},
    }
    return where[name]


OPTION_NAMES = [
    "SOCKET_TIMEOUT",
    "SOCKET_CONNECT_TIMEOUT",
    "max_connections",
    "pool timeout",
    "health_check_interval",
    "zlib COMPRESSOR_LEVEL",
    "zstd COMPRESSOR_LEVEL",
    "COMPRESSOR_MIN_LENGTH",
    "zlib COMPRESSOR_MAX_DECOMPRESSED_SIZE",
    "zstd COMPRESSOR_MAX_DECOMPRESSED_SIZE",
    "PICKLE_VERSION",
    "SINGLE_FLIGHT_TIMEOUT",
    "breaker failures",
    "breaker reset_timeout",
    "local max_entries",
    "local max_bytes",
    "local ttl",
]
URL_PARAMETERS = [
    "socket_timeout",
    "socket_connect_timeout",
    "max_connections",
    "health_check_interval",
    "db",
]


def exercise(cache: RedisCache) -> None:
    """Refused at configuration, or a round trip that works or fails as an outage does."""
    if cache.configuration_error is not None:
        return
    try:
        cache.set("fuzz", "x" * 300)
        assert cache.get("fuzz") in ("x" * 300, None)
        cache.get_or_set("fuzz2", lambda: 1)
    except (*OUTAGE, ImproperlyConfigured, CompressorError, SerializerError):
        pass  # refused, an outage (a 1 ns timeout), or a value inflating past the limit
    finally:
        cache.client._native.close()


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(OPTION_NAMES), value=NUMBERS)
def test_options(server: Server, name: str, value: Any) -> None:
    exercise(RedisCache(f"{server.url}/9", {"OPTIONS": options_with(name, value)}))


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(URL_PARAMETERS), value=NUMBERS)
def test_url_parameters(server: Server, name: str, value: Any) -> None:
    exercise(RedisCache(f"{server.url}/9?{name}={value!r}", {}))


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"SOCKET_TIMEOUT": 1e30}, "SOCKET_TIMEOUT"),
        ({"SOCKET_TIMEOUT": 1e-12}, "SOCKET_TIMEOUT"),
        ({"CONNECTION_POOL_KWARGS": {"timeout": 1e300}}, "CONNECTION_POOL_KWARGS['timeout']"),
        ({"COMPRESSOR": ZLIB, "COMPRESSOR_LEVEL": 2**40}, "COMPRESSOR_LEVEL"),
        ({"CLIENT_SIDE_CACHE": {"max_bytes": 2**64}}, "CLIENT_SIDE_CACHE['max_bytes']"),
    ],
)
def test_out_of_range_values_name_the_option(options: dict[str, Any], option: str) -> None:
    refused = RedisCache("redis://127.0.0.1:1", {"OPTIONS": options}).configuration_error
    assert refused is not None and option in str(refused)


def test_a_tiny_decompression_limit_refuses_instead_of_crashing(server: Server) -> None:
    options = {"COMPRESSOR": ZLIB, "COMPRESSOR_MAX_DECOMPRESSED_SIZE": 10}
    cache = RedisCache(f"{server.url}/9", {"OPTIONS": options})
    cache.set("big", "y" * 1000)
    with pytest.raises((CompressorError, SerializerError)):
        cache.get("big")
