from __future__ import annotations

from django_redis_rs.compressors.base import NativeCompressor


class LzmaCompressor(NativeCompressor):
    """Values longer than 100 bytes are stored as
    an XZ container, as ``lzma.compress(value, preset=4)`` (level 4 by default)."""

    name = "lzma"
    level = 4
    min_length = 100
