"""`manage.py check` reports misconfigured caches with clear messages and stable ids."""

from __future__ import annotations

import asyncio
import pickle
from io import StringIO
from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_redis_rs.checks import check_caches

BACKEND = "django_redis_rs.cache.RedisCache"


def messages(location: Any = "redis://127.0.0.1:1", **params: Any) -> list[tuple[str, str]]:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "ours": {"BACKEND": BACKEND, "LOCATION": location, **params},
    }
    with override_settings(CACHES=caches):
        return [(m.id or "", m.msg) for m in check_caches()]


def ids(location: Any = "redis://127.0.0.1:1", **params: Any) -> list[str]:
    return [id_ for id_, _ in messages(location, **params)]


def test_a_good_configuration_passes() -> None:
    assert messages() == []
    options = {
        "CLIENT_CLASS": "django_redis.client.ShardClient",  # django-redis paths are aliases
        "SERIALIZER": "django_redis_rs.serializers.json.JSONSerializer",
        "COMPRESSOR": "django_redis_rs.compressors.zstd.ZStdCompressor",
        "SOCKET_TIMEOUT": 0.5,
        "CONNECTION_POOL_KWARGS": {"max_connections": 10, "health_check_interval": 30},
    }
    assert messages(["redis://127.0.0.1:1", "redis://127.0.0.1:2"], OPTIONS=options) == []


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("http://127.0.0.1", "unknown scheme"),
        ("redis://host:port", "invalid port"),
        ("redis://host/db", "database"),
        ("", "names no server"),
    ],
)
def test_bad_locations(location: str, expected: str) -> None:
    ((id_, msg),) = messages(location)
    assert id_ == "django_redis_rs.E001"
    assert expected in msg and "CACHES['ours']" in msg


@pytest.mark.parametrize("option", ["CLIENT_CLASS", "SERIALIZER", "COMPRESSOR"])
def test_unknown_classes(option: str) -> None:
    ((id_, msg),) = messages(OPTIONS={option: "myproject.nope.Thing"})
    assert id_ == "django_redis_rs.E002"
    assert option in msg and "myproject.nope.Thing" in msg


def test_unknown_options_get_a_suggestion() -> None:
    caches = {
        "ours": {"BACKEND": BACKEND, "LOCATION": "redis://h", "OPTIONS": {"SOCKET_TIMOUT": 1}}
    }
    with override_settings(CACHES=caches):
        (message,) = check_caches()
    assert message.id == "django_redis_rs.E003"
    assert "SOCKET_TIMOUT" in (message.hint or "")


@pytest.mark.parametrize(
    "params",
    [
        {"TIMEOUT": "five minutes"},
        {"OPTIONS": {"SOCKET_TIMEOUT": "abc"}},
        {"OPTIONS": {"SOCKET_CONNECT_TIMEOUT": -1}},
        {"OPTIONS": {"CONNECTION_POOL_KWARGS": {"timeout": "x"}}},
    ],
)
def test_bad_timeouts(params: dict[str, Any]) -> None:
    assert ids(**params) == ["django_redis_rs.E004"]


def test_other_bad_values_and_warnings() -> None:
    assert ids(OPTIONS={"CONNECTION_POOL_KWARGS": {"max_connections": 0}}) == [
        "django_redis_rs.E005"
    ]
    assert ids(TIMEOUT=0) == ["django_redis_rs.W001"]
    # Accepted for django-redis's sake, or configuring only get_redis_connection()'s redis-py
    # client: one warning names all that the cache ignores, OPTIONS and URL parameters alike.
    assert ids(OPTIONS={"REPLICA_READ_ONLY": False}) == ["django_redis_rs.W002"]
    options = {
        "PARSER_CLASS": "redis.connection._HiredisParser",
        "CONNECTION_POOL_KWARGS": {"retry_on_timeout": True},
    }
    ((id_, msg),) = messages("redis://127.0.0.1:1?decode_responses=1&protocol=3", OPTIONS=options)
    assert id_ == "django_redis_rs.W002"
    for name in ("PARSER_CLASS", "['retry_on_timeout']", "?decode_responses", "?protocol"):
        assert name in msg


def test_other_backends_are_left_alone() -> None:
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "TIMEOUT": 0}}
    with override_settings(CACHES=caches):
        assert check_caches() == []


def test_a_refused_cache_raises_on_use_not_on_close() -> None:
    from django_redis_rs.cache import RedisCache

    cache = RedisCache("redis://h:port", {})
    assert "invalid port" in str(cache.configuration_error)
    cache.close()  # Django closes every cache after each request
    with pytest.raises(ImproperlyConfigured, match="invalid port"):
        cache.get("k")
    with pytest.raises(ImproperlyConfigured, match="invalid port"):
        asyncio.run(cache.aset("k", 1))


def test_manage_py_check_runs_them() -> None:
    """Registered by the app config when "django_redis_rs" is in INSTALLED_APPS."""
    assert check_caches in checks.registry.registry.registered_checks
    caches = {"default": {"BACKEND": BACKEND, "LOCATION": "redis://h:port"}}
    with override_settings(CACHES=caches), pytest.raises(SystemCheckError, match="E001"):
        call_command("check", stdout=StringIO(), stderr=StringIO())
    with override_settings(CACHES={"default": {"BACKEND": BACKEND, "LOCATION": "redis://h"}}):
        call_command("check", stdout=StringIO(), stderr=StringIO())


POOL = "CONNECTION_POOL_KWARGS"


@pytest.mark.parametrize(
    ("options", "location", "option", "kind"),
    [
        ({}, "redis://h:99999", "LOCATION", "location"),
        ({"SOCKET_TIMOUT": 1}, "redis://h", "OPTIONS", "unknown"),
        ({"SOCKET_TIMEOUT": "soon"}, "redis://h", "SOCKET_TIMEOUT", "timeout"),
        ({"SERIALIZER": "no.such.Serializer"}, "redis://h", "SERIALIZER", "import"),
        ({POOL: {"max_connections": 0}}, "redis://h", POOL, "value"),
        ({POOL: {"ssl_ca_certs": "/no.pem"}}, "rediss://h", "ssl_ca_certs", "value"),
    ],
)  # fmt: skip
def test_a_refused_setting_carries_its_option_and_kind(
    options: dict, location: str, option: str, kind: str
) -> None:
    from django_redis_rs.cache import RedisCache
    from django_redis_rs.exceptions import SettingError

    refused = RedisCache(location, {"OPTIONS": options}).configuration_error
    assert isinstance(refused, SettingError)
    assert (refused.option, refused.kind) == (option, kind), refused
    # Celery and multiprocessing pickle exceptions: every field comes back.
    copy = pickle.loads(pickle.dumps(refused))
    fields = ("option", "kind", "names", "key", "summary")
    assert (type(copy), str(copy)) == (SettingError, str(refused))
    assert [getattr(copy, f) for f in fields] == [getattr(refused, f) for f in fields]


def test_a_refusal_names_the_key_and_summarises_itself_in_fields() -> None:
    """The native module raises SettingError itself, with the key inside the option at fault
    and, for unknown names, the headline without the list of supported ones: nothing is read
    back from the message."""
    from django_redis_rs.cache import RedisCache

    pool = RedisCache("redis://h", {"OPTIONS": {POOL: {"max_connections": 0}}})
    refused = pool.configuration_error
    assert (refused.option, refused.key) == (POOL, "max_connections")
    unknown = RedisCache("redis://h", {"OPTIONS": {"SOCKET_TIMOUT": 1}}).configuration_error
    assert unknown.key is None and unknown.names == ("SOCKET_TIMOUT",)
    assert unknown.summary == 'Unknown cache OPTIONS ["SOCKET_TIMOUT"]'
    assert str(unknown).startswith(unknown.summary + "; supported: [")
    level = RedisCache(
        "redis://h",
        {
            "OPTIONS": {
                "COMPRESSOR": "django_redis.compressors.zlib.ZlibCompressor",
                "COMPRESSOR_LEVEL": 42,
            }
        },
    ).configuration_error
    assert (level.option, level.kind) == ("COMPRESSOR_LEVEL", "value"), level
