"""Small user-side classes the tests plug in through OPTIONS."""

from __future__ import annotations

import ast
import json
from typing import Any

import redis.exceptions

from django_redis_rs.compressors.base import BaseCompressor
from django_redis_rs.serializers.base import BaseSerializer
from django_redis_rs.serializers.json import JSONSerializer

# What the cache API raises when Redis cannot be reached or does not answer in time: redis-py's
# classes, as with django-redis (ours subclass them; `ConnectionInterrupted` is the client's).
OUTAGE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


# DefaultClient's methods for raw clients: redis-py's (built, not connected) and the native one.
RAW_CLIENT_METHODS = {
    "get_client",
    "get_client_with_index",
    "get_next_client_index",
    "get_native_client",
    "connect",
    "disconnect",
    "do_close_clients",
}


class ReprSerializer(BaseSerializer):
    def dumps(self, value: Any) -> bytes:
        return repr(value).encode()

    def loads(self, value: bytes) -> Any:
        return ast.literal_eval(value.decode())


class StopIterationSerializer(ReprSerializer):
    """Fails to read the value "stop" (with StopIteration, which an asyncio future would refuse
    to carry: the codec must wrap it)."""

    def loads(self, value: bytes) -> Any:
        if value == b"'stop'":
            raise StopIteration
        return super().loads(value)


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
