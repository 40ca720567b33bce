"""SAFE_PICKLE: whoever can write to Redis cannot run code in the workers that read it. A forged
pickle is refused naming the class it would have loaded, and nothing of it runs; values of the
standard types still round-trip, and a value outside the allowed classes is refused at set
time."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import os
import pickle
import uuid
import zoneinfo
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_redis_rs.exceptions import SerializerError, UnsafePickleError

SAFE = {"SAFE_PICKLE": True}


class Forged:
    """What an attacker writes: a pickle whose loading runs a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


def plant(cache: Any, key: str, data: bytes) -> None:
    cache.client._native.execute(True, ("SET", cache.make_key(key), data))


@pytest.mark.parametrize("compressor", ["identity.IdentityCompressor", "zlib.ZlibCompressor"])
def test_a_forged_pickle_is_refused_and_never_run(
    make_cache: Any, tmp_path: Path, compressor: str
) -> None:
    options = {**SAFE, "COMPRESSOR": f"django_redis_rs.compressors.{compressor}"}
    cache = make_cache(options=options)
    marker = tmp_path / "ran"
    forged = pickle.dumps(Forged(marker))
    payloads = [forged]
    if compressor.startswith("zlib"):
        import zlib

        payloads.append(zlib.compress(forged))
    for payload in payloads:
        plant(cache, "session", payload)
        for read in (
            lambda: cache.get("session"),
            lambda: cache.get_many(["session"]),
            lambda: asyncio.run(cache.aget("session")),
            lambda: asyncio.run(cache.aget_many(["session"])),
        ):
            with pytest.raises(UnsafePickleError, match=r"'posix\.system'|'nt\.system'"):
                read()
    assert not marker.exists()
    # Not an outage: IGNORE_EXCEPTIONS does not hide it.
    ignoring = make_cache(options={**options, "IGNORE_EXCEPTIONS": True})
    with pytest.raises(UnsafePickleError):
        ignoring.get("session")
    assert issubclass(UnsafePickleError, SerializerError)
    assert not marker.exists()
    # Without SAFE_PICKLE the same bytes run the command: what the option protects against.
    make_cache(options={"COMPRESSOR": options["COMPRESSOR"]}).get("session")
    assert marker.exists()


STANDARD_VALUES = [
    {"user": 1, "tags": ["a", "b"], "ratio": 0.5, "blob": b"\x00\xff", "none": None},
    [{"id": i, "name": f"n{i}"} for i in range(20)],
    datetime.datetime(2026, 12, 3, 16, 53, 1, 5),
    datetime.datetime(2026, 12, 3, tzinfo=datetime.timezone.utc),
    datetime.datetime(2026, 12, 3, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    datetime.date(2026, 12, 3),
    datetime.time(16, 53),
    datetime.timedelta(days=3, seconds=4),
    decimal.Decimal("12.50"),
    uuid.UUID(int=12345),
    {"when": datetime.date(2026, 1, 1), "amount": decimal.Decimal("1.10"), "ids": {1, 2}},
    OrderedDict(a=1, b=2),
    frozenset({1, "x"}),
    (1, 2.5, "three", complex(1, 2), bytearray(b"ab")),
]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_the_standard_types_round_trip(make_cache: Any, protocol: int) -> None:
    cache = make_cache(options={**SAFE, "PICKLE_VERSION": protocol})
    for n, value in enumerate(STANDARD_VALUES):
        assert cache.set(f"k{n}", value) is True
        assert cache.get(f"k{n}") == value
        assert type(cache.get(f"k{n}")) is type(value)
    assert asyncio.run(cache.aget("k2")) == STANDARD_VALUES[2]


def test_a_value_outside_the_list_is_refused_at_set_time(make_cache: Any) -> None:
    cache = make_cache(options=SAFE)
    with pytest.raises(UnsafePickleError, match="test_safe_pickle.Point"):
        cache.set("p", Point(1, 2))
    with pytest.raises(UnsafePickleError):
        cache.set_many({"a": 1, "p": Point(1, 2)})
    with pytest.raises(UnsafePickleError):
        asyncio.run(cache.aset("p", Point(1, 2)))
    assert cache.get_many(["p", "a"]) == {}  # nothing was written


def test_the_list_is_extended_in_settings(make_cache: Any) -> None:
    cache = make_cache(options={**SAFE, "SAFE_PICKLE_CLASSES": ["tests.test_safe_pickle.Point"]})
    assert cache.set("p", Point(1, 2)) is True
    assert cache.get("p") == Point(1, 2)
    # A cache without the name refuses to read it.
    strict = make_cache(options=SAFE)
    with pytest.raises(UnsafePickleError, match="tests.test_safe_pickle.Point"):
        strict.get("p")


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"SAFE_PICKLE": "yes"}, "SAFE_PICKLE"),
        ({"SAFE_PICKLE": True, "SAFE_PICKLE_CLASSES": "a.B"}, "SAFE_PICKLE_CLASSES"),
        ({"SAFE_PICKLE": True, "SAFE_PICKLE_CLASSES": ["nodot"]}, "SAFE_PICKLE_CLASSES"),
        ({"SAFE_PICKLE_CLASSES": ["a.B"]}, "SAFE_PICKLE_CLASSES"),
    ],
)
def test_bad_settings_name_the_option(options: dict[str, Any], option: str) -> None:
    from django_redis_rs.cache import RedisCache

    cache = RedisCache("redis://127.0.0.1:1", {"OPTIONS": options})
    with pytest.raises(ImproperlyConfigured, match=option):
        cache.get("k")


@pytest.mark.parametrize(
    "forged",
    [
        # getattr reaching past an allowed class (the way to everything else)
        b"cbuiltins\ngetattr\n(cdatetime\ndatetime\nV__subclasses__\ntR.",
        b"c__builtin__\ngetattr\n(cdatetime\ndatetime\nV__init_subclass__\ntR.",
        # Python 2 names, mapped as pickle maps them
        b"c__builtin__\neval\n(V1\ntR.",
        b"cposix\nsystem\n(Vtrue\ntR.",
        b"ccopyreg\n_reconstructor\n(cos\n_wrap_close\ncbuiltins\nobject\nNtR.",
    ],
)
def test_forged_names_are_refused(make_cache: Any, forged: bytes) -> None:
    cache = make_cache(options=SAFE)
    plant(cache, "k", forged)
    with pytest.raises(UnsafePickleError, match="refused to load a pickled"):
        cache.get("k")
