"""django-defender with ``DEFENDER_REDIS_NAME``: it finds the raw connection through the cache
(``get_master_client()``) and locks an IP out after the failure limit."""

from tests.apps import configure, report

configure(
    ["defender"],
    DEFENDER_REDIS_NAME="default",
    DEFENDER_LOGIN_FAILURE_LIMIT=3,
    DEFENDER_STORE_ACCESS_ATTEMPTS=False,
)

import redis  # noqa: E402
from defender import utils  # noqa: E402
from defender.connection import get_redis_connection  # noqa: E402
from django.test import RequestFactory  # noqa: E402

connection = get_redis_connection()
assert isinstance(connection, redis.Redis), type(connection)
connection.flushdb()
request = RequestFactory().post("/login/", {"username": "mallory"}, REMOTE_ADDR="10.0.0.9")
allowed = [utils.check_request(request, login_unsuccessful=True) for _ in range(4)]
assert utils.is_already_locked(request), allowed
assert allowed[-1] is False, allowed
report(connection=type(connection).__name__, allowed=allowed)
