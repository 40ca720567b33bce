"""Small user-side classes the tests plug in through OPTIONS."""

from __future__ import annotations

import ast
import json
from typing import Any

from django_redis_rs.compressors.base import BaseCompressor
from django_redis_rs.serializers.base import BaseSerializer
from django_redis_rs.serializers.json import JSONSerializer


class ReprSerializer(BaseSerializer):
    def dumps(self, value: Any) -> bytes:
        return repr(value).encode()

    def loads(self, value: bytes) -> Any:
        return ast.literal_eval(value.decode())


class ReverseCompressor(BaseCompressor):
    """Marks its output so that data it did not write fails to decompress."""

    def compress(self, value: bytes) -> bytes:
        return b"REV" + value[::-1]

    def decompress(self, value: bytes) -> bytes:
        if not value.startswith(b"REV"):
            raise ValueError("not compressed by ReverseCompressor")
        return value[3:][::-1]


class SortedKeysEncoder(json.JSONEncoder):
    def encode(self, o: Any) -> str:
        return json.dumps(o, sort_keys=True)


class SortedJSONSerializer(JSONSerializer):
    encoder_class = SortedKeysEncoder
