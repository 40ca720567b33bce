from __future__ import annotations

from django_redis_rs.serializers.base import NativeSerializer


class MSGPackSerializer(NativeSerializer):
    """The bytes of ``msgpack.dumps(value)`` (bin type for bytes, float64, smallest integers),
    written in Rust; reading gives what ``msgpack.loads(data, raw=False)`` gives (str keys and
    strings, lists for tuples). The msgpack package is not needed."""

    spec = ("msgpack",)
