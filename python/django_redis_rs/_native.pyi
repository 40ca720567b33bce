"""Type stubs for the native module (checked against it by ``mypy.stubtest``)."""

from collections.abc import Awaitable, Iterable
from typing import Any, TypeAlias, final

__all__ = [
    "Client",
    "compress",
    "decompress",
    "dumps",
    "loads",
    "CompressorError",
    "ConfigError",
    "ConnectionInterrupted",
    "SerializerError",
    "ValueTooLargeError",
    "REPLY_RAW",
    "REPLY_INT",
    "REPLY_BOOL",
    "REPLY_VALUE",
    "REPLY_VALUES",
    "REPLY_VALUE_SET",
    "REPLY_STRINGS",
    "REPLY_FLOAT",
    "REPLY_SCORED",
    "REPLY_BOOLS",
    "__version__",
]

__version__: str

REPLY_RAW: int
REPLY_INT: int
REPLY_BOOL: int
REPLY_VALUE: int
REPLY_VALUES: int
REPLY_VALUE_SET: int
REPLY_STRINGS: int
REPLY_FLOAT: int
REPLY_SCORED: int
REPLY_BOOLS: int

class ConnectionInterrupted(Exception): ...
class SerializerError(Exception): ...
class CompressorError(Exception): ...
class ValueTooLargeError(ValueError): ...
class ConfigError(ValueError): ...

_Key: TypeAlias = str | bytes

def dumps(spec: tuple[Any, ...] | object, value: Any) -> bytes: ...
def loads(spec: tuple[Any, ...] | object, data: bytes) -> Any: ...
def compress(spec: tuple[Any, ...], data: bytes) -> bytes: ...
def decompress(spec: tuple[Any, ...], data: bytes) -> bytes: ...

@final
class Client:
    def __new__(
        cls,
        locations: list[str],
        *,
        socket_timeout: float | None = None,
        connect_timeout: float | None = None,
        max_connections: int | None = None,
        pool_timeout: float | None = None,
        username: str | None = None,
        password: str | None = None,
        serializer: tuple[Any, ...] | object | None = None,
        compressor: tuple[Any, ...] | object | None = None,
        shard_names: list[str] | None = None,
        sentinels: list[tuple[str, int]] | None = None,
        sentinel_username: str | None = None,
        sentinel_password: str | None = None,
        read_from_replicas: bool = True,
        cluster: bool = False,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_verify_peer: bool = True,
        ssl_check_hostname: bool = True,
        health_check_interval: float | None = None,
        circuit_breaker: tuple[int, float] | None = None,
        key_prefix: str | None = None,
        client_side_cache: tuple[int, int, float] | None = None,
        tracking_prefix: str | None = None,
        sentinel_tls: tuple[str | None, str | None, str | None, bool, bool] | None = None,
    ) -> Client: ...
    @property
    def servers(self) -> list[str]: ...
    @property
    def node_count(self) -> int: ...
    def get(self, key: _Key, default: Any | None = None) -> Any: ...
    def set(
        self,
        key: _Key,
        value: Any,
        timeout_ms: int | None = None,
        nx: bool = False,
        xx: bool = False,
    ) -> bool: ...
    def touch(self, key: _Key, timeout_ms: int | None = None) -> bool: ...
    def delete(self, key: _Key) -> int: ...
    def has_key(self, key: _Key) -> bool: ...
    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]: ...
    def set_many(
        self, items: dict[Any, Any], timeout_ms: int | None = None, version: int | None = None
    ) -> None: ...
    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> int: ...
    def incr(self, key: _Key, delta: int = 1, ignore_key_check: bool = False) -> int | None: ...
    def delete_pattern(self, pattern: _Key, itersize: int | None = None) -> int: ...
    def scan(
        self, cursor: int, pattern: _Key, count: int | None = None, node: int = 0
    ) -> tuple[int, list[str]]: ...
    def keys(self, pattern: _Key) -> list[str]: ...
    def clear(self) -> None: ...
    def execute(
        self,
        write: bool,
        args: tuple[Any, ...],
        reply: int = 0,
        keys: list[str | bytes] | None = None,
    ) -> Any: ...
    def pipeline(self, commands: list[tuple[Any, ...]], write: bool = True) -> list[Any]: ...
    def same_node(self, keys: list[str | bytes]) -> bool: ...
    def shard_of(self, key: _Key) -> int | None: ...
    def aexecute(
        self,
        write: bool,
        args: tuple[Any, ...],
        reply: int = 0,
        keys: list[str | bytes] | None = None,
    ) -> Awaitable[Any]: ...
    def aget(self, key: _Key, default: Any | None = None) -> Awaitable[Any]: ...
    def aset(
        self,
        key: _Key,
        value: Any,
        timeout_ms: int | None = None,
        nx: bool = False,
        xx: bool = False,
    ) -> Awaitable[bool]: ...
    def atouch(self, key: _Key, timeout_ms: int | None = None) -> Awaitable[bool]: ...
    def adelete(self, key: _Key) -> Awaitable[int]: ...
    def ahas_key(self, key: _Key) -> Awaitable[bool]: ...
    def aincr(
        self, key: _Key, delta: int = 1, ignore_key_check: bool = False
    ) -> Awaitable[int | None]: ...
    def aget_many(
        self, keys: Iterable[Any], version: int | None = None
    ) -> Awaitable[dict[Any, Any]]: ...
    def aset_many(
        self, items: dict[Any, Any], timeout_ms: int | None = None, version: int | None = None
    ) -> Awaitable[None]: ...
    def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> Awaitable[int]: ...
    def aclear(self) -> Awaitable[None]: ...
    def akeys(self, pattern: _Key) -> Awaitable[list[str]]: ...
    def ascan(
        self, cursor: int, pattern: _Key, count: int | None = None, node: int = 0
    ) -> Awaitable[tuple[int, list[str]]]: ...
    def adelete_pattern(self, pattern: _Key, itersize: int | None = None) -> Awaitable[int]: ...
    def encode(self, value: Any) -> bytes: ...
    def encode_member(self, value: Any) -> bytes: ...
    def decode(self, data: bytes) -> Any: ...
    def close(self) -> None: ...
    def pool_stats(self) -> dict[str, dict[str, Any]]: ...
    def metrics(self) -> dict[str, Any]: ...
    def reset_metrics(self) -> None: ...
