from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class BaseSerializer:
    """What a custom ``SERIALIZER`` class provides (the same contract as django-redis's)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = options

    def dumps(self, value: Any) -> bytes:
        raise NotImplementedError

    def loads(self, value: bytes) -> Any:
        raise NotImplementedError
