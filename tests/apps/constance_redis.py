"""django-constance's Redis backend, connected with ``get_redis_connection`` (called with no
arguments, as constance calls its connection class): values are stored and read back."""

from tests.apps import configure, report

configure(
    ["constance"],
    CONSTANCE_BACKEND="constance.backends.redisd.RedisBackend",
    CONSTANCE_REDIS_CONNECTION_CLASS="django_redis_rs.get_redis_connection",
    CONSTANCE_CONFIG={"BANNER": ("hello", "The banner text"), "LIMIT": (10, "A limit")},
)

from constance import config  # noqa: E402
from django.core.cache import cache  # noqa: E402

cache.clear()
assert config.BANNER == "hello"  # the default, nothing stored yet
config.BANNER = "maintenance at 6"
config.LIMIT = 25
assert (config.BANNER, config.LIMIT) == ("maintenance at 6", 25)
report(banner=config.BANNER, limit=config.LIMIT)
