"""Server refusals on real servers: a full server (maxmemory, noeviction), a saturated one
(maxclients), ACL users without a permission, a read-only replica, and passwords. Each raises
redis-py's own class for it (ours subclass them), and IGNORE_EXCEPTIONS swallows them all, as
django-redis's does, counting each in ``metrics()["ignored_errors"]``."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis.exceptions
from django.test import override_settings

from django_redis_rs.cache import RedisCache
from tests.servers import Server, server_binary


@pytest.fixture
def full_server(server: Server) -> Iterator[Server]:
    """A server at maxmemory with the noeviction policy: every write is refused with OOM."""
    binary = server_binary(server.kind)
    assert binary is not None
    srv = Server(server.kind, binary, extra=["--maxmemory-policy", "noeviction"]).start()
    srv.command("SET", "ballast", "x" * 2_000_000)
    srv.command("SET", ":1:counter", "5")
    srv.command("CONFIG", "SET", "maxmemory", "1mb")
    yield srv
    srv.cleanup()


def test_a_full_server_raises_redis_pys_out_of_memory_error(full_server: Server) -> None:
    cache = RedisCache(full_server.url, {})
    for write in (
        lambda: cache.set("k", 1),
        lambda: cache.set_many({"a": 1, "b": 2}),
        lambda: cache.add("k", 1),
        lambda: asyncio.run(cache.aset("k", 1)),
        lambda: asyncio.run(cache.aset_many({"a": 1})),
    ):
        with pytest.raises(redis.exceptions.OutOfMemoryError) as raised:
            write()
        assert isinstance(raised.value, redis.exceptions.ResponseError)
        assert "maxmemory" in str(raised.value)
    assert cache.get("ballast") is None  # reads still work (it is not a pickle: a raw string)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        with cache.lock("lk", timeout=5):
            pass


IGNORED_WRITES: list[tuple[str, Callable[[RedisCache], Any], Any]] = [
    ("set", lambda c: c.set("k", 1), False),
    ("add", lambda c: c.add("k", 1), False),
    ("set_many", lambda c: c.set_many({"a": 1, "b": 2}), ["a", "b"]),
    ("incr", lambda c: c.incr("counter"), None),
    ("hset", lambda c: c.hset("h", "f", 1), 0),
    ("sadd", lambda c: c.sadd("s", 1), 0),
    ("lock", lambda c: c.lock("lk", timeout=5).acquire(blocking=False), False),
    ("aset", lambda c: asyncio.run(c.aset("k", 1)), False),
    ("aset_many", lambda c: asyncio.run(c.aset_many({"a": 1})), ["a"]),
    ("aadd", lambda c: asyncio.run(c.aadd("k", 1)), False),
    ("alock", lambda c: asyncio.run(c.alock("lk", timeout=5).aacquire(blocking=False)), False),
]


def test_ignore_exceptions_swallows_out_of_memory_and_counts_it(
    full_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS=True):
        cache = RedisCache(full_server.url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True}})
    with caplog.at_level(logging.ERROR):
        for name, call, neutral in IGNORED_WRITES:
            assert call(cache) == neutral, name
    assert cache.metrics()["ignored_errors"] == {"OutOfMemoryError": len(IGNORED_WRITES)}
    assert sum("Exception ignored" in r.message for r in caplog.records) == len(IGNORED_WRITES)
    # The server makes room: the next write is stored.
    full_server.command("CONFIG", "SET", "maxmemory", "0")
    assert cache.set("k", 1) is True
    assert asyncio.run(cache.aget("k")) == 1
    cache.reset_metrics()
    assert cache.metrics()["ignored_errors"] == {}


def test_ignore_exceptions_still_raises_what_django_redis_raises(make_cache) -> None:
    """Serializer errors, values over Redis's limit and configuration errors are not an outage:
    they raise under IGNORE_EXCEPTIONS too."""
    from django_redis_rs.exceptions import SerializerError

    cache = make_cache(options={"IGNORE_EXCEPTIONS": True})
    cache.client._native.execute(True, ("SET", ":1:bad", b"\x80\x05not a pickle"))
    with pytest.raises(SerializerError):
        cache.get("bad")
    with pytest.raises(SerializerError):
        asyncio.run(cache.aget("bad"))


class Saturated:
    """A server at maxclients 4 whose four client slots are taken by plain sockets: every new
    connection is refused. The first socket stays usable for commands of the test's own."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.held = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(4)]
        for s in self.held:
            s.sendall(b"PING\r\n")
            assert s.recv(100) == b"+PONG\r\n"
        self.url = srv.url

    def take_clients_again(self) -> None:
        self.held[0].sendall(b"CONFIG SET maxclients 10000\r\n")
        assert self.held[0].recv(100) == b"+OK\r\n"

    def close(self) -> None:
        for s in self.held:
            s.close()


@pytest.fixture
def saturated(server: Server) -> Iterator[Saturated]:
    binary = server_binary(server.kind)
    assert binary is not None
    srv = Server(server.kind, binary, extra=["--maxclients", "4"]).start()
    full = Saturated(srv)
    yield full
    full.close()
    srv.cleanup()


@pytest.mark.parametrize("db", [0, 2])
def test_max_clients_is_a_connection_error(saturated: Saturated, db: int) -> None:
    """redis-py classes the refusal as a ConnectionError: on db 0 without a password it is the
    first command's reply, otherwise the handshake's."""
    cache = RedisCache(f"{saturated.url}/{db}", {"OPTIONS": {"SOCKET_TIMEOUT": 2}})
    messages = []
    for call in (lambda: cache.get("k"), lambda: asyncio.run(cache.aget("k"))):
        for _ in range(3):
            with pytest.raises(redis.exceptions.ConnectionError) as raised:
                call()
            messages.append(str(raised.value))
    # The server writes its refusal and hangs up: a request written after the hang-up fails
    # with a broken pipe instead (a ConnectionError too, as with redis-py).
    assert any("max number of clients reached" in m for m in messages), messages


def storm_then_heal(cache: RedisCache, heal: Callable[[], None]) -> list[float]:
    """16 threads and an asyncio loop call the cache (IGNORE_EXCEPTIONS on) for a second while
    the server refuses; none may see an exception. Then `heal` makes the server serve again,
    and each worker's next write and read must succeed: returns how long each took."""
    raised: list[BaseException] = []
    recovered_after: list[float] = []
    healed = threading.Event()
    storm_until = time.monotonic() + 1.0

    def work(n: int) -> None:
        try:
            while time.monotonic() < storm_until:
                cache.set(f"k{n}", n)
                cache.get(f"k{n}", "default")
                cache.get_many([f"k{n}", "other"])
                cache.incr("counter") if n % 2 else cache.add(f"a{n}", n)
            healed.wait(10)
            began = time.monotonic()
            assert cache.set(f"k{n}", n) is True
            assert cache.get(f"k{n}") == n
            recovered_after.append(time.monotonic() - began)
        except BaseException as error:  # noqa: BLE001 - every escape is counted
            raised.append(error)

    async def awork() -> None:
        while time.monotonic() < storm_until:
            await asyncio.gather(*(cache.aget(f"a{i}", "d") for i in range(8)))
            await cache.aset("a", 1)
            await cache.aset_many({"b": 2, "c": 3})
        healed.wait(10)
        began = time.monotonic()
        assert await cache.aset("a", 1) is True
        assert await cache.aget("a") == 1
        recovered_after.append(time.monotonic() - began)

    def async_thread() -> None:
        try:
            asyncio.run(awork())
        except BaseException as error:  # noqa: BLE001
            raised.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    threads.append(threading.Thread(target=async_thread))
    for t in threads:
        t.start()
    while time.monotonic() < storm_until + 0.2:
        time.sleep(0.05)
    heal()
    healed.set()
    for t in threads:
        t.join(30)
    assert raised == []
    assert len(recovered_after) == 17
    assert max(recovered_after) < 1.0, recovered_after
    return recovered_after


def test_sixteen_threads_against_max_clients_get_no_exception_then_recover(
    saturated: Saturated,
) -> None:
    cache = RedisCache(saturated.url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_TIMEOUT": 2}})
    storm_then_heal(cache, saturated.take_clients_again)
    ignored = cache.metrics()["ignored_errors"]
    assert ignored.get("ConnectionError", 0) > 16, ignored


def test_sixteen_threads_against_a_full_server_get_no_exception_then_recover(
    full_server: Server,
) -> None:
    cache = RedisCache(
        full_server.url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_TIMEOUT": 2}}
    )
    storm_then_heal(cache, lambda: full_server.command("CONFIG", "SET", "maxmemory", "0"))
    ignored = cache.metrics()["ignored_errors"]
    assert ignored.get("OutOfMemoryError", 0) > 16, ignored


def test_ignore_exceptions_covers_shards(server: Server, full_server: Server) -> None:
    """Every topology goes through the one conversion: with one shard full, writes to it are
    ignored and the other shard's are stored."""
    cache = RedisCache(
        [server.url, full_server.url],
        {
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis_rs.client.ShardClient",
                "IGNORE_EXCEPTIONS": True,
            }
        },
    )
    results = {f"key{i}": cache.set(f"key{i}", i) for i in range(40)}
    assert set(results.values()) == {True, False}
    stored = cache.get_many(list(results))
    assert stored == {k: i for i, k in enumerate(results) if results[k]}
    # set_many's neutral value names every key (Django's "not stored"), the full shard's among them.
    unstored = set(cache.set_many(dict.fromkeys(results, 1)))
    assert unstored >= {k for k in results if not results[k]}
    assert cache.metrics()["ignored_errors"]["OutOfMemoryError"] >= 2


# --- passwords and ACL users -----------------------------------------------------------------


@pytest.fixture
def password_server(server: Server) -> Iterator[Server]:
    binary = server_binary(server.kind)
    assert binary is not None
    srv = Server(server.kind, binary, extra=["--requirepass", "s3cret-pw"]).start()
    acl = (
        "ACL SETUSER app on >app-pw ~* &* +@all\r\n"
        "ACL SETUSER reader on >reader-pw ~* &* -@all +get +mget +ping +eval\r\n"
    )
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"AUTH s3cret-pw\r\n" + acl.encode())
        replies = b""
        while replies.count(b"\r\n") < 3:
            replies += s.recv(100)
        assert replies == b"+OK\r\n" * 3, replies
    yield srv
    srv.cleanup()


def works(cache: RedisCache) -> bool:
    async def both() -> bool:
        return await cache.aset("ak", 2) and await cache.aget("ak") == 2

    return cache.set("k", 1) is True and cache.get("k") == 1 and asyncio.run(both())


@pytest.mark.parametrize("db", [0, 3])
def test_a_password_is_accepted_by_a_server_that_needs_none(server: Server, db: int) -> None:
    """As redis-py 8 does, the password goes with the user `default`, whom a server without a
    password lets in with any: a shared settings file with a password works on a developer's
    Redis without one."""
    assert works(RedisCache(f"{server.url}/{db}", {"OPTIONS": {"PASSWORD": "anything"}}))
    assert works(RedisCache(f"redis://:anything@127.0.0.1:{server.port}/{db}", {}))


@pytest.mark.parametrize("db", [0, 3])
def test_passwords_and_acl_users(password_server: Server, db: int) -> None:
    port = password_server.port
    assert works(RedisCache(f"redis://:s3cret-pw@127.0.0.1:{port}/{db}", {}))
    assert works(
        RedisCache(f"redis://127.0.0.1:{port}/{db}", {"OPTIONS": {"PASSWORD": "s3cret-pw"}})
    )
    assert works(RedisCache(f"redis://app:app-pw@127.0.0.1:{port}/{db}", {}))
    assert works(
        RedisCache(
            f"redis://127.0.0.1:{port}/{db}",
            {"OPTIONS": {"USERNAME": "app", "PASSWORD": "app-pw"}},
        )
    )


@pytest.mark.parametrize(
    "location",
    [
        "redis://:wrong-pw@127.0.0.1:{port}/{db}",
        "redis://app:wrong-pw@127.0.0.1:{port}/{db}",
        "redis://nobody:s3cret-pw@127.0.0.1:{port}/{db}",
        "redis://127.0.0.1:{port}/{db}",
    ],
)
@pytest.mark.parametrize("db", [0, 3])
def test_a_refused_password_is_an_authentication_error_without_the_secret(
    password_server: Server, location: str, db: int
) -> None:
    cache = RedisCache(location.format(port=password_server.port, db=db), {})
    for call in (
        lambda: cache.get("k"),
        lambda: cache.set("k", 1),
        lambda: asyncio.run(cache.aget("k")),
    ):
        with pytest.raises(redis.exceptions.AuthenticationError) as raised:
            call()
        assert isinstance(raised.value, redis.exceptions.ConnectionError)
        text = f"{raised.value!s} {raised.value!r} {raised.value.__cause__!r}"
        assert "wrong-pw" not in text and "s3cret-pw" not in text, text
    ignoring = RedisCache(
        location.format(port=password_server.port, db=db), {"OPTIONS": {"IGNORE_EXCEPTIONS": True}}
    )
    assert ignoring.get("k", "default") == "default"
    assert asyncio.run(ignoring.aget("k", "default")) == "default"
    assert ignoring.metrics()["ignored_errors"] == {"AuthenticationError": 2}


def test_an_acl_refusal_is_a_no_permission_error(password_server: Server) -> None:
    cache = RedisCache(f"redis://reader:reader-pw@127.0.0.1:{password_server.port}", {})
    assert cache.get("k") is None
    for call in (lambda: cache.set("k", 1), lambda: asyncio.run(cache.aset("k", 1))):
        with pytest.raises(redis.exceptions.NoPermissionError):
            call()
    with pytest.raises(redis.exceptions.NoPermissionError):
        cache.client.get_native_client().set("k", b"1")
    ignoring = RedisCache(
        f"redis://reader:reader-pw@127.0.0.1:{password_server.port}",
        {"OPTIONS": {"IGNORE_EXCEPTIONS": True}},
    )
    assert ignoring.set("k", 1) is False
    assert ignoring.metrics()["ignored_errors"] == {"NoPermissionError": 1}


def test_a_write_to_a_replica_is_a_read_only_error(server: Server, own_server: Server) -> None:
    own_server.command("REPLICAOF", "127.0.0.1", str(server.port))
    cache = RedisCache(own_server.url, {})
    for call in (lambda: cache.set("k", 1), lambda: asyncio.run(cache.aset("k", 1))):
        with pytest.raises(redis.exceptions.ReadOnlyError):
            call()
    ignoring = RedisCache(own_server.url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True}})
    assert ignoring.set("k", 1) is False
    assert asyncio.run(ignoring.aset("k", 1)) is False


def test_the_native_raw_client_raises_the_finer_classes(cache: RedisCache) -> None:
    raw = cache.client.get_native_client()
    with pytest.raises(redis.exceptions.NoScriptError):
        raw.execute_command("EVALSHA", "0" * 40, 0)
    raw.set("s", b"text")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE") as raised:
        raw.execute_command("LPUSH", "s", "x")
    assert type(raised.value).__name__ == "ResponseError"
