"""Commands described once: a client method is a generator that yields the commands it needs
and receives their replies; ``described`` turns it into the sync method, and
``add_async_twins`` gives the class its async twin (``a`` + the name)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from typing import Any, NamedTuple, TypeVar

from django_redis_rs._native import REPLY_RAW


class Command(NamedTuple):
    """One Redis command as a method describes it: run by the sync or the async transport."""

    write: bool
    args: tuple[Any, ...]
    reply: int = REPLY_RAW
    keys: Any = None


T = TypeVar("T")
# A method described once: a generator that yields the commands it needs and receives their
# replies; `described` turns it into the sync method and its async twin (``a`` + name).
Described = Generator[Command, Any, T]


def described(method: Callable[..., Described[T]]) -> Callable[..., T]:
    @functools.wraps(method)
    def run_sync(self: Any, *args: Any, **kwargs: Any) -> T:
        steps = method(self, *args, **kwargs)
        try:
            command = next(steps)
            while True:
                command = steps.send(self._native.execute(*command))
        except StopIteration as done:
            result: T = done.value
            return result

    async def run_async(self: Any, *args: Any, **kwargs: Any) -> T:
        steps = method(self, *args, **kwargs)
        try:
            command = next(steps)
            while True:
                command = steps.send(await self._native.aexecute(*command))
        except StopIteration as done:
            result: T = done.value
            return result

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
