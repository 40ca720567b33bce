"""The benchmark suite: django-redis-rs beside django-redis 7.0 (hiredis), Django's built-in
RedisCache, django-vcache (when importable: it ships a CPython 3.13 wheel) and a raw-socket floor,
in one process run, interleaved in blocks; each row reports the median block (the JSON keeps
the best one too). Throwaway servers on free ports: one standalone, three shards, a
three-primary cluster.

The first rows are on the values Django projects cache — a small dict, a list of 20 such dicts,
a 2 KB HTML fragment — where the floor is the raw socket plus ``pickle.loads`` (``get``) or
``pickle.dumps`` (``set``) of the same value: what any Python client pays. The string and
integer rows, which native fast paths serve, follow, named as such.

Latency rows run pinned (this process and the servers on one CPU: a loopback round trip then
costs the same for everyone); the 8-thread and asyncio rows run unpinned. Writes JSON, a
Markdown table and a PNG plot to benches/results/.

    make bench                                    # builds, then runs this with django-vcache
    .venv/bin/python benches/suite.py             # without django-vcache (Python < 3.12)
    .venv/bin/python benches/suite.py --quick     # smoke mode (CI): tiny counts, no files
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import decimal
import json
import os
import pickle
import platform
import shutil
import socket
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.core.cache.backends.redis import RedisCache as BuiltinRedisCache  # noqa: E402
from django_redis.cache import RedisCache as DjangoRedisCache  # noqa: E402

from django_redis_rs.cache import RedisCache  # noqa: E402
from tests.servers import Server, start_cluster  # noqa: E402

try:
    from django_vcache.backend import ValkeyCache
except ImportError:  # needs CPython 3.12+
    ValkeyCache = None
try:  # Valkey GLIDE's sync client (Rust core), on the raw GET rows
    import glide_sync
except ImportError:
    glide_sync = None

PREFIX = {}  # filled below: a short key prefix per backend (no spaces: Django warns on them)
OURS, THEIRS, BUILTIN, VCACHE, GLIDE, FLOOR = (
    "django-redis-rs",
    "django-redis",
    "Django built-in",
    "django-vcache",
    "GLIDE sync",
    "floor: raw socket (+ pickle for values)",
)
PREFIX.update({OURS: "rs", THEIRS: "dr", BUILTIN: "dj", VCACHE: "vc"})
RESULTS = ROOT / "benches" / "results"
HIREDIS = {"PARSER_CLASS": "redis.connection._HiredisParser"}
KEYS = [f"k{i}" for i in range(100)]
BIG = ("lorem ipsum dolor sit amet " * 4000)[:100_000]  # 100 KB, compressible
SMALL_DICT = {"id": 7, "name": "Ada", "tags": ["a", "b"], "score": 1.5}
# The values people cache (issue 17): a small dict, a list of 20 such dicts (a page of rows),
# a rendered 2 KB HTML fragment.
USER = {"user": 42, "name": "alice", "roles": ["a", "b"], "ok": True}
VALUES = {
    "dict": USER,
    "list of 20 dicts": [dict(USER, user=i) for i in range(20)],
    "2 KB HTML": (
        '<li class="row"><a href="/item/42/">Item 42</a> <span>in stock</span></li>\n' * 28
    )[:2048],
}


# ---- pinning ---------------------------------------------------------------------------------

ALL_CPUS = os.sched_getaffinity(0)
PIN_CPU = {max(ALL_CPUS)}


@contextmanager
def pinned(servers: list[Server], on: bool) -> Iterator[None]:
    cpus = PIN_CPU if on else ALL_CPUS
    for pid in [0] + [s.process.pid for s in servers if s.process is not None]:
        os.sched_setaffinity(pid, cpus)
    yield


# ---- the raw-socket floor --------------------------------------------------------------------


def resp(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class RawSocket:
    """A minimal RESP client: send, then read until the expected number of bytes arrived."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(self, request: bytes, reply_len: int) -> None:
        self.sock.sendall(request)
        got = len(self.sock.recv(65536))
        while got < reply_len:
            got += len(self.sock.recv(65536))

    def reply_len(self, request: bytes) -> int:
        self.sock.sendall(request)
        time.sleep(0.05)
        return len(self.sock.recv(1 << 20))


# ---- measuring -------------------------------------------------------------------------------


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def threads_ops(fn: Callable[[], Any], n: int, threads: int = 8) -> float:
    """Operations per second with `threads` threads each calling `fn` n times."""
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(n):
            fn()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    return threads * n / (time.perf_counter() - started)


class Bench:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.scale = 0.01 if quick else 1.0
        # Every block's figure, by row and backend; rows keep the order they were first run in.
        self.blocks: dict[str, dict[str, list[float]]] = {}
        self.units: dict[str, str] = {}

    def n(self, count: int) -> int:
        return max(2, int(count * self.scale))

    def record(self, op: str, who: str, figure: float, unit: str) -> None:
        self.units[op] = unit
        self.blocks.setdefault(op, {}).setdefault(who, []).append(figure)

    def latency(self, op: str, who: str, fn: Callable[[], Any], n: int) -> None:
        self.record(op, who, per_call_us(fn, self.n(n)), "µs")

    def throughput(self, op: str, who: str, ops: float) -> None:
        self.record(op, who, ops, "ops/s")

    @property
    def median(self) -> dict[str, dict[str, float]]:
        return {
            op: {who: statistics.median(figures) for who, figures in row.items()}
            for op, row in self.blocks.items()
        }

    @property
    def best(self) -> dict[str, dict[str, float]]:
        pick = {"µs": min, "ops/s": max}
        return {
            op: {who: pick[self.units[op]](figures) for who, figures in row.items()}
            for op, row in self.blocks.items()
        }


# ---- the suite -------------------------------------------------------------------------------


def caches(url: str, who: str, **options: Any) -> Any:
    params = {"KEY_PREFIX": PREFIX[who], "OPTIONS": options}
    if who == OURS:
        return RedisCache(url, params)
    if who == THEIRS:
        return DjangoRedisCache(url, {**params, "OPTIONS": {**HIREDIS, **options}})
    if who == BUILTIN:
        return BuiltinRedisCache(url, {"KEY_PREFIX": PREFIX[who]})
    assert ValkeyCache is not None
    return ValkeyCache(url, params)


GET_STR, SET_STR = "get, 50-byte str", "set, 50-byte str"


def stored_get(ours: Any, key: str, floor: RawSocket) -> tuple[bytes, bytes, int]:
    """What the floor reads for `key`: the bytes our cache stored, the RESP ``GET`` of the made
    key, and the length of its reply."""
    made_key = ours.make_key(key).encode()
    stored = bytes(ours.client.get_native_client().get(made_key) or b"")
    request = resp(b"GET", made_key)
    return stored, request, floor.reply_len(request)


def glide_client(server: Server) -> Any:
    """Valkey GLIDE's sync client on `server`, or None when it is not installed."""
    if glide_sync is None:
        return None
    address = glide_sync.NodeAddress("127.0.0.1", server.port)
    return glide_sync.GlideClient.create(glide_sync.GlideClientConfiguration([address]))


def option_rows(
    url: str, made: dict[str, Any], option: str, values: dict[str, Any]
) -> list[tuple[str, str, Callable[[], Any], int]]:
    """get/set rows of `values` with one of our boolean OPTIONS on, beside django-redis's
    cache (`made[THEIRS]`), which has no such option."""
    pair = {OURS: caches(url, OURS, **{option: True}), THEIRS: made[THEIRS]}
    rows: list[tuple[str, str, Callable[[], Any], int]] = []
    for name, value in values.items():
        key = f"v-{option.lower()}-{len(name)}"
        for c in pair.values():
            c.set(key, value)
        for who, c in pair.items():
            rows += [
                (f"get, {name}, {option}", who, lambda c=c, k=key: c.get(k), 3000),
                (f"set, {name}, {option}", who, lambda c=c, k=key, v=value: c.set(k, v), 3000),
            ]
    return rows


def value_rows(bench: Bench, server: Server) -> None:
    """get, set, get_many(100) and set_many(100) on each of VALUES, beside the floor that
    includes pickling."""
    url = server.url
    who_all = [OURS, THEIRS, BUILTIN] + ([VCACHE] if ValkeyCache else [])
    made = {who: caches(url, who) for who in who_all}
    floor = RawSocket(server.port)
    rows: list[tuple[str, str, Callable[[], Any], int]] = []
    for name, value in VALUES.items():
        key = f"v-{name.replace(' ', '-')}"
        for cache in made.values():
            cache.set(key, value)
            cache.set_many({f"{key}-{i}": value for i in range(100)})
        stored, get_req, get_len = stored_get(made[OURS], key, floor)
        assert pickle.loads(stored) == value
        set_len = floor.reply_len(resp(b"SET", b"floor:value", stored, b"PX", b"300000"))

        def floor_get(req: bytes = get_req, n: int = get_len, data: bytes = stored) -> None:
            floor.call(req, n)
            pickle.loads(data)

        def floor_set(v: Any = value, n: int = set_len) -> None:
            floor.call(resp(b"SET", b"floor:value", pickle.dumps(v, -1), b"PX", b"300000"), n)

        many_keys = [f"{key}-{i}" for i in range(100)]
        many_items = dict.fromkeys(many_keys, value)
        rows += [
            (f"get, {name}", FLOOR, floor_get, 3000),
            (f"set, {name}", FLOOR, floor_set, 3000),
        ]
        for who, c in made.items():
            rows += [
                (f"get, {name}", who, lambda c=c, k=key: c.get(k), 3000),
                (f"set, {name}", who, lambda c=c, k=key, v=value: c.set(k, v), 3000),
                (f"get_many(100), {name}", who, lambda c=c, ks=many_keys: c.get_many(ks), 300),
                (f"set_many(100), {name}", who, lambda c=c, it=many_items: c.set_many(it), 200),
            ]
    # SAFE_PICKLE (ours) beside django-redis, which has no such option; the plain rows above
    # give ours without it. Builtin values are read natively either way; a dict holding a
    # datetime and a Decimal goes through the restricted unpickler on reads, and every write
    # is read back by it unless the native decoder builds it.
    stamped = dict(USER, joined=datetime.datetime(2026, 12, 3, 16, 53), due=decimal.Decimal("9.50"))
    rows += option_rows(
        url, made, "SAFE_PICKLE", {"dict": USER, "dict with datetime+Decimal": stamped}
    )
    # The same dict with SAFE_PICKLE off (the plain dict's rows are above).
    stamped_key = "v-safe-plain"
    for who in (OURS, THEIRS):
        made[who].set(stamped_key, stamped)
        rows.append(
            (
                "get, dict with datetime+Decimal",
                who,
                lambda c=made[who]: c.get(stamped_key),
                3000,
            )
        )
    # SIGNED_VALUES (ours; django-redis has no such option): an HMAC-SHA256 of key and bytes on
    # every write and read. The plain rows above are ours with it off.
    rows += option_rows(url, made, "SIGNED_VALUES", {n: VALUES[n] for n in ("dict", "2 KB HTML")})
    # As applications call it: through django.core.cache's proxy (a connection handler lookup
    # per attribute), which every backend pays.
    proxied = proxies(url, [OURS, THEIRS])
    key = "v-dict"
    for who, proxy in proxied.items():
        rows.append(
            ("get, dict, via django.core.cache proxy", who, lambda p=proxy: p.get(key), 3000)
        )
    for _ in range(1 if bench.quick else 5):
        for op, who, fn, n in rows:
            bench.latency(op, who, fn, n)


def proxies(url: str, who_all: list[str]) -> dict[str, Any]:
    """``django.core.cache.cache``-like proxies (ConnectionProxy over a CacheHandler), one per
    backend, with the same settings as `caches` makes."""
    from django.core.cache import CacheHandler
    from django.utils.connection import ConnectionProxy

    backends = {OURS: "django_redis_rs.cache.RedisCache", THEIRS: "django_redis.cache.RedisCache"}
    handler = CacheHandler(
        {
            who: {
                "BACKEND": backends[who],
                "LOCATION": url,
                "KEY_PREFIX": PREFIX[who],
                "OPTIONS": HIREDIS if who == THEIRS else {},
            }
            for who in who_all
        }
    )
    return {who: ConnectionProxy(handler, who) for who in who_all}


def standalone_rows(bench: Bench, server: Server) -> None:
    url = server.url
    who_all = [OURS, THEIRS, BUILTIN] + ([VCACHE] if ValkeyCache else [])
    made = {who: caches(url, who) for who in who_all}
    for cache in made.values():
        cache.set("small", "x" * 50)
        cache.set_many(dict.fromkeys(KEYS, "v" * 20))
    floor = RawSocket(server.port)
    stored = bytes(made[OURS].client.get_native_client().get(f"{PREFIX[OURS]}:1:small") or b"")
    get_req = resp(b"GET", f"{PREFIX[OURS]}:1:small".encode())
    get_len = floor.reply_len(get_req)
    set_req = resp(b"SET", b"floor:small", stored, b"PX", b"300000")  # Django's default timeout
    set_len = floor.reply_len(set_req)
    many = {who: {f"d{i}": i for i in range(100)} for who in who_all}
    # A hot key served from the client-side cache, beside network gets in the same row.
    # Its own prefix: Redis tells it of writes under that prefix only, so the other rows'
    # writes cost no invalidation messages.
    local = RedisCache(url, {"KEY_PREFIX": "rs-local", "OPTIONS": {"CLIENT_SIDE_CACHE": True}})
    local.set("small", "x" * 50)
    local.set_many(dict.fromkeys(KEYS, "v" * 20))
    local.get("small")
    deadline = time.monotonic() + 5
    while local.metrics()["client_side_cache"]["entries"] <= len(KEYS) and (
        time.monotonic() < deadline
    ):
        local.get("small")
        local.get_many(KEYS)
        time.sleep(0.01)
    hot = "get, client-side cache hit"
    hot_many = "get_many(100), client-side cache hit"
    # Raw GET of the same key: our native raw client (get_native_client) against redis-py's
    # client, which get_redis_connection() returns with either backend (hiredis parser).
    raw_get = "raw GET: native raw client, redis-py, GLIDE sync"
    glide = glide_client(server)
    native_raw = made[OURS].client.get_native_client()
    redis_py_raw = made[THEIRS].client.get_client()
    raw_key = f"{PREFIX[OURS]}:1:small"

    def rows() -> list[tuple[str, str, Callable[[], Any], int]]:
        out: list[tuple[str, str, Callable[[], Any], int]] = [
            (GET_STR, FLOOR, lambda: floor.call(get_req, get_len), 3000),
            (SET_STR, FLOOR, lambda: floor.call(set_req, set_len), 3000),
            (hot, FLOOR, lambda: floor.call(get_req, get_len), 3000),
            (hot, OURS, lambda: local.get("small"), 3000),
            (hot, THEIRS, lambda: made[THEIRS].get("small"), 3000),
            (hot_many, OURS, lambda: local.get_many(KEYS), 500),
            (hot_many, THEIRS, lambda: made[THEIRS].get_many(KEYS), 500),
            (raw_get, FLOOR, lambda: floor.call(get_req, get_len), 3000),
            (raw_get, OURS, lambda: native_raw.get(raw_key), 3000),
            (raw_get, THEIRS, lambda: redis_py_raw.get(raw_key), 3000),
        ]
        if glide is not None:
            out.append((raw_get, GLIDE, lambda: glide.get(raw_key), 3000))
        for who, c in made.items():
            out += [
                (GET_STR, who, lambda c=c: c.get("small"), 3000),
                ("get miss", who, lambda c=c: c.get("missing"), 3000),
                (SET_STR, who, lambda c=c: c.set("small", "x" * 50), 3000),
                ("incr", who, lambda c=c: c.incr("n") if c.has_key("n") else c.set("n", 1), 1500),
                ("get_many(100), 20-byte str", who, lambda c=c: c.get_many(KEYS), 500),
                ("set_many(100), int", who, lambda c=c, w=who: c.set_many(many[w]), 300),
                ("delete_many(100)", who, lambda c=c, w=who: c.delete_many(list(many[w])), 300),
            ]
        return out

    # Codec rows: ours and django-redis with the same settings (django-vcache: msgpack always,
    # zstd for large values, so it joins those rows).
    codec = {
        "100 KB zstd set+get": {"COMPRESSOR": "compressors.zstd.ZStdCompressor"},
        "100 KB lz4 set+get": {"COMPRESSOR": "compressors.lz4.Lz4Compressor"},
        "100 KB zlib set+get": {"COMPRESSOR": "compressors.zlib.ZlibCompressor"},
        "json dict set+get": {"SERIALIZER": "serializers.json.JSONSerializer"},
        "msgpack dict set+get": {"SERIALIZER": "serializers.msgpack.MSGPackSerializer"},
    }
    codec_caches: list[tuple[str, str, Any, Any]] = []
    for op, option in codec.items():
        name, path = next(iter(option.items()))
        value = BIG if op.startswith("100 KB") else SMALL_DICT
        codec_caches.append(
            (op, OURS, caches(url, OURS, **{name: f"django_redis_rs.{path}"}), value)
        )
        codec_caches.append(
            (op, THEIRS, caches(url, THEIRS, **{name: f"django_redis.{path}"}), value)
        )
        if ValkeyCache and ("zstd" in op or "msgpack" in op):
            codec_caches.append((op, VCACHE, made[VCACHE], value))

    def set_get(c: Any, value: Any) -> None:
        c.set("codec", value)
        c.get("codec")

    for _ in range(1 if bench.quick else 5):
        for op, who, fn, n in rows():
            bench.latency(op, who, fn, n)
        for op, who, c, value in codec_caches:
            bench.latency(op, who, lambda c=c, v=value: set_get(c, v), 300 if "KB" in op else 2000)


def delete_pattern_rows(bench: Bench, server: Server) -> None:
    count = 200 if bench.quick else 10_000
    made = {who: caches(server.url, who) for who in (OURS, THEIRS)}
    for _ in range(1 if bench.quick else 3):
        for who, cache in made.items():
            for start in range(0, count, 1000):
                cache.set_many({f"dp:{i}": i for i in range(start, min(count, start + 1000))})
            started = time.perf_counter()
            deleted = cache.delete_pattern("dp:*")
            took = (time.perf_counter() - started) * 1e6
            assert deleted == count, (who, deleted)
            bench.record(f"delete_pattern({count:,})", who, took, "µs")


def concurrency_rows(bench: Bench, server: Server) -> None:
    who_all = [OURS, THEIRS, BUILTIN] + ([VCACHE] if ValkeyCache else [])
    made = {who: caches(server.url, who) for who in who_all}
    for cache in made.values():
        cache.set("small", "x" * 50)
        cache.set_many(dict.fromkeys(KEYS, "v" * 20))
    small_key = f"{PREFIX[OURS]}:1:small"
    get_req = resp(b"GET", small_key.encode())
    probe = RawSocket(server.port)
    glide = glide_client(server)
    get_len = probe.reply_len(get_req)
    local = threading.local()

    def raw_get() -> None:
        if not hasattr(local, "sock"):
            local.sock = RawSocket(server.port)
        local.sock.call(get_req, get_len)

    async def gathered(cache: Any, rounds: int) -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            await asyncio.gather(*(cache.aget(f"k{i}") for i in range(50)))
        return rounds * 50 / (time.perf_counter() - started)

    async def one_by_one(aget: Callable[[], Any], rounds: int) -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            await aget()
        return (time.perf_counter() - started) / rounds * 1e6

    async def many(cache: Any, rounds: int) -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            await cache.aget_many(KEYS)
        return (time.perf_counter() - started) / rounds * 1e6

    # The 8-thread get of each value, beside the floor that unpickles it.
    value_keys = {}
    for name, value in VALUES.items():
        key = f"t-{name.replace(' ', '-')}"
        for cache in made.values():
            cache.set(key, value)
        stored, request, reply_len = stored_get(made[OURS], key, probe)
        value_keys[name] = (key, request, reply_len, stored)

    def raw_get_value(request: bytes, reply_len: int, stored: bytes) -> None:
        if not hasattr(local, "sock"):
            local.sock = RawSocket(server.port)
        local.sock.call(request, reply_len)
        pickle.loads(stored)

    async def measure() -> None:
        for _ in range(1 if bench.quick else 3):
            for name, (key, request, reply_len, stored) in value_keys.items():
                op = f"8 threads get, {name}"
                floor_ops = threads_ops(
                    lambda r=request, n=reply_len, d=stored: raw_get_value(r, n, d), bench.n(3000)
                )
                bench.throughput(op, FLOOR, floor_ops)
                for who, cache in made.items():
                    ops = threads_ops(lambda c=cache, k=key: c.get(k), bench.n(3000))
                    bench.throughput(op, who, ops)
            bench.throughput(
                "8 threads get, 50-byte str", FLOOR, threads_ops(raw_get, bench.n(3000))
            )
            if glide is not None:  # its raw GET of the same key, one client for the threads
                ops = threads_ops(lambda: glide.get(small_key), bench.n(3000))
                bench.throughput("8 threads get, 50-byte str", GLIDE, ops)
            for who, cache in made.items():
                ops = threads_ops(lambda c=cache: c.get("small"), bench.n(3000))
                bench.throughput("8 threads get, 50-byte str", who, ops)
                bench.throughput("50 concurrent aget", who, await gathered(cache, bench.n(100)))
                took = await many(cache, bench.n(200))
                bench.record("aget_many(100)", who, took, "µs")
                took = await one_by_one(lambda c=cache: c.aget("small"), bench.n(3000))
                bench.record("aget, 50-byte str", who, took, "µs")
            # What the check for a wrapped `get` costs `aget`: the same native coroutine,
            # called without it (RedisCache.aget's __wrapped__), in the same run.
            unchecked = RedisCache.aget.__wrapped__  # type: ignore[attr-defined]
            took = await one_by_one(lambda f=unchecked: f(made[OURS], "small"), bench.n(3000))
            bench.record("aget, 50-byte str, without the wrapper check", OURS, took, "µs")

    asyncio.run(measure())


def shard_rows(bench: Bench, shards: list[Server]) -> None:
    location = [s.url for s in shards]
    made = {
        OURS: RedisCache(
            location,
            {"KEY_PREFIX": "rs", "OPTIONS": {"CLIENT_CLASS": "django_redis_rs.client.ShardClient"}},
        ),
        THEIRS: DjangoRedisCache(
            location,
            {
                "KEY_PREFIX": "dr",
                "OPTIONS": {**HIREDIS, "CLIENT_CLASS": "django_redis.client.ShardClient"},
            },
        ),
    }
    for cache in made.values():
        cache.set_many(dict.fromkeys(KEYS, "v" * 20))
    for _ in range(1 if bench.quick else 5):
        for who, cache in made.items():
            bench.latency(
                "ShardClient get_many(100), 3 shards", who, lambda c=cache: c.get_many(KEYS), 300
            )


def cluster_rows(bench: Bench, nodes: list[Server]) -> None:
    made = {
        OURS: RedisCache(
            nodes[0].url,
            {
                "KEY_PREFIX": OURS,
                "OPTIONS": {"CLIENT_CLASS": "django_redis_rs.client.ClusterClient"},
            },
        )
    }
    if ValkeyCache:
        seeds = ",".join(n.url for n in nodes)
        made[VCACHE] = ValkeyCache(seeds, {"KEY_PREFIX": "vc", "OPTIONS": {"CLUSTER_MODE": True}})
    for cache in made.values():
        cache.set_many(dict.fromkeys(KEYS, "v" * 20))
    for _ in range(1 if bench.quick else 5):
        for who, cache in made.items():
            bench.latency(
                "ClusterClient get_many(100), 3 primaries",
                who,
                lambda c=cache: c.get_many(KEYS),
                300,
            )


# ---- reporting -------------------------------------------------------------------------------


def ratio(row: dict[str, float], unit: str, who: str, base: str) -> str:
    if who not in row or base not in row:
        return "—"
    r = row[who] / row[base]
    return f"{r:.2f}x" if unit == "µs" else f"{r:.1f}x"


def markdown(bench: Bench) -> str:
    median = bench.median
    cols = [
        who
        for who in (OURS, THEIRS, BUILTIN, VCACHE, GLIDE, FLOOR)
        if any(who in row for row in median.values())
    ]
    lines = [
        "| operation | unit | " + " | ".join(cols) + " | ours ÷ django-redis | ours ÷ floor |",
        "| --- | --- |" + " ---: |" * (len(cols) + 2),
    ]
    for op, row in median.items():
        unit = bench.units[op]
        cells = [
            "—" if who not in row else (f"{row[who]:,.1f}" if unit == "µs" else f"{row[who]:,.0f}")
            for who in cols
        ]
        floor = ratio(row, unit, OURS, FLOOR)
        lines.append(
            f"| {op} | {unit} | "
            + " | ".join(cells)
            + f" | {ratio(row, unit, OURS, THEIRS)} | {floor} |"
        )
    return "\n".join(lines)


def plot(bench: Bench, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    median = bench.median
    # The realistic values' rows (the dict's first), then the rest.
    ops = [op for op, row in median.items() if (THEIRS in row or BUILTIN in row) and "dict" in op]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(ops) + 1.5))
    for i, who in enumerate([OURS, VCACHE]):
        speedups = []
        for op in ops:
            row, unit = median[op], bench.units[op]
            base = row.get(THEIRS) or row.get(BUILTIN)
            mine = row.get(who)
            if base is None or mine is None:
                speedups.append(0.0)
            else:
                speedups.append(base / mine if unit == "µs" else mine / base)
        ax.barh([y + i * 0.4 for y in range(len(ops))], speedups, height=0.4, label=who)
    ax.set_yticks([y + 0.2 for y in range(len(ops))], ops)
    ax.invert_yaxis()
    ax.axvline(1, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("speed-up over django-redis (Django built-in where django-redis has no row)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    # django-redis's ShardClient warns on its own internal calls.
    warnings.filterwarnings("ignore", message=".*on sharded client should not specify client")
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is needed")
    bench = Bench(args.quick)
    server = Server("redis", binary).start()
    shards = [Server("redis", binary).start() for _ in range(3)]
    cluster = start_cluster("redis", binary)
    everyone = [server, *shards, *cluster]
    try:
        with pinned(everyone, True):
            value_rows(bench, server)
            standalone_rows(bench, server)
            delete_pattern_rows(bench, server)
            shard_rows(bench, shards)
            cluster_rows(bench, cluster)
        with pinned(everyone, False):
            concurrency_rows(bench, server)
    finally:
        for srv in everyone:
            srv.cleanup()
    table = markdown(bench)
    print(table)
    if args.quick:
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d"),
        "pinned_cpu": sorted(PIN_CPU),
    }
    (RESULTS / "suite.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "units": bench.units,
                "results": bench.median,
                "best": bench.best,
                "blocks": bench.blocks,
            },
            indent=2,
        )
    )
    (RESULTS / "suite.md").write_text(table + "\n")
    try:
        plot(bench, RESULTS / "suite.png")
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)


if __name__ == "__main__":
    main()
