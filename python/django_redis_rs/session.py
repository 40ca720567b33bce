"""``SESSION_ENGINE = "django_redis_rs.session"``: sessions stored directly in Redis.

Each session is one key, ``django_redis_rs.session<session key>`` made with the cache's key
function (so ``KEY_PREFIX`` and ``VERSION`` apply), in the cache named by
``SESSION_CACHE_ALIAS``. Its value is Django's own encoding of the session (the
``SESSION_SERIALIZER``'s output, signed) — serialized once, not pickled again by the cache — and
its Redis TTL is the session's expiry. With the cache's ``SIGNED_VALUES``, the stored bytes
are also signed for the session's key, so a session copied to another key loads as empty.
``create`` writes with ``SET NX``, so it can never overwrite an existing session; ``save``
writes with ``SET XX``, so a session deleted elsewhere (a logout in another request) is not
resurrected.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.cache import caches

from django_redis_rs._native import REPLY_BOOL, REPLY_INT, REPLY_RAW, Client
from django_redis_rs.described import Command, Described, Native, arun_steps, run_steps
from django_redis_rs.exceptions import redis_py_errors

KEY_PREFIX = "django_redis_rs.session"


class SessionStore(SessionBase):
    cache_key_prefix = KEY_PREFIX

    def __init__(self, session_key: str | None = None) -> None:
        cache = caches[settings.SESSION_CACHE_ALIAS]
        client = getattr(cache, "client", None)
        if client is None or not hasattr(client, "_native"):
            raise TypeError(
                f"SESSION_CACHE_ALIAS {settings.SESSION_CACHE_ALIAS!r} must be a "
                "django_redis_rs.cache.RedisCache"
            )
        self._cache = cache
        self._native: Client = client._native
        super().__init__(session_key)

    # Each operation is described once (a generator of steps, see described.py) and run by the
    # sync method and its native async twin; the steps' commands run through these two.

    def execute(self, write: bool, args: tuple[Any, ...], reply: int, keys: Any = None) -> Any:
        """One command; an outage raises redis-py's errors, as Django's cache sessions on
        django-redis do."""
        with redis_py_errors:
            return self._native.execute(write, args, reply)

    async def aexecute(
        self, write: bool, args: tuple[Any, ...], reply: int, keys: Any = None
    ) -> Any:
        with redis_py_errors:
            return await self._native.aexecute(write, args, reply)

    def _key(self, session_key: str) -> str:
        return self._cache.make_key(self.cache_key_prefix + session_key)

    @property
    def cache_key(self) -> str:
        # SessionBase's helpers for subclasses are missing from django-stubs.
        return self._key(self._get_or_create_session_key())  # type: ignore[attr-defined]

    def load(self) -> dict[str, Any]:
        return run_steps(self, self._load())

    def _load(self) -> Described[dict[str, Any]]:
        data = None
        if self.session_key:
            key = self._key(self.session_key)
            data = yield Command(False, ("GET", key), REPLY_RAW)
            if data is not None:
                # With SIGNED_VALUES, a session copied from another key (or forged) is None.
                data = self._native.unseal(key, data)
        if data is None:
            self._session_key = None
            return {}
        session: dict[str, Any] = self.decode(data.decode())
        return session

    def create(self) -> None:
        run_steps(self, self._create())

    def _create(self) -> Described[None]:
        # Session keys are random; a collision with an existing session retries with another.
        for _ in range(100):
            self._session_key = yield Native("_get_new_session_key", (), "_aget_new_session_key")
            try:
                yield Native("save", (True,))
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError("Unable to create a new session key.")

    def save(self, must_create: bool = False) -> None:
        run_steps(self, self._save(must_create))

    def _save(self, must_create: bool) -> Described[None]:
        if self.session_key is None:
            yield Native("create", ())
            return
        session = yield Native("_get_session", (must_create,), "_aget_session")
        age = yield Native("get_expiry_age", ())
        if not (yield Command(True, self._write(session, age, must_create), REPLY_BOOL)):
            raise CreateError if must_create else UpdateError

    def _write(self, session: dict[str, Any], age: int, must_create: bool) -> tuple[Any, ...]:
        """The SET that stores the session: NX to create, XX to update. An expiry already past
        still goes through SET (for its NX/XX answer), with a deadline in the past (PXAT 1):
        Redis drops the key at once."""
        expiry = ("EX", age) if age > 0 else ("PXAT", 1)
        condition = "NX" if must_create else "XX"
        assert self.session_key is not None
        key = self._key(self.session_key)
        stored = self._native.seal(key, self.encode(session).encode())
        return ("SET", key, stored, *expiry, condition)

    def exists(self, session_key: str | None) -> bool:
        return run_steps(self, self._exists(session_key))

    def _exists(self, session_key: str | None) -> Described[bool]:
        if not session_key:
            return False
        return bool((yield Command(False, ("EXISTS", self._key(session_key)), REPLY_INT)))

    def delete(self, session_key: str | None = None) -> None:
        run_steps(self, self._delete(session_key))

    def _delete(self, session_key: str | None) -> Described[None]:
        session_key = self.session_key if session_key is None else session_key
        if session_key is not None:
            yield Command(True, ("DEL", self._key(session_key)), REPLY_INT)

    @classmethod
    def clear_expired(cls) -> None:
        """Redis expires sessions itself."""

    # ---- native async twins (Django's defaults would run the sync methods in a thread) ----

    async def aload(self) -> dict[str, Any]:
        return await arun_steps(self, self._load())

    async def acreate(self) -> None:
        await arun_steps(self, self._create())

    async def asave(self, must_create: bool = False) -> None:
        await arun_steps(self, self._save(must_create))

    async def aexists(self, session_key: str | None) -> bool:
        return await arun_steps(self, self._exists(session_key))

    async def adelete(self, session_key: str | None = None) -> None:
        await arun_steps(self, self._delete(session_key))

    @classmethod
    async def aclear_expired(cls) -> None:
        """Redis expires sessions itself."""
