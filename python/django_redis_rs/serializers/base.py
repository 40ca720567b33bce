from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django_redis_rs import _native


class BaseSerializer:
    """What a custom ``SERIALIZER`` class provides (the same contract as django-redis's)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = options

    def dumps(self, value: Any) -> bytes:
        raise NotImplementedError

    def loads(self, value: bytes) -> Any:
        raise NotImplementedError


class NativeSerializer(BaseSerializer):
    """A serializer implemented in the native module; the cache runs it without calling back
    into Python. A subclass that overrides ``dumps`` or ``loads`` is called like any custom
    serializer instead."""

    spec: tuple[Any, ...]

    def dumps(self, value: Any) -> bytes:
        return _native.dumps(self.spec, value)

    def loads(self, value: bytes) -> Any:
        return _native.loads(self.spec, value)

    @property
    def native_spec(self) -> tuple[Any, ...] | None:
        cls = type(self)
        if cls.dumps is not NativeSerializer.dumps or cls.loads is not NativeSerializer.loads:
            return None
        return self.spec
