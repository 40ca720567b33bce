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


# redis-py's finer classes, raised where redis-py raises them: the native client reads the same
# reply texts (src/errors.rs, `Refusal::parse`) and names the class (`Refusal::python_class`).


class AuthenticationError(ConnectionError, redis_errors.AuthenticationError):
    """The server refused the password or the user (``WRONGPASS``, ``NOAUTH``)."""

    __module__ = "django_redis_rs.exceptions"


class BusyLoadingError(ConnectionError, redis_errors.BusyLoadingError):
    """The server is loading its dataset (``LOADING``): just restarted, or a replica syncing."""

    __module__ = "django_redis_rs.exceptions"


class OutOfMemoryError(ResponseError, redis_errors.OutOfMemoryError):
    """The server is at ``maxmemory`` and refuses writes (``OOM``, policy ``noeviction``)."""

    __module__ = "django_redis_rs.exceptions"


class NoPermissionError(ResponseError, redis_errors.NoPermissionError):
    """The ACL user may not run the command or touch the key (``NOPERM``)."""

    __module__ = "django_redis_rs.exceptions"


class ReadOnlyError(ResponseError, redis_errors.ReadOnlyError):
    """A write reached a read-only replica (``READONLY``)."""

    __module__ = "django_redis_rs.exceptions"


class NoScriptError(ResponseError, redis_errors.NoScriptError):
    """``EVALSHA`` of a script the server does not have (``NOSCRIPT``)."""

    __module__ = "django_redis_rs.exceptions"


class ExecAbortError(ResponseError, redis_errors.ExecAbortError):
    """A transaction was discarded because one of its commands was refused (``EXECABORT``)."""

    __module__ = "django_redis_rs.exceptions"


class AuthenticationWrongNumberOfArgsError(
    ResponseError, redis_errors.AuthenticationWrongNumberOfArgsError
):
    """``AUTH user password`` sent to a server before Redis 6 (which knows no users)."""

    __module__ = "django_redis_rs.exceptions"


class TryAgainError(ResponseError, redis_errors.TryAgainError):
    """A cluster's multi-key request met a slot under migration (``TRYAGAIN``), past retrying."""

    __module__ = "django_redis_rs.exceptions"


class ClusterCrossSlotError(ResponseError, redis_errors.ClusterCrossSlotError):
    """A multi-key request's keys are in different cluster slots (``CROSSSLOT``)."""

    __module__ = "django_redis_rs.exceptions"


class ClusterDownError(ResponseError, redis_errors.ClusterDownError):
    """The cluster cannot serve the slot (``CLUSTERDOWN``), past retrying."""

    __module__ = "django_redis_rs.exceptions"


class MasterDownError(ClusterDownError, redis_errors.MasterDownError):
    """A replica lost its primary and refuses to serve stale data (``MASTERDOWN``)."""

    __module__ = "django_redis_rs.exceptions"


class LockError(redis_errors.LockError):
    """A lock could not be acquired, released or extended."""

    __module__ = "django_redis_rs.exceptions"


class LockNotOwnedError(LockError, redis_errors.LockNotOwnedError):
    """The lock is held by someone else (or expired) when releasing or extending it."""

    __module__ = "django_redis_rs.exceptions"
