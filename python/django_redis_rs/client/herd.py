"""HerdClient: django-redis's stampede protection.

A value is stored with a soft expiry ``timeout`` seconds ahead and a real one
``CACHE_HERD_TIMEOUT`` (default 60) seconds later. Past the soft expiry, each reader is told
"missing" with a probability that grows to 1 over ``CACHE_HERD_TIMEOUT``, so one caller
recomputes the value while the others keep getting the stale one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT

from django_redis_rs.client.default import DefaultClient


class Marker:
    """Tags a stored (marker, value, soft expiry) triple as herd-packed."""


def _is_marker(obj: Any) -> bool:
    # django-redis's own marker counts too, where its values unpickle (django-redis installed).
    cls = type(obj)
    return isinstance(obj, Marker) or (
        cls.__name__ == "Marker" and cls.__module__ == "django_redis.client.herd"
    )


def _is_expired(overdue: float, herd_timeout: int) -> bool:
    if overdue >= herd_timeout:
        return True
    return overdue + random.randint(1, herd_timeout) >= herd_timeout


class HerdClient(DefaultClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._marker = Marker()
        self._herd_timeout: int = getattr(settings, "CACHE_HERD_TIMEOUT", 60)
        super().__init__(*args, **kwargs)

    def _pack(self, value: Any, timeout: float) -> tuple[Marker, Any, float]:
        return self._marker, value, timeout + int(time.time())

    def _unpack(self, value: Any) -> tuple[Any, bool]:
        """(value, whether this caller should treat it as missing and refresh it)."""
        if not (isinstance(value, tuple) and len(value) == 3 and _is_marker(value[0])):
            return value, False
        _, unpacked, soft_expiry = value
        now = int(time.time())
        if soft_expiry < now:
            return unpacked, _is_expired(now - soft_expiry, self._herd_timeout)
        return unpacked, False

    def _herded(self, values: dict[Any, Any], timeout: Any) -> tuple[dict[Any, Any], Any]:
        """What set and set_many store, and for how long: values packed with their soft expiry
        and the herd window added to the timeout; as given for no timeout or one <= 0."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self._backend.default_timeout
        if timeout is None or timeout <= 0:
            return values, timeout
        packed = {key: self._pack(value, timeout) for key, value in values.items()}
        return packed, timeout + self._herd_timeout

    def _unherded(self, found: dict[Any, Any]) -> dict[Any, Any]:
        """get_many's values unpacked; those a refresh is due for read as None."""
        unpacked = {}
        for key, packed in found.items():
            value, refresh = self._unpack(packed)
            unpacked[key] = None if refresh else value
        return unpacked

    def set(
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
        nx: bool = False,
        xx: bool = False,
    ) -> bool:
        stored, timeout = self._herded({key: value}, timeout)
        return super().set(key, stored[key], timeout, version, nx=nx, xx=xx)

    def add(
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> bool:
        return self.set(key, value, timeout, version, nx=True)

    def get(
        self, key: Any, default: Any = None, version: int | None = None, client: Any = None
    ) -> Any:
        value, refresh = self._unpack(super().get(key, default, version))
        return default if refresh else value

    def get_many(
        self, keys: Iterable[Any], version: int | None = None, client: Any = None
    ) -> dict[Any, Any]:
        return self._unherded(super().get_many(keys, version))

    def set_many(
        self,
        data: Mapping[Any, Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
        herd: bool = True,
    ) -> list[Any]:
        if not herd:
            return super().set_many(data, timeout, version)
        return super().set_many(*self._herded(dict(data), timeout), version)

    async def aset(
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
        nx: bool = False,
        xx: bool = False,
    ) -> bool:
        stored, timeout = self._herded({key: value}, timeout)
        return await super().aset(key, stored[key], timeout, version, nx=nx, xx=xx)

    async def aadd(
        self,
        key: Any,
        value: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> bool:
        return await self.aset(key, value, timeout, version, nx=True)

    async def aget(
        self, key: Any, default: Any = None, version: int | None = None, client: Any = None
    ) -> Any:
        value, refresh = self._unpack(await super().aget(key, default, version))
        return default if refresh else value

    async def aget_many(
        self, keys: Iterable[Any], version: int | None = None, client: Any = None
    ) -> dict[Any, Any]:
        return self._unherded(await super().aget_many(keys, version))

    async def aset_many(
        self,
        data: Mapping[Any, Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
        herd: bool = True,
    ) -> list[Any]:
        if not herd:
            return await super().aset_many(data, timeout, version)
        return await super().aset_many(*self._herded(dict(data), timeout), version)

    async def atouch(
        self,
        key: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> bool:
        value = await self.aget(key, version=version)
        if value is None:
            return False
        await self.aset(key, value, timeout, version)
        return True

    async def aincr(self, *args: Any, **kwargs: Any) -> int:
        raise NotImplementedError("HerdClient stores packed values: incr/decr cannot work")

    async def adecr(self, *args: Any, **kwargs: Any) -> int:
        raise NotImplementedError("HerdClient stores packed values: incr/decr cannot work")

    def incr(self, *args: Any, **kwargs: Any) -> int:
        raise NotImplementedError("HerdClient stores packed values: incr/decr cannot work")

    def decr(self, *args: Any, **kwargs: Any) -> int:
        raise NotImplementedError("HerdClient stores packed values: incr/decr cannot work")

    def touch(
        self,
        key: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> bool:
        value = self.get(key, version=version)
        if value is None:
            return False
        self.set(key, value, timeout, version)
        return True
