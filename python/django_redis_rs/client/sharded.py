"""ShardClient: keys spread over several servers by django-redis's consistent hash ring."""

from __future__ import annotations

from typing import Any

from django_redis_rs.client.default import DefaultClient


class UnsetType:
    """django-redis's: the type of `UNSET`, the default of ``client=`` arguments that says
    none was given (``None`` can be given)."""


UNSET = UnsetType()


class ShardClient(DefaultClient):
    """Each key lives on one of the ``LOCATION`` servers, chosen exactly as django-redis's
    ShardClient chooses (so existing data stays where it is); ``{tag}`` in a key pins it by the
    tag. Every method works: multi-key operations go to each shard in one request, all shards at
    once; ``keys``, ``iter_keys``, ``delete_pattern`` and ``clear`` span the shards; commands on
    several keys (``sdiff``, ``smove``, ...) need the keys on one shard (use a hash tag).

    Raw clients, as django-redis gives them: one ``redis.Redis`` per shard, through
    ``get_server(key)`` or ``get_client(key=key)`` (``key`` as stored in Redis, e.g.
    ``cache.make_key("k")``); ``get_client()`` without a key raises ``NotImplementedError``."""

    def _layout(self) -> dict[str, Any]:
        return {"layout": "sharded"}

    @property
    def _shard_names(self) -> list[str]:
        """django-redis's names of the shards: the LOCATION entries exactly as written."""
        return self._native.shard_names

    def get_client(
        self,
        write: bool = True,
        tried: list[int] | None = None,
        show_index: bool = False,
        key: Any = None,
    ) -> Any:
        if key is None:
            raise NotImplementedError(
                "ShardClient has a client per shard: use get_server(key) or get_client(key=key)"
            )
        index = self._shard_of(key)
        return (self._client_at(index), index) if show_index else self._client_at(index)

    def get_client_with_index(
        self, write: bool = True, tried: list[int] | None = None
    ) -> tuple[Any, int]:
        raise NotImplementedError(
            "ShardClient has a client per shard: use get_server(key) or get_client(key=key)"
        )

    def _shard_of(self, key: Any) -> int:
        index = self._native.shard_of(key)
        assert index is not None  # a sharded native client always answers
        return index

    def get_server_name(self, key: Any) -> str:
        """The LOCATION entry (as written) of the shard that holds ``key``."""
        return self._shard_names[self._shard_of(key)]

    def get_server(self, key: Any) -> Any:
        """The ``redis.Redis`` of the shard that holds ``key`` (a key as stored)."""
        return self._client_at(self._shard_of(key))

    def get_servers(self) -> dict[str, Any]:
        """Every shard's ``redis.Redis``, by LOCATION entry (for commands on all of them)."""
        return {name: self._client_at(i) for i, name in enumerate(self._shard_names)}

    def connect(self, index: int = 0) -> Any:
        """django-redis's: a new client for every shard, by LOCATION entry."""
        return {name: self._new_raw_client(i) for i, name in enumerate(self._shard_names)}

    def _client_for(self, key: str) -> Any:
        return self.get_server(key)
