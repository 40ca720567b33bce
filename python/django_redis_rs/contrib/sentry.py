"""sentry-sdk's Django cache spans (``DjangoIntegration(cache_spans=True)``) for the native async
methods, without the thread hop.

sentry-sdk replaces ``get``, ``set``, ``get_many`` and ``set_many`` on each cache instance with
a wrapper that opens a span around the call. Our native ``aget`` & co. must not skip it, and
running the wrapper in a thread (Django's default async path) costs more than half of what
native async saves. So, when the sync method is sentry's own wrapper around our own method,
the async twin opens the span sentry would have opened (same op, name, origin and data) around
the native coroutine. Anything else — another tool's wrapper, sentry's span-streaming mode, a
sentry release whose wrapper looks different — takes the generic path (the wrapper, in a
thread). Imported only once a sentry wrapper is seen; what it finds is kept per instance and
wrapper.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import sentry_sdk
from sentry_sdk.consts import OP, SPANDATA
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.redis.utils import _get_safe_key, _key_as_string
from sentry_sdk.tracing_utils import has_span_streaming_enabled
from sentry_sdk.utils import capture_internal_exceptions

Native = Callable[[], Awaitable[Any]]
Around = Callable[[Native, tuple[Any, ...], dict[str, Any]], Awaitable[Any]]


def around_native(cache: Any, name: str, wrapper: Any, ours: Callable[..., Any]) -> Around | None:
    """For sentry's wrapper of `cache`'s own method `ours`: what runs the native coroutine in
    sentry's span. None for anything else."""
    code = getattr(wrapper, "__code__", None)
    if code is None or code.co_name != "sentry_method" or "sentry_sdk" not in code.co_filename:
        return None
    try:
        captured = inspect.getclosurevars(wrapper).nonlocals
    except (TypeError, ValueError):
        return None
    original = captured.get("original_method")
    if (
        getattr(original, "__func__", None) is not ours
        or getattr(original, "__self__", None) is not cache
    ):
        return None
    if captured.get("method_name") != name:
        return None
    if has_span_streaming_enabled(sentry_sdk.get_client().options):
        return None
    address, port = captured.get("address"), captured.get("port")

    async def traced(native: Native, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        client = sentry_sdk.get_client()
        if client.get_integration(DjangoIntegration) is None:
            return await native()
        key = _get_safe_key(name, args, kwargs)
        with sentry_sdk.start_span(
            op=OP.CACHE_PUT if name.startswith("set") else OP.CACHE_GET,
            name=_key_as_string(key),
            origin=DjangoIntegration.origin,
        ) as span:
            value = await native()
            with capture_internal_exceptions():
                for field, datum in (
                    (SPANDATA.NETWORK_PEER_ADDRESS, address),
                    (SPANDATA.NETWORK_PEER_PORT, port),
                    (SPANDATA.CACHE_KEY, key),
                ):
                    if datum is not None:
                        span.set_data(field, datum)
                hit, size = _outcome(name, args, kwargs, value)
                if hit is not None:
                    span.set_data(SPANDATA.CACHE_HIT, hit)
                if size is not None:
                    span.set_data(SPANDATA.CACHE_ITEM_SIZE, size)
            return value

    return traced


def _outcome(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], value: Any
) -> tuple[bool | None, int | None]:
    """What sentry records of a call: whether a read hit, and the size of what was read or
    written (the length of its ``str``)."""
    if name == "get_many":
        hit = value != {}
        return hit, len(str(value)) if hit else None
    if name == "get":
        default = args[1] if len(args) >= 2 else kwargs.get("default")
        hit = value != default
        return hit, len(str(value)) if hit else None
    if args:
        return None, len(str(args[1] if len(args) >= 2 else args[0]))
    return None, None
