"""DefaultValkeyClient: django-redis's Valkey client path, whose raw clients are valkey-py's."""

from __future__ import annotations

from django_redis_rs.client.default import DefaultClient
from django_redis_rs.pool import VALKEY_PY, Library


class DefaultValkeyClient(DefaultClient):
    """``DefaultClient`` whose ``get_client()`` returns ``valkey.Valkey`` (valkey-py must be
    installed for raw clients; the cache itself does not need it)."""

    library: Library = VALKEY_PY
