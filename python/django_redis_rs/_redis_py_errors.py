"""The exceptions that code written for django-redis catches as redis-py's, as subclasses of
redis-py's classes. ``django_redis_rs.exceptions`` loads this module when one of them is first
needed, so that the cache path does not import redis-py."""

from __future__ import annotations

import builtins

import redis.exceptions as redis_errors


class ResponseError(redis_errors.ResponseError):
    """The server answered a command with an error (``WRONGTYPE ...``)."""

    __module__ = "django_redis_rs.exceptions"


class ConnectionError(redis_errors.ConnectionError, builtins.ConnectionError):
    """A server could not be reached or the connection broke: what the cache API raises (as
    django-redis lets redis-py's out), and the ``__cause__`` of ``ConnectionInterrupted``."""

    __module__ = "django_redis_rs.exceptions"


class TimeoutError(redis_errors.TimeoutError, builtins.TimeoutError):
    """A server did not answer within ``SOCKET_TIMEOUT`` (or connect within
    ``SOCKET_CONNECT_TIMEOUT``)."""

    __module__ = "django_redis_rs.exceptions"


class LockError(redis_errors.LockError):
    """A lock could not be acquired, released or extended."""

    __module__ = "django_redis_rs.exceptions"


class LockNotOwnedError(LockError, redis_errors.LockNotOwnedError):
    """The lock is held by someone else (or expired) when releasing or extending it."""

    __module__ = "django_redis_rs.exceptions"
