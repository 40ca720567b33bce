from __future__ import annotations

from django_redis_rs.compressors.base import NativeCompressor


class GzipCompressor(NativeCompressor):
    """Values longer than 15 bytes are stored as
    a gzip member, as ``gzip.compress(value)`` writes it (level 9 by default)."""

    name = "gzip"
    level = 9
    min_length = 15
