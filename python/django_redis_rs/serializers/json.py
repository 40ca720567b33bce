from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from django_redis_rs.serializers.base import NativeSerializer


class JSONSerializer(NativeSerializer):
    """The bytes of ``json.dumps(value, cls=DjangoJSONEncoder)``, written in Rust: datetimes,
    dates, times, timedeltas, Decimals, UUIDs and lazy strings as Django writes them. Reading
    gives what ``json.loads`` gives (those come back as strings).

    Set ``encoder_class`` in a subclass to use another encoder (then Python's json runs)."""

    encoder_class: type[json.JSONEncoder] = DjangoJSONEncoder
    spec = ("json",)

    def dumps(self, value: Any) -> bytes:
        if self.encoder_class is DjangoJSONEncoder:
            return super().dumps(value)
        return json.dumps(value, cls=self.encoder_class).encode()

    @property
    def native_spec(self) -> tuple[Any, ...] | None:
        if self.encoder_class is not DjangoJSONEncoder:
            return None
        return self.spec
