from __future__ import annotations

from django_redis_rs.compressors.base import NativeCompressor


class Lz4Compressor(NativeCompressor):
    """Values longer than 15 bytes are stored as
    an LZ4 frame, readable by ``lz4.frame.decompress`` (level 0 by default)."""

    name = "lz4"
    level = 0
    min_length = 15
