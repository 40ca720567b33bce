"""The stored-value differential: our codec against django-redis's, for every serializer ×
compressor, on generated values and on damaged or unusual stored bytes.

For bytes in Redis, both sides must agree: django-redis decodes them to a value and we decode
them to an equal value of the same types, or both refuse them. For a value to store, both must
store it (the serializers' bytes identical; compressed bytes need only be read by the other
side) or both refuse it.

``tests/test_codec_differential.py`` runs a few thousand cases in the suite; ``make fuzz`` runs
``python -m tests.differential --cases 100000`` (any seed, any count) and prints the counts.
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import math
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

SERIALIZERS = ("pickle", "json", "msgpack")
COMPRESSORS = ("identity", "zlib", "gzip", "lzma", "lz4", "zstd")
_CLASS = {
    "pickle": "pickle.PickleSerializer",
    "json": "json.JSONSerializer",
    "msgpack": "msgpack.MSGPackSerializer",
    "identity": "identity.IdentityCompressor",
    "zlib": "zlib.ZlibCompressor",
    "gzip": "gzip.GzipCompressor",
    "lzma": "lzma.LzmaCompressor",
    "lz4": "lz4.Lz4Compressor",
    "zstd": "zstd.ZStdCompressor",
}


def _caches(serializer: str, compressor: str) -> tuple[Any, Any]:
    """Our cache and django-redis's with this codec. Neither connects: decode and encode are
    pure."""
    from django_redis.cache import RedisCache as Theirs

    from django_redis_rs.cache import RedisCache as Ours

    def params(package: str) -> dict[str, Any]:
        return {
            "OPTIONS": {
                "SERIALIZER": f"{package}.serializers.{_CLASS[serializer]}",
                "COMPRESSOR": f"{package}.compressors.{_CLASS[compressor]}",
            }
        }

    location = "redis://127.0.0.1:1/0"
    return (
        Ours(location, params("django_redis_rs")).client,
        Theirs(location, params("django_redis")).client,
    )


# --- values ---------------------------------------------------------------------------------


def _text(rng: random.Random) -> str:
    alphabet = rng.choice(["abc", "é€𝄞\u0000\ud7ff", '\\"\n\t/', "日本語", "x" * 3])
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))


def _int(rng: random.Random) -> int:
    return rng.choice(
        [
            rng.randrange(-300, 300),
            rng.randrange(-(2**31), 2**31),
            rng.randrange(-(2**63), 2**63),
            2**63 - 1,
            -(2**63),
            2**64 - 1,
            rng.randrange(-(10**30), 10**30),
        ]
    )


def _float(rng: random.Random) -> float:
    return rng.choice(
        [rng.uniform(-1e6, 1e6), 0.0, -0.0, 1e308, 5e-324, math.inf, -math.inf, math.nan, 0.1]
    )


def _scalar(rng: random.Random, serializer: str) -> Any:
    choices: list[Callable[[], Any]] = [
        lambda: _text(rng),
        lambda: _int(rng),
        lambda: _float(rng),
        lambda: rng.choice([True, False, None]),
    ]
    if serializer != "json":
        choices.append(lambda: rng.randbytes(rng.randrange(0, 10)))
    if serializer == "pickle":
        choices += [
            lambda: datetime.datetime(2026, 1, 2, 3, 4, 5, rng.randrange(10**6)),
            lambda: datetime.date(2026, 12, 3),
            lambda: datetime.timedelta(seconds=rng.randrange(10**6)),
            lambda: decimal.Decimal(rng.randrange(10**6)) / 100,
            lambda: uuid.UUID(int=rng.getrandbits(128)),
        ]
    if serializer == "json":
        choices += [
            lambda: datetime.datetime(2026, 1, 2, 3, 4, 5, rng.randrange(10**6)),
            lambda: decimal.Decimal("1.10"),
            lambda: uuid.UUID(int=rng.getrandbits(128)),
        ]
    return rng.choice(choices)()


def _key(rng: random.Random, serializer: str) -> Any:
    if serializer == "pickle":
        return rng.choice([_text(rng), _int(rng), (1, "a"), None, True, 1.5])
    if serializer == "msgpack":
        return rng.choice([_text(rng), _text(rng), rng.randbytes(3), _int(rng)])
    return rng.choice([_text(rng), _text(rng), _int(rng), True, None, 1.5])


def value(rng: random.Random, serializer: str, depth: int = 0) -> Any:
    """A value of the kind people cache, now and then nested very deep."""
    if depth == 0 and rng.random() < 0.04:
        chain: Any = _scalar(rng, serializer)
        for _ in range(rng.choice([200, 500, 511, 512, 513, 600, 900, 1000, 1100])):
            chain = rng.choice([[chain], {"k": chain}])
        return chain
    if depth > 4 or rng.random() < 0.35:
        return _scalar(rng, serializer)
    n = rng.randrange(0, 6)
    kinds = ["list", "dict", "tuple"]
    if serializer == "pickle":
        kinds += ["set", "frozenset"]
    kind = rng.choice(kinds)
    if kind == "dict":
        return {_key(rng, serializer): value(rng, serializer, depth + 1) for _ in range(n)}
    if kind in ("set", "frozenset"):
        members = {_scalar(rng, "msgpack") for _ in range(n)}
        members = {m for m in members if not (isinstance(m, float) and math.isnan(m))}
        return set(members) if kind == "set" else frozenset(members)
    items = [value(rng, serializer, depth + 1) for _ in range(n)]
    return items if kind == "list" else tuple(items)


# --- damaged and unusual stored bytes -------------------------------------------------------


def _unusual(rng: random.Random, serializer: str) -> bytes:
    """Stored bytes no value of ours makes, that the reference library reads (or refuses)."""
    if serializer == "msgpack":
        import msgpack

        made: Any = rng.choice(
            [
                msgpack.ExtType(rng.randrange(0, 128), rng.randbytes(rng.randrange(0, 20))),
                msgpack.Timestamp(rng.randrange(0, 2**34), rng.randrange(0, 10**9)),
                msgpack.Timestamp(rng.randrange(-(2**40), 2**40), 0),
            ]
        )
        if rng.random() < 0.5:
            made = [made, {"k": made}]
        return bytes(msgpack.packb(made))
    if serializer == "json":
        depth = rng.choice([600, 990, 1000, 1100, 3000])
        return (b"[" * depth) + b"1" + (b"]" * depth)
    return bytes([0x80, rng.randrange(0, 6)]) + rng.randbytes(rng.randrange(0, 30))


def damaged(rng: random.Random, stored: bytes, extra: bytes) -> bytes:
    """`stored` changed the way storage and networks and people damage bytes."""
    if not stored:
        return rng.randbytes(rng.randrange(0, 8))
    at = rng.randrange(0, len(stored) + 1)
    how = rng.randrange(10)
    if how == 0:
        return stored[:at]  # cut short
    if how == 1:
        return stored[:-4] if len(stored) > 4 else b""  # cut before a frame's end mark
    if how == 2:
        return stored + b"\0" * rng.randrange(1, 17)  # NUL padding
    if how == 3:
        return stored + rng.randbytes(rng.randrange(1, 9))  # trailing garbage
    if how == 4:
        return stored + extra  # a second stream or member
    if how == 5:
        return stored + b"\0" * 4 + extra
    if how == 6 and at < len(stored):
        flipped = bytearray(stored)
        flipped[at] ^= 1 << rng.randrange(8)
        return bytes(flipped)
    if how == 7:
        return stored[:at] + rng.randbytes(1) + stored[at:]
    if how == 8:
        return b"\0" * rng.randrange(1, 4) + stored
    return rng.randbytes(rng.randrange(0, 40))


# --- comparing ------------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not True, a tuple is not a list,
    -0.0 is not 0.0, NaN is NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if isinstance(a, dict):
        return (
            len(a) == len(b)
            and all(same(x, y) for x, y in zip(a, b, strict=True))
            and all(same(a[k], b[k]) for k in a)
        )
    try:
        return bool(a == b)
    except Exception:
        return False


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("value", call())
    except RecursionError:
        return ("refused", "RecursionError")
    except Exception as error:
        return ("refused", type(error).__name__)


def _agree(ours: tuple[str, Any], theirs: tuple[str, Any]) -> bool:
    if ours[0] != theirs[0]:
        return False
    return ours[0] == "refused" or same(ours[1], theirs[1])


@dataclass
class Report:
    cases: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    disagreements: list[str] = field(default_factory=list)

    def add(self, kind: str, agreed: bool, describe: Callable[[], str]) -> None:
        self.cases += 1
        self.by_kind[kind] += 1
        if not agreed and len(self.disagreements) < 10_000:
            self.disagreements.append(describe())


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) < 160 else text[:150] + f"... ({len(text)} chars)"


def check_write(report: Report, codec: str, ours: Any, theirs: Any, val: Any) -> bytes | None:
    """Store `val` both ways; returns django-redis's bytes (None when it refuses)."""
    mine = _outcome(lambda: ours.encode(val, allow_int=False))
    ref = _outcome(lambda: theirs.encode(val, allow_int=False))
    if mine[0] != ref[0]:
        report.add("write", False, lambda: f"{codec} write {_short(val)}: {mine[0]} / {ref[0]}")
        return None
    if ref[0] == "refused":
        report.add("write", True, str)
        return None
    if codec.endswith("/identity"):
        report.add("write", mine[1] == ref[1], lambda: f"{codec} bytes of {_short(val)}")
    else:
        # Compressed bytes may differ; each side reads the other's.
        crossed = _agree(_outcome(lambda: theirs.decode(mine[1])), _outcome(lambda: val))
        crossed = crossed or _agree(
            _outcome(lambda: theirs.decode(mine[1])), _outcome(lambda: theirs.decode(ref[1]))
        )
        report.add("write", crossed, lambda: f"{codec} theirs cannot read ours of {_short(val)}")
    return bytes(ref[1])


def _stored_or_empty(theirs: Any, val: Any) -> bytes:
    """django-redis's bytes for `val`, or none when it refuses it."""
    try:
        return bytes(theirs.encode(val, allow_int=False))
    except Exception:
        return b""


def check_read(report: Report, codec: str, kind: str, ours: Any, theirs: Any, data: bytes) -> None:
    mine = _outcome(lambda: ours.decode(data))
    ref = _outcome(lambda: theirs.decode(data))
    report.add(
        kind,
        _agree(mine, ref),
        lambda: f"{codec} {kind} {_short(data)}: ours {_short(mine)} / theirs {_short(ref)}",
    )


def run(cases: int, seed: int = 0) -> Report:
    """At least `cases` cases, spread over every serializer × compressor."""
    import msgpack  # noqa: F401 - django-redis's msgpack serializer needs it

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    rng = random.Random(seed)
    report = Report()
    pairs = [(s, c) for s in SERIALIZERS for c in COMPRESSORS]
    made = {pair: _caches(*pair) for pair in pairs}
    per_pair = -(-cases // (len(pairs) * 3))  # at least `cases` in all
    for serializer, compressor in pairs:
        ours, theirs = made[serializer, compressor]
        codec = f"{serializer}/{compressor}"
        for _ in range(per_pair):
            val = value(rng, serializer)
            stored = check_write(report, codec, ours, theirs, val)
            check_read(report, codec, "read", ours, theirs, stored or b"")
            extra = _stored_or_empty(theirs, value(rng, serializer))
            base = stored if stored is not None and rng.random() < 0.8 else b""
            if rng.random() < 0.15:
                unusual = _unusual(rng, serializer)
                base = theirs._compressor.compress(unusual) if rng.random() < 0.5 else unusual
            check_read(report, codec, "damaged", ours, theirs, damaged(rng, base, extra))
    return report


def _summary(report: Report, took: float) -> Iterator[str]:
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(report.by_kind.items()))
    yield f"{report.cases} cases ({kinds}) in {took:.1f} s"
    yield f"{len(report.disagreements)} disagreements"
    yield from report.disagreements[:40]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    began = time.monotonic()
    report = run(args.cases, args.seed)
    print(f"seed {args.seed}")
    for line in _summary(report, time.monotonic() - began):
        print(line)
    sys.exit(1 if report.disagreements else 0)


if __name__ == "__main__":
    main()
