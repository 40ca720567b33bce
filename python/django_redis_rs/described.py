"""Commands described once: a client method is a generator that yields the steps it needs —
a Redis ``Command``, a ``Native`` call of the native client, a ``Pause`` — and receives their
results (or has their exceptions raised at the ``yield``); ``described`` turns it into the sync
method, and ``add_async_twins`` gives the class its async twin (``a`` + the name)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Generator
from typing import Any, NamedTuple, TypeVar

from django_redis_rs._native import REPLY_RAW


class Command(NamedTuple):
    """One Redis command as a method describes it: run by the sync or the async transport."""

    write: bool
    args: tuple[Any, ...]
    reply: int = REPLY_RAW
    keys: Any = None


class Native(NamedTuple):
    """A call of the native client's method ``name``, awaited as ``async_name`` (by default
    ``a`` + name)."""

    name: str
    args: tuple[Any, ...]
    async_name: str = ""


class Pause(NamedTuple):
    """A wait: ``time.sleep`` for the sync form, ``asyncio.sleep`` for the async one."""

    seconds: float


T = TypeVar("T")
# A method described once: a generator that yields the steps it needs and receives their
# results; `described` turns it into the sync method and its async twin (``a`` + name).
Described = Generator[Command | Native | Pause, Any, T]


async def _run(native: Any, steps: Described[T], awaiting: bool) -> T:
    """Feed `steps` the results of the calls they yield, awaited or not. Not awaiting, nothing
    here waits, so the coroutine ends on its first step: the sync method runs it that way."""
    result: Any = None
    failure: Exception | None = None
    while True:
        try:
            step = steps.send(result) if failure is None else steps.throw(failure)
        except StopIteration as done:
            value: T = done.value
            return value
        if isinstance(step, Pause):
            if awaiting:
                await asyncio.sleep(step.seconds)
            else:
                time.sleep(step.seconds)
            result = None
            continue
        if isinstance(step, Native):
            name, args = (step.async_name or "a" + step.name) if awaiting else step.name, step.args
        else:
            name, args = "aexecute" if awaiting else "execute", step
        try:
            result = getattr(native, name)(*args)
            if awaiting:
                result = await result
            failure = None
        except Exception as e:  # noqa: BLE001 - raised at the method's yield
            result, failure = None, e


def run_steps(native: Any, steps: Described[T]) -> T:
    """Run `steps` on `native`, blocking."""
    run = _run(native, steps, awaiting=False)
    try:
        run.send(None)
    except StopIteration as done:
        value: T = done.value
        return value
    raise RuntimeError("a sync step waited")  # unreachable: see _run


async def arun_steps(native: Any, steps: Described[T]) -> T:
    """Run `steps` on `native`, awaited."""
    return await _run(native, steps, awaiting=True)


def described(method: Callable[..., Described[T]]) -> Callable[..., T]:
    @functools.wraps(method)
    def run_sync(self: Any, *args: Any, **kwargs: Any) -> T:
        return run_steps(self._native, method(self, *args, **kwargs))

    async def run_async(self: Any, *args: Any, **kwargs: Any) -> T:
        return await arun_steps(self._native, method(self, *args, **kwargs))

    run_async.__name__ = run_async.__qualname__ = "a" + method.__name__
    run_async.__doc__ = f"The async twin of ``{method.__name__}``."
    run_sync.async_twin = run_async  # type: ignore[attr-defined]
    return run_sync


def add_async_twins(cls: type[T]) -> type[T]:
    """Give every ``described`` method of `cls` its async twin, named ``a`` + its name."""
    for name, member in list(vars(cls).items()):
        twin = getattr(member, "async_twin", None)
        if twin is not None:
            setattr(cls, "a" + name, twin)
    return cls
