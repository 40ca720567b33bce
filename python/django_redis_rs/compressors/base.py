from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django_redis_rs import _native
from django_redis_rs.options import bounded_int

# Redis refuses strings over 512 MB: no stored value legitimately inflates beyond that.
DEFAULT_MAX_DECOMPRESSED_SIZE = 512 * 1024 * 1024


class BaseCompressor:
    """What a custom ``COMPRESSOR`` class provides (the same contract as django-redis's).

    ``decompress`` raises (any exception) for data it did not compress; the value is then read
    as stored, so values written before compression was enabled stay readable.
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = options

    def compress(self, value: bytes) -> bytes:
        raise NotImplementedError

    def decompress(self, value: bytes) -> bytes:
        raise NotImplementedError


class NativeCompressor(BaseCompressor):
    """A compressor implemented in the native module (the GIL is released while large values
    are compressed). ``COMPRESSOR_LEVEL``, ``COMPRESSOR_MIN_LENGTH`` and
    ``COMPRESSOR_MAX_DECOMPRESSED_SIZE`` in OPTIONS override the class's ``level`` and
    ``min_length``. A subclass that overrides ``compress`` or ``decompress`` is called like any
    custom compressor instead."""

    name: str
    level: int
    min_length: int = 15

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        level = bounded_int(
            options.get("COMPRESSOR_LEVEL", self.level), "COMPRESSOR_LEVEL", -(2**31), 2**31 - 1
        )
        min_length = bounded_int(
            options.get("COMPRESSOR_MIN_LENGTH", self.min_length), "COMPRESSOR_MIN_LENGTH", 0
        )
        max_size = bounded_int(
            options.get("COMPRESSOR_MAX_DECOMPRESSED_SIZE", DEFAULT_MAX_DECOMPRESSED_SIZE),
            "COMPRESSOR_MAX_DECOMPRESSED_SIZE",
            1,
        )
        self.spec: tuple[Any, ...] = (self.name, level, min_length, max_size)
        # Checks the level for this format: SettingError naming COMPRESSOR_LEVEL if it has none.
        _native.compress(self.spec, b"")

    def compress(self, value: bytes) -> bytes:
        return _native.compress(self.spec, value)

    def decompress(self, value: bytes) -> bytes:
        return _native.decompress(self.spec, value)

    @property
    def native_spec(self) -> tuple[Any, ...] | None:
        cls = type(self)
        if cls.compress is not NativeCompressor.compress:
            return None
        if cls.decompress is not NativeCompressor.decompress:
            return None
        return self.spec
