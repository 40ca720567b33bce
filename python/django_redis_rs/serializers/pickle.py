from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django_redis_rs.options import pickle_protocol
from django_redis_rs.serializers.base import NativeSerializer


class PickleSerializer(NativeSerializer):
    """The default: ``pickle.dumps(value, PICKLE_VERSION)``, called directly by the native
    client (no Python frame in between)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.spec = ("pickle", pickle_protocol(options))
