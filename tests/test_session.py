"""The session engine: one Redis key per session, Django's encoding stored once, TTL = expiry,
create never overwrites (SET NX), save never resurrects (SET XX). Django's own session suite
runs in test_django_suite.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.backends.base import UpdateError
from django.test import override_settings

from django_redis_rs.session import SessionStore
from tests.servers import Server


def sessions_on(server: Server, **params: Any) -> Any:
    """Settings for sessions in db 3 of `server` (emptied), with the cache's extra `params`."""
    server.command("FLUSHALL")
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": {
            "BACKEND": "django_redis_rs.cache.RedisCache",
            "LOCATION": f"{server.url}/3",
            **params,
        },
    }
    return override_settings(CACHES=caches, SESSION_CACHE_ALIAS="sessions")


@pytest.fixture
def sessions(server: Server) -> Iterator[type[SessionStore]]:
    with sessions_on(server, KEY_PREFIX="site"):
        yield SessionStore


def redis_key(session: SessionStore) -> str:
    return f"site:1:django_redis_rs.session{session.session_key}"


def test_stored_once_with_the_session_expiry_as_ttl(sessions, server: Server) -> None:
    store = sessions()
    store["user"] = 42
    store.set_expiry(600)
    store.save()
    value = _get(server, 3, redis_key(store))
    # Django's signed encoding, as is: no pickle around it.
    assert not value.startswith(b"\x80")
    assert store.decode(value.decode()) == {"user": 42, "_session_expiry": 600}
    ttl = int(_cmd(server, 3, "TTL", redis_key(store))[1:-2])
    assert 590 < ttl <= 600
    assert sessions(store.session_key)["user"] == 42


def _cmd(server: Server, db: int, *args: str) -> bytes:
    """One command on database `db` (a plain socket, independent of the code under test)."""
    import socket
    import time

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        for command in (("SELECT", str(db)), args):
            parts = "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in command)
            s.sendall(f"*{len(command)}\r\n{parts}".encode())
            time.sleep(0.02)
        return s.recv(1 << 16).split(b"\r\n", 1)[1]


def _get(server: Server, db: int, key: str) -> bytes:
    reply = _cmd(server, db, "GET", key)
    return reply.split(b"\r\n")[1]


def test_create_never_overwrites_an_existing_session(sessions, monkeypatch) -> None:
    first = sessions()
    first["owner"] = "first"
    first.save()
    taken = first.session_key
    fresh = iter([taken, "x" * 32])  # the first candidate key collides
    monkeypatch.setattr(SessionStore, "_get_new_session_key", lambda self: next(fresh))
    second = sessions()
    second.create()
    assert second.session_key == "x" * 32
    assert sessions(taken)["owner"] == "first"


def test_save_never_resurrects_a_deleted_session(sessions) -> None:
    store = sessions()
    store["a"] = 1
    store.save()
    sessions(store.session_key).delete()
    store["a"] = 2
    with pytest.raises(UpdateError):
        store.save()
    assert sessions().exists(store.session_key) is False


def test_expired_sessions_are_gone(sessions) -> None:
    store = sessions()
    store["a"] = 1
    store.set_expiry(-timedelta(seconds=5))
    store.save()
    assert sessions().exists(store.session_key) is False


def test_middleware_round_trip(sessions) -> None:
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.http import HttpResponse
    from django.test import RequestFactory

    def view(request):
        request.session["n"] = request.session.get("n", 0) + 1
        return HttpResponse(str(request.session["n"]))

    with override_settings(SESSION_ENGINE="django_redis_rs.session"):
        middleware = SessionMiddleware(view)
        first = middleware(RequestFactory().get("/"))
        cookie = first.cookies["sessionid"].value
        request = RequestFactory().get("/")
        request.COOKIES["sessionid"] = cookie
        second = middleware(request)
    assert (first.content, second.content) == (b"1", b"2")


def test_needs_a_django_redis_rs_cache() -> None:
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(CACHES=caches, SESSION_CACHE_ALIAS="default"):
        with pytest.raises(TypeError, match="SESSION_CACHE_ALIAS"):
            SessionStore()


def test_an_outage_raises_redis_pys_connection_error(dead_url: str) -> None:
    """As Django's cache sessions on django-redis do."""
    import asyncio

    import django
    import redis.exceptions

    caches = {"sessions": {"BACKEND": "django_redis_rs.cache.RedisCache", "LOCATION": dead_url}}
    with override_settings(CACHES=caches, SESSION_CACHE_ALIAS="sessions"):
        with pytest.raises(redis.exceptions.ConnectionError):
            SessionStore("a" * 32).load()
        with pytest.raises(redis.exceptions.ConnectionError):
            SessionStore("a" * 32).exists("a" * 32)
        if django.VERSION >= (5, 0):  # Django's async session API
            with pytest.raises(redis.exceptions.ConnectionError):
                asyncio.run(SessionStore().acreate())
