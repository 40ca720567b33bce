"""django-constance's Redis backend, connected with ``get_redis_connection`` (called with no
arguments, as constance calls its connection class): values are stored and read back. Its async
access (``await config.X``) takes redis-py's asyncio client on ``CONSTANCE_REDIS_CONNECTION``, as
with django-redis (which has no async client either): both see the same values."""

import asyncio
import os

from tests.apps import configure, report

configure(
    ["constance"],
    CONSTANCE_BACKEND="constance.backends.redisd.RedisBackend",
    CONSTANCE_REDIS_CONNECTION_CLASS="django_redis_rs.get_redis_connection",
    CONSTANCE_REDIS_CONNECTION=os.environ["REDIS_URL"],
    CONSTANCE_CONFIG={"BANNER": ("hello", "The banner text"), "LIMIT": (10, "A limit")},
)

from constance import config  # noqa: E402
from django.core.cache import cache  # noqa: E402

cache.clear()
assert config.BANNER == "hello"  # the default, nothing stored yet
config.BANNER = "maintenance at 6"
config.LIMIT = 25
assert (config.BANNER, config.LIMIT) == ("maintenance at 6", 25)


async def async_view() -> object:
    banner = await config.BANNER  # written through our connection
    await config.aset("LIMIT", 30)
    return banner


assert asyncio.run(async_view()) == "maintenance at 6"
assert config.LIMIT == 30  # written by the async client, read through ours
report(banner=config.BANNER, limit=config.LIMIT)
