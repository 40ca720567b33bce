"""A Redis lock with redis-py's interface (what django-redis's ``cache.lock`` returns).

The lock is a key holding a random token, set with NX and an optional expiry. Release and extend
run as Lua scripts that first check the token, so a holder never frees a lock it lost.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace, TracebackType
from typing import Any, TypeVar

from django_redis_rs import exceptions
from django_redis_rs._native import REPLY_BOOL, REPLY_INT, REPLY_RAW, Client
from django_redis_rs.described import Command, Described, Pause, arun_steps, run_steps
from django_redis_rs.exceptions import redis_py_errors
from django_redis_rs.forgiving import forgiving

T = TypeVar("T")

_RELEASE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)
# ARGV[2]: milliseconds; ARGV[3] == '1' replaces the TTL, else adds to what is left.
_EXTEND = (
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
    "local left = redis.call('PTTL', KEYS[1]) "
    "if left < 0 then return 0 end "
    "local ttl = tonumber(ARGV[2]) "
    "if ARGV[3] ~= '1' then ttl = ttl + left end "
    "redis.call('PEXPIRE', KEYS[1], ttl) return 1"
)
_REACQUIRE = (
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
    "redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1"
)


@dataclass
class _Attempt:
    args: tuple[Any, ...]
    token: bytes
    sleep: float
    blocking: bool
    deadline: float | None

    def may_wait(self) -> bool:
        """Whether another try fits before the deadline."""
        if not self.blocking:
            return False
        return self.deadline is None or time.monotonic() + self.sleep <= self.deadline


class Lock:
    def __init__(
        self,
        client: Client,
        name: str,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        thread_local: bool = True,
    ) -> None:
        self._client = client
        self.name = name
        self.timeout = timeout
        self.sleep = sleep
        self.blocking = blocking
        self.blocking_timeout = blocking_timeout
        # Where the token lives: per thread (redis-py's default) or shared by all threads.
        self._local: Any = threading.local() if thread_local else SimpleNamespace()

    def __repr__(self) -> str:
        return f"<django_redis_rs.lock.Lock name={self.name!r}>"

    def _run(self, steps: Described[T]) -> T:
        """Run a described operation; an outage raises what redis-py's lock would."""
        with redis_py_errors:
            return run_steps(self._client, steps)

    async def _arun(self, steps: Described[T]) -> T:
        with redis_py_errors:
            return await arun_steps(self._client, steps)

    def __enter__(self) -> Lock:
        if self.acquire():
            return self
        raise exceptions.LockError("Unable to acquire lock within the time specified")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    @property
    def token(self) -> bytes | None:
        token: bytes | None = getattr(self._local, "token", None)
        return token

    def _ttl_ms(self, seconds: float) -> int:
        return max(int(seconds * 1000), 1)

    def acquire(
        self,
        sleep: float | None = None,
        blocking: bool | None = None,
        blocking_timeout: float | None = None,
        token: str | bytes | None = None,
    ) -> bool:
        """Take the lock; wait (sleeping ``sleep`` between tries) up to ``blocking_timeout``."""
        return self._run(self._acquire(sleep, blocking, blocking_timeout, token))

    def _acquire(
        self,
        sleep: float | None,
        blocking: bool | None,
        blocking_timeout: float | None,
        token: str | bytes | None,
    ) -> Described[bool]:
        attempt = self._attempt(sleep, blocking, blocking_timeout, token)
        while True:
            if (yield Command(True, attempt.args, REPLY_BOOL)):
                self._local.token = attempt.token
                return True
            if not attempt.may_wait():
                return False
            yield Pause(attempt.sleep)

    def _attempt(
        self,
        sleep: float | None,
        blocking: bool | None,
        blocking_timeout: float | None,
        token: str | bytes | None,
    ) -> _Attempt:
        """What acquiring sends (SET NX with the lock's expiry) and how long it may wait."""
        sleep = self.sleep if sleep is None else sleep
        blocking = self.blocking if blocking is None else blocking
        blocking_timeout = self.blocking_timeout if blocking_timeout is None else blocking_timeout
        token_bytes = (
            uuid.uuid4().hex.encode()
            if token is None
            else (token.encode() if isinstance(token, str) else token)
        )
        args: tuple[Any, ...] = ("SET", self.name, token_bytes, "NX")
        if self.timeout is not None:
            args += ("PX", self._ttl_ms(self.timeout))
        deadline = None if blocking_timeout is None else time.monotonic() + blocking_timeout
        return _Attempt(args, token_bytes, sleep, blocking, deadline)

    def locked(self) -> bool:
        """Whether anyone holds the lock."""
        return self._run(self._locked())

    def _locked(self) -> Described[bool]:
        return bool((yield Command(False, ("EXISTS", self.name), REPLY_INT)))

    def owned(self) -> bool:
        """Whether this lock object (in this thread, if thread-local) holds the lock."""
        return self._run(self._owned())

    def _owned(self) -> Described[bool]:
        stored = yield Command(False, ("GET", self.name), REPLY_RAW)
        return self.token is not None and stored == self.token

    def release(self) -> None:
        self._run(self._release())

    def _release(self) -> Described[None]:
        token = self.token
        if token is None:
            raise exceptions.LockError("Cannot release an unlocked lock")
        self._local.token = None
        args = ("EVAL", _RELEASE, 1, self.name, token)
        if not (yield Command(True, args, REPLY_INT, [self.name])):
            raise exceptions.LockNotOwnedError("Cannot release a lock that's no longer owned")

    def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        """Add ``additional_time`` seconds (or set the TTL to it with ``replace_ttl``)."""
        return self._run(self._extend(additional_time, replace_ttl))

    def _extend(self, additional_time: float, replace_ttl: bool) -> Described[bool]:
        if self.token is None:
            raise exceptions.LockError("Cannot extend an unlocked lock")
        if self.timeout is None:
            raise exceptions.LockError("Cannot extend a lock with no timeout")
        ttl, replace = self._ttl_ms(additional_time), "1" if replace_ttl else "0"
        args = ("EVAL", _EXTEND, 1, self.name, self.token, ttl, replace)
        if not (yield Command(True, args, REPLY_INT, [self.name])):
            raise exceptions.LockNotOwnedError("Cannot extend a lock that's no longer owned")
        return True

    def reacquire(self) -> bool:
        """Reset the TTL to the lock's timeout."""
        return self._run(self._reacquire())

    def _reacquire(self) -> Described[bool]:
        if self.token is None:
            raise exceptions.LockError("Cannot reacquire an unlocked lock")
        if self.timeout is None:
            raise exceptions.LockError("Cannot reacquire a lock with no timeout")
        args = ("EVAL", _REACQUIRE, 1, self.name, self.token, self._ttl_ms(self.timeout))
        if not (yield Command(True, args, REPLY_INT, [self.name])):
            raise exceptions.LockNotOwnedError("Cannot reacquire a lock that's no longer owned")
        return True


def _forgiven() -> tuple[type[BaseException], ...]:
    """What a forgiving lock swallows: what IGNORE_EXCEPTIONS swallows in the cache (an outage
    or a server's refusal: OOM, READONLY, …), never the lock's own LockError. A function: the
    classes import redis-py, which happens only once an error is raised."""
    return (exceptions.ConnectionError, exceptions.TimeoutError, exceptions.ResponseError)


def _forgiving(strict: type[Lock], name: str, neutral: Any) -> Any:
    """``strict.<name>``, answering ``neutral`` when Redis cannot serve it."""
    return forgiving(
        name,
        like=getattr(strict, name),
        target=lambda lock: functools.partial(getattr(strict, name), lock),
        caught=_forgiven,
        handle=lambda lock, error: lock._ignored(error),
        neutral=neutral,
    )


class _Forgiving:
    """What the forgiving locks share: who is told of each error swallowed."""

    _client: Client

    def __init__(
        self, *args: Any, on_ignored: Callable[[BaseException], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._on_ignored = on_ignored

    def _ignored(self, error: BaseException) -> None:
        if self._on_ignored is not None:
            self._on_ignored(error)
        else:
            self._client.note_ignored(type(error).__name__)


class ForgivingLock(_Forgiving, Lock):
    """The lock ``cache.lock`` returns under IGNORE_EXCEPTIONS: with Redis down it is never
    acquired (acquire returns False, the context manager raises LockError) and releasing or
    extending it does nothing."""


class AsyncLock(Lock):
    """The lock for async code: ``async with cache.alock("name", timeout=10): ...``, and
    ``await lock.aacquire()`` / ``arelease()`` / ``aextend()`` / ``areacquire()`` /
    ``alocked()`` / ``aowned()``, each run from the same description as its sync form.
    The token is kept per lock object (asyncio tasks share a thread)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["thread_local"] = False
        super().__init__(*args, **kwargs)

    async def __aenter__(self) -> AsyncLock:
        if await self.aacquire():
            return self
        raise exceptions.LockError("Unable to acquire lock within the time specified")

    async def __aexit__(self, *exc: object) -> None:
        await self.arelease()

    async def aacquire(
        self,
        sleep: float | None = None,
        blocking: bool | None = None,
        blocking_timeout: float | None = None,
        token: str | bytes | None = None,
    ) -> bool:
        return await self._arun(self._acquire(sleep, blocking, blocking_timeout, token))

    async def arelease(self) -> None:
        await self._arun(self._release())

    async def aextend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        return await self._arun(self._extend(additional_time, replace_ttl))

    async def areacquire(self) -> bool:
        return await self._arun(self._reacquire())

    async def alocked(self) -> bool:
        return await self._arun(self._locked())

    async def aowned(self) -> bool:
        return await self._arun(self._owned())


class ForgivingAsyncLock(_Forgiving, AsyncLock):
    """`ForgivingLock` for async code (``cache.alock`` under IGNORE_EXCEPTIONS)."""


# What each forgiving lock method answers when Redis cannot serve it, sync and async alike.
_FORGIVEN = {
    "acquire": False,
    "locked": False,
    "owned": False,
    "release": None,
    "extend": False,
    "reacquire": False,
}
for _name, _answer in _FORGIVEN.items():
    setattr(ForgivingLock, _name, _forgiving(Lock, _name, _answer))
    setattr(ForgivingAsyncLock, "a" + _name, _forgiving(AsyncLock, "a" + _name, _answer))
