from __future__ import annotations

from typing import Any

from django_redis_rs.compressors.base import BaseCompressor


class IdentityCompressor(BaseCompressor):
    """No compression (the default). The native client skips it entirely."""

    native_spec: tuple[Any, ...] = ("identity",)

    def compress(self, value: bytes) -> bytes:
        return value

    def decompress(self, value: bytes) -> bytes:
        return value
