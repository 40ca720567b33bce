"""In-process single-flight for ``get_or_set``: when many callers miss the same key at once,
one computes the value and the others wait for it instead of stampeding the database.

Flights are process-wide, keyed by the servers and the made key: Django gives each thread its
own cache object, and the threads must still share. A flight is a ``concurrent.futures.Future``,
which threads wait on with a timeout and event loops await through ``asyncio.wrap_future``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

# What a flight settles with when its leader was interrupted (a cancelled task, KeyboardInterrupt)
# rather than failing: the others try again, one of them leading.
ABANDONED: Any = object()

_lock = threading.Lock()
_flights: dict[tuple[Any, str], Future[Any]] = {}


class Flight:
    """One computation of a key that other callers may wait for."""

    def __init__(self, key: tuple[Any, str], future: Future[Any], leading: bool, wait: float):
        self.key, self.future, self.leading, self.wait = key, future, leading, wait
        self.value: Any = None

    @contextmanager
    def landing(self) -> Iterator[Flight]:
        """The leader computes inside: what it sets as ``value``, or what it raises, goes to
        the callers waiting; and the next miss of the key starts a new flight."""
        try:
            yield self
        except BaseException as error:
            self._land(error)
            raise
        self._land(None)

    def _land(self, error: BaseException | None) -> None:
        with _lock:
            if _flights.get(self.key) is self.future:
                del _flights[self.key]
        if error is None:
            self.future.set_result(self.value)
        elif isinstance(error, Exception):
            self.future.set_exception(error)
        else:
            self.future.set_result(ABANDONED)


def join(key: tuple[Any, str], wait: float) -> Flight:
    """The flight for `key`: led by the caller when it was not flying already."""
    with _lock:
        future = _flights.get(key)
        if future is not None:
            return Flight(key, future, False, wait)
        future = _flights[key] = Future()
        return Flight(key, future, True, wait)


def in_flight() -> int:
    """How many keys are being computed now (for tests)."""
    with _lock:
        return len(_flights)
