"""Every native connection tells the server who it is (CLIENT SETINFO LIB-NAME/LIB-VER, in the
handshake's one write), as redis-py and Django's own backend do; a server that predates the
command (Redis before 7.2) refuses it, which is ignored."""

from __future__ import annotations

import asyncio
from typing import Any

from django.test import override_settings

from django_redis_rs import _native, get_redis_connection
from tests.servers import Server


def client_info(reply: Any) -> dict[str, str]:
    text = reply.decode() if isinstance(reply, bytes) else reply
    return dict(field.split("=", 1) for field in text.split() if "=" in field)


def test_connections_name_the_library(make_cache: Any, server: Server) -> None:
    cache = make_cache(location=f"{server.url}/2")  # SELECT in the same handshake
    native = cache.client._native
    info = client_info(native.execute(False, ("CLIENT", "INFO")))

    async def ask() -> Any:
        return await native.aexecute(False, ("CLIENT", "INFO"))

    ainfo = client_info(asyncio.run(ask()))
    cache.set("k", 1)
    assert cache.get("k") == 1  # the handshake went through either way
    if server.kind == "valkey":  # Valkey 9 knows CLIENT SETINFO
        for seen in (info, ainfo):
            assert seen["lib-name"] == "django-redis-rs"
            assert seen["lib-ver"] == _native.__version__
            assert seen["db"] == "2"
    else:  # Redis 7.0 refuses it: ignored, and the connection is as good
        assert info.get("lib-name", "") == "" and info["db"] == "2"
        assert ainfo.get("lib-name", "") == ""


def test_redis_py_keeps_its_own_name(server: Server) -> None:
    caches = {"default": {"BACKEND": "django_redis_rs.cache.RedisCache", "LOCATION": server.url}}
    with override_settings(CACHES=caches):
        info = client_info(get_redis_connection().execute_command("CLIENT", "INFO"))
    if server.kind == "valkey":
        assert info["lib-name"].startswith("redis-py")
