"""Exceptions raised by django-redis-rs.

``ConnectionInterrupted``, ``SerializerError``, ``CompressorError``, ``ValueTooLargeError`` and
``ConfigError`` are made by the native module. ``ResponseError``, ``ConnectionError``,
``TimeoutError``, ``LockError``, ``LockNotOwnedError`` and redis-py's finer classes
(``OutOfMemoryError``, ``AuthenticationError``, ``BusyLoadingError``, …) subclass redis-py's classes
of the same names, so ``except redis.exceptions.ResponseError`` (...) catches them as it does with
django-redis; they are loaded on first use, which is when redis-py is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from django_redis_rs._native import (
    CompressorError,
    ConfigError,
    ConnectionInterrupted,
    SerializerError,
    UnsafePickleError,
    ValueTooLargeError,
)

if TYPE_CHECKING:
    from django_redis_rs._redis_py_errors import (
        AuthenticationError,
        AuthenticationWrongNumberOfArgsError,
        BusyLoadingError,
        ClusterCrossSlotError,
        ClusterDownError,
        ConnectionError,
        ExecAbortError,
        LockError,
        LockNotOwnedError,
        MasterDownError,
        NoPermissionError,
        NoScriptError,
        OutOfMemoryError,
        ReadOnlyError,
        ResponseError,
        TimeoutError,
        TryAgainError,
    )

_REDIS_PY_SUBCLASSES = {
    "AuthenticationError",
    "AuthenticationWrongNumberOfArgsError",
    "BusyLoadingError",
    "ClusterCrossSlotError",
    "ClusterDownError",
    "ConnectionError",
    "ExecAbortError",
    "LockError",
    "LockNotOwnedError",
    "MasterDownError",
    "NoPermissionError",
    "NoScriptError",
    "OutOfMemoryError",
    "ReadOnlyError",
    "ResponseError",
    "TimeoutError",
    "TryAgainError",
}


class SettingError(ImproperlyConfigured):
    """A setting this backend refused. ``option`` names it (``"LOCATION"``, ``"SOCKET_TIMEOUT"``,
    ``"CONNECTION_POOL_KWARGS"``, …: the top-level name), and ``key`` the key inside it at fault
    (``"timeout"``), if any; ``kind`` says how, for the system checks: ``"location"``,
    ``"import"``, ``"unknown"`` (the unknown names in ``names``), ``"timeout"`` or ``"value"``;
    ``summary`` is the message without its details (for ``"unknown"``, the list of what is
    supported). The native module raises it with every field; nothing reads them back from
    the message."""

    def __init__(
        self,
        option: str,
        message: str,
        kind: str = "value",
        names: Sequence[str] = (),
        key: str | None = None,
        summary: str | None = None,
    ) -> None:
        super().__init__(message)
        self.option = option
        self.kind = kind
        self.names = tuple(names)
        self.key = key
        self.summary = summary if summary is not None else message

    def __reduce__(self) -> tuple[Any, ...]:
        # Celery and multiprocessing pickle exceptions: rebuild with every field.
        return (
            type(self),
            (self.option, str(self), self.kind, self.names, self.key, self.summary),
        )


def redis_py_error(failure: ConnectionInterrupted) -> BaseException:
    """What django-redis lets out where the native client raised ``failure``: its cause, a
    ``ConnectionError``, ``TimeoutError`` or ``ResponseError`` (or one of their finer
    subclasses, as redis-py classes the failure)."""
    return failure.__cause__ or failure


def refused_by_server(failure: BaseException) -> bool:
    """Whether ``failure`` is the server's plain refusal of the command itself (a
    ``ResponseError``: ``WRONGTYPE``, ``ERR value is not an integer``), not an outage nor one of
    the finer classes (``OOM``, ``READONLY``, …) that say the server cannot serve it now."""
    if not isinstance(failure, ConnectionInterrupted):
        return False
    from django_redis_rs._redis_py_errors import ResponseError

    return type(failure.__cause__) is ResponseError


class _RedisPyErrors:
    """``with redis_py_errors:`` — calls to the native client inside raise ``redis_py_error``
    instead of ``ConnectionInterrupted``: for the APIs that stand where django-redis lets
    redis-py's errors out (the lock, the session engine, the native raw client). A class, not
    ``@contextmanager``, which would cost about a microsecond a call."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        if isinstance(error, ConnectionInterrupted):
            raise redis_py_error(error) from None


redis_py_errors = _RedisPyErrors()


def __getattr__(name: str) -> Any:
    if name in _REDIS_PY_SUBCLASSES:
        from django_redis_rs import _redis_py_errors

        return getattr(_redis_py_errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuthenticationError",
    "AuthenticationWrongNumberOfArgsError",
    "BusyLoadingError",
    "ClusterCrossSlotError",
    "ClusterDownError",
    "CompressorError",
    "ConfigError",
    "ConnectionError",
    "ConnectionInterrupted",
    "ExecAbortError",
    "LockError",
    "LockNotOwnedError",
    "MasterDownError",
    "NoPermissionError",
    "NoScriptError",
    "OutOfMemoryError",
    "ReadOnlyError",
    "ResponseError",
    "SerializerError",
    "SettingError",
    "TimeoutError",
    "TryAgainError",
    "UnsafePickleError",
    "ValueTooLargeError",
    "redis_py_error",
    "redis_py_errors",
    "refused_by_server",
]
