"""SentinelClient against a real primary, replica and sentinel, including a failover."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_redis_rs.cache import RedisCache
from tests.helpers import OUTAGE
from tests.servers import SERVICE, SentinelDeployment, Server, free_port, server_binary, wait_for

Deployment = SentinelDeployment


@pytest.fixture
def deployment(server: Server) -> Iterator[Deployment]:
    binary = server_binary(server.kind)
    assert binary is not None
    d = Deployment(server.kind, binary)
    yield d
    d.cleanup()


def replicated(d: Deployment, key: str) -> None:
    """Wait until the replica has the key (reads go to it)."""
    wait_for(lambda: d.replica.command("EXISTS", key) == b":1\r\n", f"{key} on the replica")


def test_writes_to_the_primary_reads_from_the_replica(deployment: Deployment) -> None:
    cache = RedisCache(f"redis://{SERVICE}/0", {"OPTIONS": deployment.options()})
    assert cache.set("k", "v") is True
    replicated(deployment, ":1:k")
    assert deployment.primary.command("EXISTS", ":1:k") == b":1\r\n"
    before = deployment.replica.command("INFO", "commandstats").count(b"cmdstat_get:")
    assert cache.get("k") == "v"
    assert before <= 1
    assert b"cmdstat_get:" in deployment.replica.command("INFO", "commandstats")
    assert cache.incr("n", ignore_key_check=True) == 1


def test_writes_resume_after_a_failover(deployment: Deployment) -> None:
    cache = RedisCache(f"redis://{SERVICE}/0", {"OPTIONS": deployment.options()})
    cache.set("before", 1)
    replicated(deployment, ":1:before")
    assert b"OK" in deployment.ask("FAILOVER", SERVICE)
    wait_for(lambda: deployment.primary_port() == deployment.replica.port, "the failover")
    # Until sentinel demotes it, the old primary still takes writes (Redis replication is
    # asynchronous; that window is Sentinel's, not the client's). Once it is a replica, it
    # answers READONLY and the client must find the new primary.
    wait_for(
        lambda: b"role:slave" in deployment.primary.command("INFO", "replication"),
        "the old primary to become a replica",
    )
    failures = 0
    deadline = time.monotonic() + 20
    while True:  # at most the call that meets the old connection fails; later ones go through
        try:
            assert cache.set("after", 2) is True
            break
        except OUTAGE:
            failures += 1
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert failures <= 2
    assert deployment.replica.command("GET", ":1:after") == b"$1\r\n2\r\n"  # the new primary
    assert cache.incr("before") == 2


def test_writes_resume_after_the_primary_is_killed(deployment: Deployment) -> None:
    """SIGKILL, not a polite failover: sentinel notices (down-after 1 s), promotes the replica,
    and the client's next discovery finds it."""
    cache = RedisCache(f"redis://{SERVICE}/0", {"OPTIONS": deployment.options()})
    cache.set("before", 1)
    replicated(deployment, ":1:before")
    deployment.primary.kill()
    killed_at = time.monotonic()
    failures = 0
    while True:
        try:
            assert cache.set("after", 2) is True
            break
        except OUTAGE:
            failures += 1
            assert time.monotonic() - killed_at < 30, "no failover"
            time.sleep(0.1)
    print(f"writes resumed {time.monotonic() - killed_at:.1f} s after the kill")
    assert failures > 0
    assert deployment.primary_port() == deployment.replica.port
    assert cache.incr("before") == 2
    assert deployment.replica.command("GET", ":1:after") == b"$1\r\n2\r\n"


def test_django_redis_connection_factory_style(deployment: Deployment) -> None:
    options = deployment.options()
    options.pop("CLIENT_CLASS")
    with override_settings(
        DJANGO_REDIS_CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory"
    ):
        cache = RedisCache(
            [f"redis://{SERVICE}/0?is_master=1", f"redis://{SERVICE}/0?is_master=0"],
            {"OPTIONS": options},
        )
    cache.set("k", 1)
    replicated(deployment, ":1:k")
    assert cache.get("k") == 1
    assert deployment.primary.command("EXISTS", ":1:k") == b":1\r\n"


def test_sentinel_password(server: Server) -> None:
    binary = server_binary(server.kind)
    assert binary is not None
    # A password-protected sentinel: wrong or missing SENTINEL_KWARGS fail, the right one works.
    srv = Server(server.kind, binary).start()
    sentinel = Server(server.kind, binary)
    conf = sentinel.dir / "sentinel.conf"
    conf.write_text(f"sentinel monitor {SERVICE} 127.0.0.1 {srv.port} 1\nrequirepass s3cret\n")
    sentinel.leading = [str(conf), "--sentinel"]
    sentinel.start()
    try:
        base = {
            "CLIENT_CLASS": "django_redis_rs.client.SentinelClient",
            "SENTINELS": [("127.0.0.1", sentinel.port)],
        }
        with pytest.raises(OUTAGE) as info:
            RedisCache(f"redis://{SERVICE}/0", {"OPTIONS": base}).get("k")
        assert "s3cret" not in str(info.value)
        ok = RedisCache(
            f"redis://{SERVICE}/0", {"OPTIONS": {**base, "SENTINEL_KWARGS": {"password": "s3cret"}}}
        )
        assert ok.set("k", 1) is True
        # the raw client asks the sentinel with the same SENTINEL_KWARGS
        assert ok.client.get_client().get(":1:k") == b"1"
        with pytest.raises(redis.exceptions.ConnectionError):  # MasterNotFoundError
            RedisCache(f"redis://{SERVICE}/0", {"OPTIONS": base}).client.get_client().ping()
    finally:
        sentinel.cleanup()
        srv.cleanup()


@pytest.mark.parametrize(
    "options",
    [
        {"SENTINELS": []},
        {"SENTINELS": ["127.0.0.1:26379"]},
        {"SENTINELS": [("127.0.0.1", 26379)], "SENTINEL_KWARGS": {"bogus": 1}},
    ],
)
def test_bad_sentinel_settings(options: dict[str, Any]) -> None:
    with pytest.raises(ImproperlyConfigured, match="SENTINEL"):
        RedisCache(
            f"redis://{SERVICE}/0",
            {"OPTIONS": {"CLIENT_CLASS": "django_redis.client.SentinelClient", **options}},
        ).get("k")


def test_sentinels_over_tls(server: Server, certs: Path) -> None:
    """SENTINEL_KWARGS {"ssl": True}: TLS to the sentinels, verified as the data connections
    are (here the primary speaks plain TCP); the raw client asks them the same way."""
    binary = server_binary(server.kind)
    assert binary is not None
    primary = Server(server.kind, binary).start()
    sentinel = Server(server.kind, binary)
    tls_port = free_port()
    conf = sentinel.dir / "sentinel.conf"
    conf.write_text(
        f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 1\n"
        f"tls-port {tls_port}\ntls-cert-file {certs / 'server.pem'}\n"
        f"tls-key-file {certs / 'server.key'}\ntls-ca-cert-file {certs / 'ca.pem'}\n"
        "tls-auth-clients no\n"
    )
    sentinel.leading = [str(conf), "--sentinel"]
    try:
        try:
            sentinel.start()
        except RuntimeError as e:
            if "tls" in str(e).lower():
                pytest.skip(f"this {server.kind} binary is built without TLS")
            raise
        ca = str(certs / "ca.pem")
        base = {
            "CLIENT_CLASS": "django_redis_rs.client.SentinelClient",
            "SENTINELS": [("localhost", tls_port)],
            "SOCKET_TIMEOUT": 2,
        }
        verified = {**base, "SENTINEL_KWARGS": {"ssl": True, "ssl_ca_certs": ca}}
        cache = RedisCache(f"redis://{SERVICE}/0", {"OPTIONS": verified})
        assert cache.set("k", "over tls") is True and cache.get("k") == "over tls"
        assert cache.client.get_client().get(":1:k") is not None
        # The CA may come from CONNECTION_POOL_KWARGS, as for the data connections.
        shared = {
            **base,
            "SENTINEL_KWARGS": {"ssl": True},
            "CONNECTION_POOL_KWARGS": {"ssl_ca_certs": ca},
        }
        assert RedisCache(f"redis://{SERVICE}/0", {"OPTIONS": shared}).get("k") == "over tls"
        for refused in ({"ssl": True}, {}):  # an unknown CA; plain TCP to a TLS port
            options = {**base, "SENTINEL_KWARGS": refused}
            with pytest.raises(OUTAGE):
                RedisCache(f"redis://{SERVICE}/0", {"OPTIONS": options}).get("k")
    finally:
        sentinel.cleanup()
        primary.cleanup()
