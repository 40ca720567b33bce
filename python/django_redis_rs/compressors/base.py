from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class BaseCompressor:
    """What a custom ``COMPRESSOR`` class provides (the same contract as django-redis's).

    ``decompress`` raises (any exception) for data it did not compress; the value is then read
    as stored, so values written before compression was enabled stay readable.
    """

    is_identity = False

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = options

    def compress(self, value: bytes) -> bytes:
        raise NotImplementedError

    def decompress(self, value: bytes) -> bytes:
        raise NotImplementedError
