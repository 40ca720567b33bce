"""System checks (``manage.py check``) for the caches that use this backend.

Each cache is built the way Django builds it — which validates ``LOCATION`` and every option
without opening a socket — and the settings it refused (kept in ``configuration_error``, and
raised by any use of the cache) become check messages with ids:

- ``django_redis_rs.E001`` — ``LOCATION`` is not a valid server URL (or names no server);
- ``django_redis_rs.E002`` — a class option (``CLIENT_CLASS``, ``SERIALIZER``, ``COMPRESSOR``,
  ``REVERSE_KEY_FUNCTION``, …) cannot be imported;
- ``django_redis_rs.E003`` — an unknown option (a typo, most often);
- ``django_redis_rs.E004`` — a timeout that is not a number of seconds (``TIMEOUT``,
  ``SOCKET_TIMEOUT``, ``SOCKET_CONNECT_TIMEOUT``, the pool's ``timeout``, …);
- ``django_redis_rs.E005`` — any other invalid option value;
- ``django_redis_rs.W001`` — ``TIMEOUT`` of 0 or less: every key expires at once;
- ``django_redis_rs.W002`` — settings the cache accepts without effect: django-redis's
  ``REPLICA_READ_ONLY``, and redis-py's options, pool arguments and URL parameters, which
  configure only the client ``get_redis_connection()`` returns.

Enabled by adding ``"django_redis_rs"`` to ``INSTALLED_APPS``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from django_redis_rs._native import KNOWN_OPTIONS
from django_redis_rs.exceptions import SettingError


def _ours(backend: Any) -> bool:
    from django_redis_rs.cache import RedisCache

    try:
        cls = import_string(backend) if isinstance(backend, str) else None
    except ImportError:
        return False  # Django's own check reports a BACKEND that cannot be imported
    return isinstance(cls, type) and issubclass(cls, RedisCache)


_IDS = {
    "location": "django_redis_rs.E001",
    "import": "django_redis_rs.E002",
    "unknown": "django_redis_rs.E003",
    "timeout": "django_redis_rs.E004",
}


def _refusal(alias: str, refused: Exception) -> checks.CheckMessage:
    """The check message for a refused setting, by the kind the error carries (any other
    ImproperlyConfigured, raised by a class of one's own, is E005)."""
    where, message = f"CACHES[{alias!r}]", str(refused)
    kind = refused.kind if isinstance(refused, SettingError) else "value"
    check_id = _IDS.get(kind, "django_redis_rs.E005")
    if kind == "location":
        hint = "LOCATION takes redis://, rediss://, valkey://, valkeys:// or unix:// URLs."
        return checks.Error(f"{where}: {message}", hint=hint, id=check_id)
    if kind == "unknown":
        assert isinstance(refused, SettingError)
        guesses = [
            f"{name} -> {match[0]}"
            for name in refused.names
            if (match := difflib.get_close_matches(name, KNOWN_OPTIONS, n=1))
        ]
        hint = ("Did you mean: " + ", ".join(guesses)) if guesses else message
        return checks.Error(f"{where}: {refused.summary}", hint=hint, id=check_id)
    return checks.Error(f"{where}: {message}", id=check_id)


def _timeout(alias: str, params: dict[str, Any]) -> list[checks.CheckMessage]:
    if "TIMEOUT" not in params or params["TIMEOUT"] is None:
        return []
    timeout = params["TIMEOUT"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        # Django would silently fall back to 300 seconds.
        return [
            checks.Error(
                f"CACHES[{alias!r}]: TIMEOUT must be a number of seconds or None, not {timeout!r}",
                id="django_redis_rs.E004",
            )
        ]
    if timeout <= 0:
        return [
            checks.Warning(
                f"CACHES[{alias!r}]: TIMEOUT is {timeout!r}: every key expires as it is set.",
                hint="TIMEOUT=None keeps keys until they are deleted.",
                id="django_redis_rs.W001",
            )
        ]
    return []


def _no_effect(alias: str, ignored: list[str]) -> list[checks.CheckMessage]:
    """One warning naming the settings the cache accepts without effect."""
    if not ignored:
        return []
    return [
        checks.Warning(
            f"CACHES[{alias!r}]: {', '.join(ignored)} have no effect on the cache.",
            hint="django-redis's REPLICA_READ_ONLY is accepted so that its settings work "
            "unchanged; redis-py's options configure only the client get_redis_connection() "
            "returns. Remove the ones you do not need there.",
            id="django_redis_rs.W002",
        )
    ]


def check_caches(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[Any]:
    messages: list[checks.CheckMessage] = []
    for alias, params in getattr(settings, "CACHES", {}).items():
        if not isinstance(params, dict) or not _ours(params.get("BACKEND")):
            continue
        messages += _timeout(alias, params)
        backend = import_string(params["BACKEND"])
        backend_params = {k: v for k, v in params.items() if k not in ("BACKEND", "LOCATION")}
        cache = backend(params.get("LOCATION", ""), backend_params)
        if cache.configuration_error is not None:
            messages.append(_refusal(alias, cache.configuration_error))
        else:
            messages += _no_effect(alias, cache.client._native.ignored_settings)
    return messages
