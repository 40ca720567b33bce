from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any

from django_redis_rs.options import pickle_protocol
from django_redis_rs.serializers.base import BaseSerializer


class PickleSerializer(BaseSerializer):
    """The default serializer. The native client pickles directly (``native_protocol``); these
    methods serve code that calls the serializer itself."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.native_protocol = pickle_protocol(options)

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, self.native_protocol)

    def loads(self, value: bytes) -> Any:
        return pickle.loads(value)
