"""sentry-sdk's cache spans (DjangoIntegration(cache_spans=True), an in-memory transport) for
the same cache calls in a sync view and in an async view: the same spans."""

from __future__ import annotations

import asyncio
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.transport import Transport

from tests.apps import configure, report

envelopes: list[Any] = []


class Memory(Transport):
    def capture_envelope(self, envelope: Any) -> None:
        envelopes.append(envelope)


sentry_sdk.init(
    dsn="http://public@127.0.0.1:9/1",
    transport=Memory,
    traces_sample_rate=1.0,
    default_integrations=False,
    integrations=[DjangoIntegration(cache_spans=True)],
)
configure([])

from django.core.cache import caches  # noqa: E402


def sync_view() -> None:
    cache = caches["default"]
    cache.set("k", {"a": 1})
    cache.get("k")
    cache.get("missing")
    cache.get_many(["k", "missing"])
    cache.set_many({"m": [1, 2]})


async def async_view() -> None:
    cache = caches["default"]
    await cache.aset("k", {"a": 1})
    await cache.aget("k")
    await cache.aget("missing")
    await cache.aget_many(["k", "missing"])
    await cache.aset_many({"m": [1, 2]})


def cache_spans(view: Any) -> list[list[Any]]:
    envelopes.clear()
    with sentry_sdk.start_transaction(name="view", op="http.server"):
        view()
    sentry_sdk.flush()
    events = [e.get_transaction_event() for e in envelopes]
    spans = next(event for event in events if event)["spans"]
    # All that sentry records of each span but its ids and times; the thread too, which
    # tells the native async path (the loop's thread, the main one here) from Django's
    # default (the sync method in a worker thread).
    recorded = (
        "cache.hit",
        "cache.key",
        "cache.item_size",
        "network.peer.address",
        "network.peer.port",
        "thread.name",
    )
    return [
        [span["op"], span["description"], span["origin"]]
        + [span["data"].get(field) for field in recorded]
        for span in spans
        if span["op"].startswith("cache")
    ]


report(**{"sync": cache_spans(sync_view), "async": cache_spans(lambda: asyncio.run(async_view()))})
