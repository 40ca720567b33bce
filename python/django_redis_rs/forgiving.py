"""``IGNORE_EXCEPTIONS``, in one place: a method that calls another and, when that call fails
with an error the option covers, hands the failure to a handler — which raises it again unless
ignoring, and counts and logs it — and answers a neutral value. The cache's methods and the
forgiving locks are made with it, in the form of the method they call: plain, coroutine,
iterator or async iterator (a failure while iterating ends the iteration)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

# Neutral values that must be new for each call.
EMPTY_LIST, EMPTY_DICT, EMPTY_SET = list, dict, set
# set_many's: the keys it did not store, which is all of them (Django's contract).
UNSTORED_KEYS = object()

Caught = Callable[[], "type[BaseException] | tuple[type[BaseException], ...]"]
Handle = Callable[[Any, BaseException], None]


def neutral_of(value: Any) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """What a forgiven call answers; containers are made fresh for each call."""
    if value in (EMPTY_LIST, EMPTY_DICT, EMPTY_SET):
        return lambda args, kwargs: value()
    if value is UNSTORED_KEYS:
        return lambda args, kwargs: list(args[0] if args else kwargs["data"])
    return lambda args, kwargs: value


def forgiving(
    name: str,
    like: Callable[..., Any],
    target: Callable[[Any], Callable[..., Any]],
    caught: Caught,
    handle: Handle,
    neutral: Any = None,
) -> Callable[..., Any]:
    """The method `name`: calls ``target(self)`` in the form of `like`; a failure among
    ``caught()`` (looked up only once one is raised) goes to ``handle(self, failure)``, inside
    the ``except``, and the call answers `neutral`."""
    answer = neutral_of(neutral)
    method: Callable[..., Any]
    if inspect.isasyncgenfunction(like):

        async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                async for item in target(self)(*args, **kwargs):
                    yield item
            except caught() as failure:
                handle(self, failure)

    elif inspect.isgeneratorfunction(like):

        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                yield from target(self)(*args, **kwargs)
            except caught() as failure:
                handle(self, failure)

    elif inspect.iscoroutinefunction(like):

        async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await target(self)(*args, **kwargs)
            except caught() as failure:
                handle(self, failure)
                return answer(args, kwargs)

    else:

        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return target(self)(*args, **kwargs)
            except caught() as failure:
                handle(self, failure)
                return answer(args, kwargs)

    method.__name__ = name
    method.__doc__ = like.__doc__
    method.neutral = neutral  # type: ignore[union-attr]  # what its async twin answers
    return method
