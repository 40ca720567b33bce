"""The raw clients of a cache client: redis-py's, as django-redis gives them
(``get_client``, ``get_client_with_index``, ``get_next_client_index``, ``connect``,
``disconnect``), built by the connection factories of ``pool.py``; and the native raw client
(``get_native_client``)."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django_redis_rs import _native
from django_redis_rs.options import sentinel_factory_configured
from django_redis_rs.pool import REDIS_PY, ConnectionFactory, Library, connection_factory

if TYPE_CHECKING:
    from django_redis_rs.raw import RawClient


class RawClients:
    """Mixed into ``DefaultClient``: one raw client per server, made on first use, once per
    process."""

    # The library whose clients get_client() returns.
    library: Library = REDIS_PY
    _options: Mapping[str, Any]
    _native: _native.Client

    def _init_raw_clients(self) -> None:
        # What get_client() connects to, index by index, as django-redis lays it out.
        self._raw_urls = self._redis_py_urls()
        self._clients: list[Any] = [None] * len(self._raw_urls)
        self._clients_pid = os.getpid()
        self._connection_factory: ConnectionFactory | None = None

    def _redis_py_urls(self) -> list[str]:
        """The URLs of get_client()'s servers: LOCATION's, primary first."""
        return self._native.locations

    # ---- raw clients: redis-py's, as django-redis gives them -------------------------------

    @property
    def connection_factory(self) -> ConnectionFactory:
        """Builds the raw clients (``pool.py``); made on first use, as it imports redis-py."""
        if self._connection_factory is None:
            self._connection_factory = connection_factory(
                self._options, self.library, self._uses_sentinel
            )
        return self._connection_factory

    @property
    def _uses_sentinel(self) -> bool:
        """Whether Sentinel names the servers (django-redis's ``SentinelConnectionFactory``)."""
        return sentinel_factory_configured(self._options)

    def get_next_client_index(self, write: bool = True, tried: list[int] | None = None) -> int:
        """django-redis's choice: the primary (0) for writes, a random replica for reads, one
        not yet ``tried`` when some were."""
        count = len(self._raw_urls)
        if tried and len(tried) < count:
            return random.choice([i for i in range(count) if i not in tried])
        if write or count == 1:
            return 0
        return random.randint(1, count - 1)

    def get_client(
        self, write: bool = True, tried: list[int] | None = None, show_index: bool = False
    ) -> Any:
        """A redis-py client (``redis.Redis``) on the server django-redis would pick; with
        ``show_index``, ``(client, index)``."""
        client, index = self.get_client_with_index(write, tried)
        return (client, index) if show_index else client

    def get_client_with_index(
        self, write: bool = True, tried: list[int] | None = None
    ) -> tuple[Any, int]:
        index = self.get_next_client_index(write=write, tried=tried)
        return self._client_at(index), index

    def _made_clients(self) -> list[Any]:
        """The raw clients made in this process, by server index (None: not yet). A forked
        child starts with none: redis-py's pools would reset themselves, but not our list."""
        if self._clients_pid != os.getpid():
            self._clients = [None] * len(self._raw_urls)
            self._clients_pid = os.getpid()
        return self._clients

    def _client_at(self, index: int) -> Any:
        """The raw client of server ``index``, made on first use."""
        clients = self._made_clients()
        if clients[index] is None:
            clients[index] = self._new_raw_client(index)
        return clients[index]

    def _new_raw_client(self, index: int) -> Any:
        return self.connection_factory.connect(self._raw_urls[index])

    def connect(self, index: int = 0) -> Any:
        """A new raw client for LOCATION's server ``index`` (django-redis's)."""
        return self._new_raw_client(index)

    def disconnect(self, index: int | None = None, client: Any = None) -> None:
        """Close the connections of ``client``'s pool, or of the raw client of server ``index``,
        or, with neither, of every raw client made."""
        if client is not None:
            self.connection_factory.disconnect(client)
            return
        clients = self._made_clients()
        for made in clients if index is None else [clients[index]]:
            if made is not None:
                self.connection_factory.disconnect(made)

    def do_close_clients(self) -> None:
        """Disconnect and forget every raw client (what ``CLOSE_CONNECTION`` does)."""
        self.disconnect()
        self._clients = [None] * len(self._raw_urls)

    def get_native_client(self, write: bool = True) -> RawClient:
        """The native raw client: redis-py's command names over the native pools, a subset of
        redis-py's commands (README, "The native raw client")."""
        from django_redis_rs.raw import RawClient

        return RawClient(self._native, write=write)

    def _client_for(self, key: str) -> Any:
        """The raw client whose server holds ``key`` (a made key)."""
        return self.get_client(write=True)
