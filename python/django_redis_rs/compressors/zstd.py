from __future__ import annotations

from django_redis_rs.compressors.base import NativeCompressor


class ZStdCompressor(NativeCompressor):
    """Values longer than 15 bytes are stored as
    a Zstandard frame, as ``pyzstd.compress(value)`` writes it (level 3 by default)."""

    name = "zstd"
    level = 3
    min_length = 15
