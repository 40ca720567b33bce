"""SIGNED_VALUES: each cache value is stored with an HMAC of its full Redis key and its stored
bytes, keyed from SECRET_KEY (SECRET_KEY_FALLBACKS verify too). A value someone else wrote, or
copied from another key, is a miss: counted, logged, and never decompressed or decoded."""

from __future__ import annotations

import asyncio
import logging
import pickle
import zlib
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_redis_rs.exceptions import CompressorError
from tests.servers import Server
from tests.test_safe_pickle import Forged, plant
from tests.test_session import sessions_on

MAGIC = b"\x00SV1"
SIGNED = {"SIGNED_VALUES": True}


def stored(cache: Any, key: str) -> bytes | None:
    return cache.client._native.execute(False, ("GET", cache.make_key(key)))  # type: ignore[no-any-return]


def failures(cache: Any) -> int:
    return cache.metrics()["signature_failures"]  # type: ignore[no-any-return]


def test_values_round_trip_signed_on_every_path(make_cache: Any) -> None:
    cache = make_cache(options=SIGNED)
    value = {"user": 7, "items": [{"sku": "a-1", "qty": 2}], "html": "<p>é</p>" * 20}
    cache.set("one", value)
    cache.set_many({"two": [1, 2], "three": "text"})
    assert cache.add("four", 4.5)
    assert cache.get_or_set("five", lambda: {"made": True}) == {"made": True}
    for key in ("one", "two", "three", "four", "five"):
        assert stored(cache, key).startswith(MAGIC), key  # type: ignore[union-attr]
    assert cache.get("one") == value
    assert cache.get_many(["one", "two", "three", "missing"]) == {
        "one": value,
        "two": [1, 2],
        "three": "text",
    }
    assert cache.get_or_set("five", lambda: "not called") == {"made": True}
    big = bytes(range(256)) * 400  # 100 KB: signed and checked with the GIL released
    cache.set("big", big)
    assert cache.get("big") == big

    async def async_side() -> tuple[Any, ...]:
        await cache.aset("six", {"async": 1})
        await cache.aset_many({"seven": (1, 2)})
        return (
            await cache.aget("six"),
            await cache.aget_many(["six", "seven", "one"]),
            await cache.aget("missing", "dflt"),
        )

    six, many, missing = asyncio.run(async_side())
    assert six == {"async": 1}
    assert many == {"six": {"async": 1}, "seven": (1, 2), "one": value}
    assert missing == "dflt"
    assert stored(cache, "six").startswith(MAGIC)  # type: ignore[union-attr]
    assert failures(cache) == 0


def test_a_forged_pickle_is_a_miss_and_never_runs(
    make_cache: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(options=SIGNED)
    marker = tmp_path / "ran"
    forged = pickle.dumps(Forged(marker))
    plant(cache, "unsigned", forged)
    plant(cache, "bad-tag", MAGIC + b"\x00" * 32 + forged)
    plant(cache, "cut", MAGIC + b"\x01" * 7)
    with caplog.at_level(logging.WARNING, logger="django_redis_rs.signing"):
        assert cache.get("unsigned", "default") == "default"
        assert cache.get("bad-tag") is None
        assert cache.get("cut", 0) == 0
        assert cache.get_many(["unsigned", "bad-tag", "cut"]) == {}
        assert asyncio.run(cache.aget("bad-tag", "d")) == "d"
        assert asyncio.run(cache.aget_many(["unsigned"])) == {}
        # A miss, but the key exists: get_or_set's add (SET NX) leaves it, as Django's would.
        assert cache.get_or_set("bad-tag", "fresh") == "fresh"
    assert not marker.exists()
    messages = [r.getMessage() for r in caplog.records if r.name == "django_redis_rs.signing"]
    assert failures(cache) == len(messages) >= 8  # get_or_set reads again after its add
    assert cache.get("bad-tag") is None
    cache.set("bad-tag", "fresh")  # set replaces it
    assert cache.get("bad-tag") == "fresh"
    cache.reset_metrics()
    assert failures(cache) == 0
    assert any(":1:unsigned" in m and "not signed" in m for m in messages)
    assert any(":1:bad-tag" in m and "does not match" in m for m in messages)
    assert not any("os" in m and "system" in m for m in messages)  # never the value


def test_a_value_copied_to_another_key_is_refused(make_cache: Any) -> None:
    cache = make_cache(options=SIGNED)
    cache.set("session-alice", {"user_id": 1, "is_staff": True})
    plant(cache, "session-mallory", stored(cache, "session-alice"))  # type: ignore[arg-type]
    assert cache.get("session-mallory") is None
    assert cache.get("session-alice") == {"user_id": 1, "is_staff": True}
    # Another cache on the same server with another KEY_PREFIX stores under other full keys.
    other = make_cache(options=SIGNED, KEY_PREFIX="other")
    plant(other, "session-alice", stored(cache, "session-alice"))  # type: ignore[arg-type]
    assert other.get("session-alice") is None


def test_checked_before_decompression(make_cache: Any) -> None:
    """An unsigned decompression bomb is a miss, not even inflated; unsigned, it is refused
    only at the size limit."""
    options = {
        "COMPRESSOR": "django_redis_rs.compressors.zlib.ZlibCompressor",
        "COMPRESSOR_MAX_DECOMPRESSED_SIZE": 100_000,
    }
    bomb = zlib.compress(pickle.dumps("\x00" * 2_000_000))
    unsigned = make_cache(options=options)
    plant(unsigned, "bomb", bomb)
    with pytest.raises(CompressorError):
        unsigned.get("bomb")
    signed = make_cache(options={**options, **SIGNED})
    assert signed.get("bomb") is None
    signed.set("big", "x" * 50_000)  # compressed, then signed: both directions still work
    assert zlib.decompress(stored(signed, "big")[36:])  # type: ignore[index]
    assert signed.get("big") == "x" * 50_000


def test_transition_reads_unsigned_and_writes_signed(make_cache: Any) -> None:
    before = make_cache()
    before.set("old", {"written": "before"})
    transition = make_cache(options={"SIGNED_VALUES": "transition"})
    assert transition.get("old") == {"written": "before"}
    transition.set("new", {"written": "during"})
    assert stored(transition, "new").startswith(MAGIC)  # type: ignore[union-attr]
    assert transition.get("new") == {"written": "during"}
    plant(transition, "forged", MAGIC + b"\x00" * 32 + pickle.dumps("x"))
    assert transition.get("forged") is None  # a signed value is still checked
    assert failures(transition) == 1
    # Once transition is over, the unsigned value left from before is a miss.
    strict = make_cache(options=SIGNED)
    assert strict.get("old") is None
    assert strict.get("new") == {"written": "during"}


def test_secret_rotation_with_fallbacks(make_cache: Any) -> None:
    with override_settings(SECRET_KEY="old-secret"):
        old = make_cache(options=SIGNED)
    old.set("k", [1, 2, 3])
    with override_settings(SECRET_KEY="new-secret", SECRET_KEY_FALLBACKS=["old-secret"]):
        rotated = make_cache(options=SIGNED)
    assert rotated.get("k") == [1, 2, 3]
    rotated.set("k2", "new")
    assert old.get("k2") is None  # signed with the new secret
    with override_settings(SECRET_KEY="new-secret", SECRET_KEY_FALLBACKS=[]):
        done = make_cache(options=SIGNED)
    assert done.get("k") is None
    assert done.get("k2") == "new"
    with override_settings(MY_CACHE_SECRET="own", MY_CACHE_SECRET_FALLBACKS=["new-secret"]):
        named = make_cache(options={**SIGNED, "SIGNED_VALUES_SECRET": "MY_CACHE_SECRET"})
    assert named.get("k2") == "new"


def test_integers_stay_unsigned_for_incr(make_cache: Any) -> None:
    cache = make_cache(options=SIGNED)
    cache.set("n", 41)
    assert stored(cache, "n") == b"41"
    assert cache.incr("n") == 42
    assert asyncio.run(cache.aincr("n", 8)) == 50
    cache.set("big", 2**70)
    assert cache.get("big") == 2**70
    # The documented limit: whoever can write to Redis can plant an integer (it runs nothing).
    plant(cache, "planted", b"7")
    assert cache.get("planted") == 7
    cache.set("f", 1.5)
    assert cache.incr("f") == 2.5  # the fallback stores the sum signed
    assert stored(cache, "f").startswith(MAGIC)  # type: ignore[union-attr]
    assert failures(cache) == 0


def test_incr_version_re_signs_for_the_new_key(make_cache: Any) -> None:
    cache = make_cache(options=SIGNED)
    cache.set("v", {"a": 1}, timeout=300)
    assert cache.incr_version("v") == 2
    assert cache.get("v", version=2) == {"a": 1}
    assert cache.get("v", version=1) is None
    assert 0 < cache.ttl("v", version=2) <= 300
    assert failures(cache) == 0


def test_local_hits_are_checked_too(make_cache: Any) -> None:
    from tests.test_client_side_cache import kept, local

    cache = make_cache(KEY_PREFIX="csc", options={**SIGNED, "CLIENT_SIDE_CACHE": {"ttl": 30}})
    cache.set("k", {"a": 1})
    kept(cache, "k")
    hits, get_hits = local(cache)["hits"], cache.metrics()["get"]["hits"]
    assert cache.get("k") == {"a": 1}
    assert asyncio.run(cache.aget("k")) == {"a": 1}
    assert cache.get_many(["k"]) == {"k": {"a": 1}}
    assert local(cache)["hits"] == hits + 3
    assert cache.metrics()["get"]["hits"] == get_hits + 2  # get and aget (not get_many)
    assert failures(cache) == 0
    # What the local cache holds is what Redis held: a copy from another key is refused too.
    plant(cache, "copy", stored(cache, "k"))  # type: ignore[arg-type]
    kept_before = local(cache)["hits"]
    assert cache.get("copy") is None and cache.get("copy") is None
    assert failures(cache) == 2
    assert local(cache)["hits"] >= kept_before


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"SIGNED_VALUES": "yes"}, "SIGNED_VALUES"),
        ({"SIGNED_VALUES": 1}, "SIGNED_VALUES"),
        ({"SIGNED_VALUES_SECRET": "SECRET_KEY"}, "SIGNED_VALUES_SECRET"),
        ({**SIGNED, "SIGNED_VALUES_SECRET": "not a name"}, "SIGNED_VALUES_SECRET"),
        ({**SIGNED, "SIGNED_VALUES_SECRET": "UNSET_SETTING"}, "SIGNED_VALUES_SECRET"),
    ],
)
def test_bad_settings_name_the_option(options: Any, named: str) -> None:
    from django_redis_rs.cache import RedisCache

    cache = RedisCache("redis://127.0.0.1:1", {"OPTIONS": options})
    with pytest.raises(ImproperlyConfigured, match=named):
        cache.get("k")


def test_an_empty_secret_is_refused_without_showing_any() -> None:
    from django_redis_rs.cache import RedisCache

    with override_settings(SECRET_KEY="top-secret", SECRET_KEY_FALLBACKS=[""]):
        cache = RedisCache("redis://127.0.0.1:1", {"OPTIONS": SIGNED})
    with pytest.raises(ImproperlyConfigured, match="SIGNED_VALUES_SECRET") as refused:
        cache.get("k")
    assert "top-secret" not in str(refused.value)


def test_sessions_are_bound_to_their_key(server: Server) -> None:
    from django_redis_rs.session import SessionStore

    with sessions_on(server, OPTIONS=SIGNED):
        admin = SessionStore()
        admin["_auth_user_id"] = "1"
        admin.save()
        mallory = SessionStore()
        mallory["_auth_user_id"] = "666"
        mallory.save()
        native = admin._native
        admin_key = admin._key(admin.session_key)  # type: ignore[arg-type]
        mallory_key = mallory._key(mallory.session_key)  # type: ignore[arg-type]
        data = native.execute(False, ("GET", admin_key))
        assert data.startswith(MAGIC)
        native.execute(True, ("SET", mallory_key, data))  # the admin's session, copied
        assert SessionStore(mallory.session_key).load() == {}
        assert SessionStore(admin.session_key).load() == {"_auth_user_id": "1"}
        assert asyncio.run(SessionStore(admin.session_key).aload()) == {"_auth_user_id": "1"}


def test_without_signing_signed_values_are_still_read(make_cache: Any, server: Server) -> None:
    """Turning SIGNED_VALUES off, or a rolling deploy in which some workers still run without
    it, reads what the others signed (unchecked: off protects nothing)."""
    signed = make_cache(options=SIGNED)
    signed.set("k", {"a": 1})
    signed.set_many({"m": [1, 2]})
    plain = make_cache()
    assert plain.get("k") == {"a": 1}
    assert plain.get_many(["k", "m"]) == {"k": {"a": 1}, "m": [1, 2]}
    assert asyncio.run(plain.aget("k")) == {"a": 1}
    assert plain.metrics()["signature_failures"] == 0
    # A forged signed value is read too when signing is off: the option is what protects.
    plant(plain, "forged", MAGIC + b"\x00" * 32 + pickle.dumps("read"))
    assert plain.get("forged") == "read"
