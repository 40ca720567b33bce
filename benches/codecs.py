"""Encode + decode cost of every serializer x compressor, django-redis-rs beside django-redis 7.0,
in one process run, interleaved in blocks. No server is involved: this is the codec path alone.

    .venv/bin/python benches/codecs.py            # full run, writes bench-results/codecs.{json,md}
    .venv/bin/python benches/codecs.py --quick    # smoke mode (CI): a few iterations, no files
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django_redis.cache import RedisCache as DjangoRedisCache  # noqa: E402

from django_redis_rs.cache import RedisCache  # noqa: E402

SERIALIZERS = ["pickle.PickleSerializer", "json.JSONSerializer", "msgpack.MSGPackSerializer"]
COMPRESSORS = [
    "identity.IdentityCompressor",
    "zlib.ZlibCompressor",
    "lz4.Lz4Compressor",
    "zstd.ZStdCompressor",
    "gzip.GzipCompressor",
    "lzma.LzmaCompressor",
]
VALUES = {
    "small dict": {
        "id": 12345,
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "tags": ["a", "b", "c"],
        "score": 98.5,
        "active": True,
    },
    "100 KB text": "the quick brown fox jumps over the lazy dog. " * 2300,
    "1000 rows": [{"id": i, "title": f"row {i}", "price": i * 1.25} for i in range(1000)],
}


def codec(cls: Any, package: str, serializer: str, compressor: str) -> Any:
    options = {
        "SERIALIZER": f"{package}.serializers.{serializer}",
        "COMPRESSOR": f"{package}.compressors.{compressor}",
    }
    return cls("redis://127.0.0.1:1", {"OPTIONS": options}).client  # never connects


def per_call_us(client: Any, value: Any, n: int) -> float:
    encode, decode = client.encode, client.decode
    started = time.perf_counter()
    for _ in range(n):
        decode(encode(value))
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smoke mode: check it runs")
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    blocks = 1 if args.quick else args.blocks
    rows = []
    for serializer in SERIALIZERS:
        for compressor in COMPRESSORS:
            ours = codec(RedisCache, "django_redis_rs", serializer, compressor)
            theirs = codec(DjangoRedisCache, "django_redis", serializer, compressor)
            for label, value in VALUES.items():
                if compressor.startswith("lzma") and label != "100 KB text":
                    continue  # lzma is slow; one value shows the ratio
                n = 3 if args.quick else max(20, int(200_000 / (len(repr(value)) + 200)))
                best = {"ours": float("inf"), "theirs": float("inf")}
                for _ in range(blocks):  # interleaved; keep each side's best block
                    best["ours"] = min(best["ours"], per_call_us(ours, value, n))
                    best["theirs"] = min(best["theirs"], per_call_us(theirs, value, n))
                rows.append(
                    {
                        "serializer": serializer.split(".")[0],
                        "compressor": compressor.split(".")[0],
                        "value": label,
                        "django_redis_rs_us": round(best["ours"], 2),
                        "django_redis_us": round(best["theirs"], 2),
                        "ratio": round(best["ours"] / best["theirs"], 3),
                    }
                )
                r = rows[-1]
                print(
                    f"{r['serializer']:8s} {r['compressor']:9s} {label:12s} "
                    f"ours {r['django_redis_rs_us']:9.2f} µs  django-redis "
                    f"{r['django_redis_us']:9.2f} µs  ratio {r['ratio']:.2f}x"
                )
    if args.quick:
        print(f"codecs bench smoke: {len(rows)} rows")
        return
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    meta = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
    }
    (out / "codecs.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "| serializer | compressor | value | django-redis-rs µs | django-redis µs | ratio |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['serializer']} | {r['compressor']} | {r['value']} | {r['django_redis_rs_us']} "
        f"| {r['django_redis_us']} | {r['ratio']:.2f}x |"
        for r in rows
    ]
    (out / "codecs.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'codecs.md'}")


if __name__ == "__main__":
    main()
