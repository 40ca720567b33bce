"""LOCATION and OPTIONS: every accepted form, and a clear ImproperlyConfigured for bad ones."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_redis_rs.cache import RedisCache
from tests.servers import Server


@pytest.mark.parametrize(
    ("location", "options", "message"),
    [
        ("localhost:6379", {}, "LOCATION"),
        ("http://h:1", {}, "unknown scheme"),
        ("redis://h/abc", {}, "database"),
        ("redis://h?bogus=1", {}, "bogus"),
        ("redis://h?db=x", {}, "db="),
        (123, {}, "LOCATION"),
        ("", {}, "LOCATION"),
        ("redis://h", {"SOCKET_TIMEOUT": "5"}, "SOCKET_TIMEOUT"),
        ("redis://h", {"SOCKET_CONNECT_TIMEOUT": -1}, "SOCKET_CONNECT_TIMEOUT"),
        ("redis://h", {"CONNECTION_POOL_KWARGS": {"max_connections": 0}}, "max_connections"),
        ("redis://h", {"CONNECTION_POOL_KWARGS": {"max_conections": 5}}, "max_conections"),
        ("redis://h", {"CONNECTION_POOL_KWARGS": {"timeout": "x"}}, "timeout"),
        ("redis://h", {"CLIENT_CLASS": "nowhere.Client"}, "CLIENT_CLASS"),
        ("redis://h", {"SERIALIZER": "nowhere.Serializer"}, "SERIALIZER"),
        ("redis://h", {"COMPRESSOR": "nowhere.Compressor"}, "COMPRESSOR"),
        ("redis://h", {"PICKLE_VERSION": "x"}, "PICKLE_VERSION"),
        ("redis://h", {"PICKLE_VERSION": 99}, "PICKLE_VERSION"),
        ("redis://h", {"SOCKET_TIMOUT": 1}, "SOCKET_TIMOUT"),
        ("redis://h", {"PASSWORD": 1234}, "PASSWORD"),
    ],
)
def test_bad_settings_raise_improperly_configured(location, options, message) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        RedisCache(location, {"OPTIONS": options}).get("k")


def test_errors_never_show_the_password() -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        RedisCache("redis://user:hunter2@h/abc", {}).get("k")
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


def test_django_redis_paths_are_aliases(make_cache) -> None:
    cache = make_cache(
        options={
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SERIALIZER": "django_redis.serializers.pickle.PickleSerializer",
            "COMPRESSOR": "django_redis.compressors.identity.IdentityCompressor",
            "PARSER_CLASS": "redis.connection._HiredisParser",
        }
    )
    cache.set("k", "v")
    assert cache.get("k") == "v"
    valkey = make_cache(options={"CLIENT_CLASS": "django_redis.client.valkey.DefaultValkeyClient"})
    assert valkey.get("k") == "v"


def test_aliases_do_not_import_django_redis() -> None:
    import subprocess
    import sys

    code = "\n".join(
        [
            "import os, sys, django",
            "os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.settings'",
            "django.setup()",
            "from django_redis_rs.cache import RedisCache",
            "options = {'CLIENT_CLASS': 'django_redis.client.DefaultClient'}",
            "RedisCache('redis://127.0.0.1:1', {'OPTIONS': options})",
            "print('django_redis' in sys.modules)",
        ]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_location_forms(server: Server, make_cache) -> None:
    port = server.port
    writer = make_cache(f"redis://127.0.0.1:{port}/2")
    writer.set("k", "db2")
    for location in (
        f"redis://127.0.0.1:{port}?db=2",
        f"valkey://127.0.0.1:{port}/2",
        [f"redis://127.0.0.1:{port}/2"],
        f"redis://127.0.0.1:{port}/2, redis://127.0.0.1:{port}/2",
        f"unix://{server.unix_socket}?db=2",
    ):
        assert make_cache(location).get("k") == "db2", location
    assert make_cache(f"redis://127.0.0.1:{port}/3").get("k") is None


def test_acl_username_and_password(server: Server, make_cache) -> None:
    server.command("ACL", "SETUSER", "app", "on", ">s3cret", "~*", "+@all")
    try:
        url = f"redis://127.0.0.1:{server.port}"
        by_url = make_cache(f"redis://app:s3cret@127.0.0.1:{server.port}")
        by_url.set("k", 1)
        by_options = make_cache(url, {"USERNAME": "app", "PASSWORD": "s3cret"})
        assert by_options.get("k") == 1
        wrong = make_cache(url, {"USERNAME": "app", "PASSWORD": "wrong"})
        from tests.helpers import OUTAGE

        with pytest.raises(OUTAGE) as info:
            wrong.get("k")
        assert "wrong" not in str(info.value) and "wrong" not in str(info.value.__context__)
    finally:
        server.command("ACL", "DELUSER", "app")


def test_custom_serializer_class_plugs_in(make_cache, server: Server) -> None:
    cache = make_cache(options={"SERIALIZER": "tests.helpers.ReprSerializer"})
    cache.set("k", {"a": 1})
    assert server.command("GET", ":1:k").endswith(b"{'a': 1}\r\n")
    assert cache.get("k") == {"a": 1}
    cache.set("n", 5)  # integers stay integers whatever the serializer
    assert server.command("GET", ":1:n") == b"$1\r\n5\r\n"


def test_custom_compressor_class_plugs_in(make_cache, server: Server) -> None:
    plain = make_cache()
    plain.set("old", "written before compression")
    cache = make_cache(options={"COMPRESSOR": "tests.helpers.ReverseCompressor"})
    cache.set("k", "value")
    assert cache.get("k") == "value"
    assert cache.get("old") == "written before compression"


@pytest.mark.parametrize("bad", ["x", 99, None])
def test_pickle_version_is_refused_in_django_redis_words(bad: object) -> None:
    """django-redis's own suite matches these messages."""
    from django_redis.serializers.pickle import PickleSerializer as Theirs

    with pytest.raises(ImproperlyConfigured) as theirs:
        Theirs(options={"PICKLE_VERSION": bad})
    refused = RedisCache("redis://h", {"OPTIONS": {"PICKLE_VERSION": bad}}).configuration_error
    assert str(refused) == str(theirs.value)
