"""Async methods honour what wraps the sync ones: while a sync method is overridden by a
subclass, patched on the class or replaced on the instance (as django-debug-toolbar, sentry-sdk
and django-prometheus do), its async twin calls it, in a thread, as Django's default does;
otherwise the native coroutine runs."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from django_redis_rs.cache import _TWINNED, RedisCache
from tests.apps import run
from tests.servers import Server

ROOT = Path(__file__).resolve().parent.parent
FROM_WRAPPER = object()


def test_every_async_method_with_a_sync_twin_is_covered() -> None:
    django_api = {"get", "set", "add", "touch", "delete", "delete_many", "has_key", "get_many"}
    django_api |= {"set_many", "incr", "decr", "incr_version", "decr_version", "clear"}
    assert django_api | {"get_or_set", "delete_pattern", "ttl", "expire", "sadd"} <= _TWINNED
    for name in _TWINNED:
        assert asyncio.iscoroutinefunction(getattr(RedisCache, "a" + name)), name


@pytest.mark.parametrize("name", sorted(_TWINNED))
def test_a_subclass_override_sees_the_async_call(server: Server, name: str) -> None:
    calls: list[tuple[Any, ...]] = []

    def override(self: RedisCache, *args: Any, **kwargs: Any) -> Any:
        calls.append((threading.current_thread().name, args))
        return FROM_WRAPPER

    wrapped = type("Wrapped", (RedisCache,), {name: override})(server.url, {})
    assert asyncio.run(getattr(wrapped, "a" + name)("k")) is FROM_WRAPPER
    assert len(calls) == 1 and calls[0][1] == ("k",)


@pytest.mark.parametrize("name", sorted(_TWINNED))
def test_an_instance_wrapper_sees_the_async_call(server: Server, name: str) -> None:
    cache = RedisCache(server.url, {})
    original = getattr(cache, name)
    calls: list[tuple[Any, ...]] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return FROM_WRAPPER

    setattr(cache, name, wrapper)
    assert asyncio.run(getattr(cache, "a" + name)("k")) is FROM_WRAPPER
    assert calls == [("k",)]
    delattr(cache, name)  # unwrapped again: the native path, which the wrapper does not see
    assert getattr(cache, name) == original
    asyncio.run(cache.aget("k"))
    assert calls == [("k",)]


def test_a_wrapper_that_calls_through_returns_the_real_values(make_cache: Any) -> None:
    cache = make_cache()
    seen: list[str] = []
    for name in ("get", "set", "get_many", "set_many", "get_or_set", "incr", "delete_many"):
        original = getattr(cache, name)

        def wrapper(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            seen.append(_name)
            return _original(*args, **kw)

        setattr(cache, name, wrapper)

    async def view() -> tuple[Any, ...]:
        await cache.aset("a", {"x": 1})
        await cache.aset_many({"b": [1], "n": 1})
        return (
            await cache.aget("a"),
            await cache.aget_many(["a", "b"]),
            await cache.aget_or_set("c", lambda: "made"),
            await cache.aincr("n", 2),
            await cache.adelete_many(["a", "b"]),
        )

    assert asyncio.run(view()) == ({"x": 1}, {"a": {"x": 1}, "b": [1]}, "made", 3, 2)
    # get_or_set is wrapped itself: its inner get/add are the sync view's too.
    assert seen[:4] == ["set", "set_many", "get", "get_many"]
    assert "get_or_set" in seen and seen[-2:] == ["incr", "delete_many"]


def test_a_class_patch_is_honoured(server: Server) -> None:
    """APM agents patch the backend class's methods."""
    patched = type("Patched", (RedisCache,), {})
    calls: list[Any] = []
    original = patched.get

    def traced(self: RedisCache, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(self, *args, **kwargs)

    cache = patched(server.url, {})
    assert asyncio.run(cache.aget("k", "d")) == "d" and calls == []
    patched.get = traced  # type: ignore[method-assign]
    assert asyncio.run(cache.aget("k", "d")) == "d" and calls == [("k", "d")]


def test_sentry_records_the_same_cache_spans_in_an_async_view(server: Server) -> None:
    pytest.importorskip("sentry_sdk")
    spans = run("sentry_spans", server.url)
    assert spans["sync"], "sentry-sdk recorded no cache span in the sync view"
    assert spans["async"] == spans["sync"]
