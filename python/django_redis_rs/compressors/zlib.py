from __future__ import annotations

from django_redis_rs.compressors.base import NativeCompressor


class ZlibCompressor(NativeCompressor):
    """Values longer than 15 bytes are stored as
    a zlib stream, as ``zlib.compress(value, 6)`` writes it (level 6 by default)."""

    name = "zlib"
    level = 6
    min_length = 15
