"""rediss://: certificates verified by default, CA / client-certificate / verification options."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_redis_rs.cache import RedisCache
from tests.helpers import OUTAGE
from tests.servers import Server, tls_server


@pytest.fixture
def tls(server: Server, certs: Path) -> Iterator[Server]:
    srv = tls_server(server.kind, certs, "no")
    yield srv
    srv.cleanup()


def cache(url: str, **pool: Any) -> RedisCache:
    return RedisCache(url, {"OPTIONS": {"CONNECTION_POOL_KWARGS": pool, "SOCKET_TIMEOUT": 5}})


def test_verified_with_the_ca(tls: Server, certs: Path) -> None:
    c = cache(f"rediss://localhost:{tls.tls_port}", ssl_ca_certs=str(certs / "ca.pem"))
    assert c.set("k", "over tls") is True
    assert c.get("k") == "over tls"


def test_unknown_ca_is_refused_by_default(tls: Server) -> None:
    with pytest.raises(OUTAGE) as info:
        cache(f"rediss://localhost:{tls.tls_port}").get("k")
    assert "certificate" in str(info.value).lower()


def test_hostname_is_checked(tls: Server, certs: Path) -> None:
    url = f"rediss://127.0.0.1:{tls.tls_port}"
    with pytest.raises(OUTAGE):
        cache(url, ssl_ca_certs=str(certs / "ca.pem")).get("k")
    relaxed = cache(url, ssl_ca_certs=str(certs / "ca.pem"), ssl_check_hostname=False)
    assert relaxed.get("k") is None


def test_verification_can_be_turned_off(tls: Server) -> None:
    assert cache(f"rediss://127.0.0.1:{tls.tls_port}", ssl_cert_reqs=None).get("k") is None
    assert RedisCache(f"rediss://127.0.0.1:{tls.tls_port}?ssl_cert_reqs=none", {}).get("k") is None


def test_client_certificates(server: Server, certs: Path) -> None:
    srv = tls_server(server.kind, certs, "yes")
    try:
        url = f"rediss://localhost:{srv.tls_port}"  # type: ignore[attr-defined]
        with pytest.raises(OUTAGE):
            cache(url, ssl_ca_certs=str(certs / "ca.pem")).get("k")
        mutual = cache(
            url,
            ssl_ca_certs=str(certs / "ca.pem"),
            ssl_certfile=str(certs / "client.pem"),
            ssl_keyfile=str(certs / "client.key"),
        )
        assert mutual.set("k", 1) is True
    finally:
        srv.cleanup()


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        ({"ssl_cert_reqs": "sometimes"}, "ssl_cert_reqs"),
        ({"ssl_ca_certs": "/nonexistent/ca.pem"}, "ssl_ca_certs"),
        ({"ssl_certfile": "/nonexistent/c.pem"}, "ssl_keyfile"),
        ({"ssl_check_hostname": "no"}, "ssl_check_hostname"),
    ],
)
def test_bad_tls_options(pool: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        cache("rediss://localhost:1", **pool).get("k")
