"""Exceptions raised by django-redis-rs.

The first six are defined by the native module and re-exported here so that they pickle and
compare by this module's name.
"""

from django_redis_rs._native import (
    CompressorError,
    ConfigError,
    ConnectionInterrupted,
    ResponseError,
    SerializerError,
    ValueTooLargeError,
)


class LockError(Exception):
    """A lock could not be acquired, released or extended."""


class LockNotOwnedError(LockError):
    """The lock is held by someone else (or expired) when releasing or extending it."""


__all__ = [
    "CompressorError",
    "ConfigError",
    "ConnectionInterrupted",
    "LockError",
    "LockNotOwnedError",
    "ResponseError",
    "SerializerError",
    "ValueTooLargeError",
]
