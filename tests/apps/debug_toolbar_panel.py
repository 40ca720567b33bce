"""django-debug-toolbar's CachePanel, instrumented as for a request: it records the same calls
for an async view as for the same sync view."""

import asyncio

from tests.apps import configure, report

configure(
    ["django.contrib.staticfiles", "debug_toolbar"],
    ROOT_URLCONF=__name__,
    STATIC_URL="/static/",
    DEBUG_TOOLBAR_CONFIG={"SHOW_TOOLBAR_CALLBACK": lambda request: True},
)

from debug_toolbar.toolbar import DebugToolbar  # noqa: E402
from django.core.cache import caches  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

urlpatterns: list = []


def sync_view() -> None:
    cache = caches["default"]
    cache.set("k", {"a": 1})
    cache.get("k")
    cache.get_many(["k", "missing"])
    cache.get_or_set("made", lambda: 1)
    cache.incr("made")
    cache.delete("k")


async def async_view() -> None:
    cache = caches["default"]
    await cache.aset("k", {"a": 1})
    await cache.aget("k")
    await cache.aget_many(["k", "missing"])
    await cache.aget_or_set("made", lambda: 1)
    await cache.aincr("made")
    await cache.adelete("k")


def recorded(run) -> list:  # type: ignore[no-untyped-def]
    caches["default"].clear()
    toolbar = DebugToolbar(RequestFactory().get("/"), lambda request: HttpResponse())
    panel = toolbar.get_panel_by_id("CachePanel")
    panel.enable_instrumentation()
    try:
        run()
    finally:
        panel.disable_instrumentation()
    return [call["name"] for call in panel.calls]


sync_calls = recorded(sync_view)
async_calls = recorded(lambda: asyncio.run(async_view()))
assert sync_calls, "the panel recorded nothing"
assert async_calls == sync_calls, (sync_calls, async_calls)
report(sync=sync_calls, async_=async_calls)
