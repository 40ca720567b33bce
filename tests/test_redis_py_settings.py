"""The raw redis-py client is built from the cache's own settings: every LOCATION form, the
credentials, the timeouts, TLS, and the options that tune redis-py; ShardClient's per-shard
clients; django-redis's Valkey client path; one client per process; CLOSE_CONNECTION."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import django_redis.pool
import pytest
import redis
import valkey
from django.test import override_settings

from django_redis_rs.cache import RedisCache
from django_redis_rs.pool import ConnectionFactory
from tests.servers import Server, server_binary, tls_server


class RecordingRedis(redis.Redis):
    """A REDIS_CLIENT_CLASS of one's own, taking a REDIS_CLIENT_KWARGS of its own."""

    def __init__(self, *args: Any, marker: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.marker = marker


def raw(location: Any, **options: Any) -> Any:
    return RedisCache(location, {"OPTIONS": options}).client.get_client()


def kwargs_of(client: Any) -> dict[str, Any]:
    return dict(client.connection_pool.connection_kwargs)


@pytest.mark.parametrize("scheme", ["redis", "valkey"])
def test_location_forms(server: Server, scheme: str) -> None:
    conn = raw(f"{scheme}://127.0.0.1:{server.port}/2")
    assert kwargs_of(conn)["db"] == 2 and conn.ping()
    assert kwargs_of(raw(f"{scheme}://127.0.0.1:{server.port}?db=3"))["db"] == 3
    unix = raw(f"unix://{server.unix_socket}?db=4")
    unix.set("k", "v")
    assert kwargs_of(unix)["path"] == str(server.unix_socket) and kwargs_of(unix)["db"] == 4
    assert server.command("SELECT", "4") == b"+OK\r\n" and unix.get("k") == b"v"


def test_url_parameters_reach_redis_py(server: Server) -> None:
    conn = raw(
        f"redis://127.0.0.1:{server.port}/1?client_name=web&single_connection_client=true"
        "&health_check_interval=5&socket_keepalive=true"
    )
    assert conn.client_getname() == "web" and conn.connection is not None
    settings = kwargs_of(conn)
    assert (settings["health_check_interval"], settings["socket_keepalive"]) == (5, True)


def test_credentials_and_timeouts(server: Server) -> None:
    server.command("ACL", "SETUSER", "app", "on", ">s3cret", "~*", "+@all")
    try:
        url = f"redis://127.0.0.1:{server.port}"
        by_options = raw(
            url, USERNAME="app", PASSWORD="s3cret", SOCKET_TIMEOUT=2, SOCKET_CONNECT_TIMEOUT=1
        )
        assert by_options.acl_whoami() == "app"
        settings = kwargs_of(by_options)
        assert (settings["socket_timeout"], settings["socket_connect_timeout"]) == (2, 1)
        by_url = raw(f"redis://app:s3cret@127.0.0.1:{server.port}")
        assert by_url.acl_whoami() == "app"
        with pytest.raises(redis.exceptions.AuthenticationError):
            raw(url, USERNAME="app", PASSWORD="wrong").ping()
    finally:
        server.command("ACL", "DELUSER", "app")


def test_tls_options(server: Server, certs: Path) -> None:
    srv = tls_server(server.kind, certs, "no")
    try:
        port = srv.tls_port  # type: ignore[attr-defined]
        ca = {"ssl_ca_certs": str(certs / "ca.pem")}
        assert raw(f"rediss://localhost:{port}", CONNECTION_POOL_KWARGS=ca).ping()
        assert raw(f"valkeys://localhost:{port}", CONNECTION_POOL_KWARGS=ca).ping()
        with pytest.raises(redis.exceptions.ConnectionError):  # unknown CA, verified by default
            raw(f"rediss://localhost:{port}").ping()
        assert raw(f"rediss://127.0.0.1:{port}?ssl_cert_reqs=none").ping()
    finally:
        srv.cleanup()


def test_options_that_tune_redis_py(server: Server) -> None:
    url = f"redis://127.0.0.1:{server.port}"
    plain = raw(
        url,
        CONNECTION_POOL_KWARGS={"max_connections": 7, "timeout": 3, "retry_on_timeout": True},
        PARSER_CLASS="redis._parsers.resp2._RESP2Parser",
    )
    assert type(plain.connection_pool) is redis.ConnectionPool
    assert plain.connection_pool.max_connections == 7
    assert kwargs_of(plain)["parser_class"].__name__ == "_RESP2Parser"
    assert "timeout" not in kwargs_of(plain)  # the native pool's wait: no such redis-py option
    assert kwargs_of(plain)["retry_on_timeout"] is True
    blocking = raw(
        url,
        CONNECTION_POOL_CLASS="redis.BlockingConnectionPool",
        CONNECTION_POOL_KWARGS={"max_connections": 2, "timeout": 0.1},
        CONNECTION_POOL_CLASS_KWARGS={"client_name": "reports"},
        REDIS_CLIENT_CLASS="tests.test_redis_py_settings.RecordingRedis",
        REDIS_CLIENT_KWARGS={"marker": "mine"},
    )
    assert type(blocking) is RecordingRedis and blocking.marker == "mine"
    assert type(blocking.connection_pool) is redis.BlockingConnectionPool
    assert blocking.connection_pool.timeout == 0.1
    assert blocking.client_getname() == "reports"


def test_pools_are_shared_by_settings_not_by_url(server: Server) -> None:
    url = f"redis://127.0.0.1:{server.port}"
    assert raw(url).connection_pool is raw(url).connection_pool
    other = raw(url, SOCKET_TIMEOUT=3)
    assert other.connection_pool is not raw(url).connection_pool


def test_valkey_client_path(server: Server) -> None:
    client_class = "django_redis.client.valkey.DefaultValkeyClient"
    cache = RedisCache(
        f"valkey://127.0.0.1:{server.port}/1", {"OPTIONS": {"CLIENT_CLASS": client_class}}
    )
    cache.set("k", 5)
    conn = cache.client.get_client()
    assert type(conn) is valkey.Valkey and conn.get(":1:k") == b"5"


def test_shard_clients(server: Server) -> None:
    binary = server_binary(server.kind)
    assert binary is not None
    shards = [Server(server.kind, binary).start() for _ in range(3)]
    try:
        location = [f"{s.url}/1" for s in shards]
        cache = RedisCache(
            location, {"OPTIONS": {"CLIENT_CLASS": "django_redis.client.ShardClient"}}
        )
        client: Any = cache.client
        with pytest.raises(NotImplementedError):
            client.get_client()
        for i in range(30):
            cache.set(f"k{i}", i)
            key = cache.make_key(f"k{i}")
            conn = client.get_server(key)
            assert type(conn) is redis.Redis and conn.get(key) == str(i).encode()
            assert client.get_client(key=key) is conn
            port = kwargs_of(conn)["port"]
            assert client.get_server_name(key) == f"redis://127.0.0.1:{port}/1"
        assert set(client.get_servers()) == set(location)
        with cache.lock("job", lock_class=redis.lock.Lock, timeout=5):
            assert client.get_server(cache.make_key("job")).exists(cache.make_key("job"))
    finally:
        for srv in shards:
            srv.cleanup()


def test_a_forked_child_makes_its_own(server: Server) -> None:
    cache = RedisCache(f"{server.url}/1", {})
    parent = cache.client.get_client()
    parent.set("k", "parent")
    pid = os.fork()
    if pid == 0:  # the child: a new client and pool, which work
        code = 1
        try:
            child = cache.client.get_client()
            fresh = child is not parent and child.connection_pool is not parent.connection_pool
            code = 0 if fresh and child.get("k") == b"parent" else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.client.get_client() is parent and parent.get("k") == b"parent"


def test_close_connection_closes_the_raw_clients_too(server: Server) -> None:
    with override_settings(DJANGO_REDIS_CLOSE_CONNECTION=True):
        cache = RedisCache(f"{server.url}/1", {})
    conn = cache.client.get_client()
    conn.ping()
    [connection] = conn.connection_pool._available_connections
    assert connection._sock is not None
    cache.close()
    assert connection._sock is None  # disconnected
    assert cache.client.get_client() is not conn  # made anew on next use
    kept = RedisCache(f"{server.url}/1", {})
    kept_conn = kept.client.get_client()
    kept.close()
    assert kept.client.get_client() is kept_conn


class CountingFactory(ConnectionFactory):
    """A CONNECTION_FACTORY of one's own, on our factory."""

    made = 0

    def connect(self, url: str) -> Any:
        CountingFactory.made += 1
        return super().connect(url)


class TheirFactory(django_redis.pool.ConnectionFactory):  # type: ignore[type-arg]
    """One written for django-redis: its interface is ours."""


def test_a_connection_factory_of_ones_own(server: Server) -> None:
    CountingFactory.made = 0
    conn = raw(f"{server.url}/1", CONNECTION_FACTORY="tests.test_redis_py_settings.CountingFactory")
    assert CountingFactory.made == 1 and conn.ping()
    theirs = raw(f"{server.url}/1", CONNECTION_FACTORY="tests.test_redis_py_settings.TheirFactory")
    assert type(theirs) is redis.Redis and theirs.ping()
    assert theirs.connection_pool is not conn.connection_pool  # django-redis's own pools
