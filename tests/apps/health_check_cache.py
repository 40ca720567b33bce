"""django-health-check's cache check (it calls ``aset``/``aget``) passes with the server up
and reports the outage, as a check result, with it down."""

import asyncio
import os

from tests.apps import configure, report

configure(
    ["health_check"],
    CACHES={
        "default": {
            "BACKEND": "django_redis_rs.cache.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        },
        "down": {
            "BACKEND": "django_redis_rs.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1},
        },
    },
)

from health_check.checks import Cache  # noqa: E402
from health_check.exceptions import HealthCheckException  # noqa: E402


async def outcome(alias: str) -> str:
    try:
        await Cache(alias=alias).run()
    except HealthCheckException as failed:
        return type(failed).__name__
    return "ok"


up, down = asyncio.run(outcome("default")), asyncio.run(outcome("down"))
assert (up, down) == ("ok", "ServiceReturnedUnexpectedResult"), (up, down)
report(up=up, down=down)
