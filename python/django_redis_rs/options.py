"""The settings that need Python: dotted paths to import (django-redis's accepted as aliases of
ours, without importing django_redis), and the options Django's settings default.

Everything else in ``LOCATION`` and ``OPTIONS`` is checked by the native module
(``src/settings/options.rs``), whose refusals name the option.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from django_redis_rs.exceptions import SettingError
from django_redis_rs.util import default_reverse_key

DEFAULT_CLIENT = "django_redis_rs.client.DefaultClient"
DEFAULT_SERIALIZER = "django_redis_rs.serializers.pickle.PickleSerializer"
DEFAULT_COMPRESSOR = "django_redis_rs.compressors.identity.IdentityCompressor"

# Paths whose django-redis name does not map one-to-one onto ours.
_ALIASES = {
    "django_redis.client.default.DefaultClient": DEFAULT_CLIENT,
}


def resolve_path(path: str, option: str) -> str:
    """Map a django-redis dotted path onto ours; other paths pass through unchanged."""
    if not isinstance(path, str) or not path:
        raise SettingError(option, f"{option} must be a dotted path, not {path!r}", "import")
    if path in _ALIASES:
        return _ALIASES[path]
    if path.startswith("django_redis."):
        return "django_redis_rs." + path[len("django_redis.") :]
    return path


def import_option(path: str, option: str) -> Any:
    """Import the object an option names, raising SettingError naming the option."""
    resolved = resolve_path(path, option)
    try:
        return import_string(resolved)
    except ImportError as e:
        hint = f" (alias of {resolved!r})" if resolved != path else ""
        raise SettingError(
            option, f"{option} {path!r}{hint} cannot be imported: {e}", "import"
        ) from None


def bounded_int(value: Any, label: str, minimum: int, maximum: int = 2**63 - 1) -> int:
    """An integer (not a bool) from minimum to maximum, or SettingError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise SettingError(
            label, f"{label} must be an integer from {minimum} to {maximum}, not {value!r}"
        )
    return value


def pop_flag(url: str, name: str) -> tuple[str, bool | None]:
    """The URL without the boolean query parameter ``name``, and its value (None: absent); as
    redis-py reads one, anything but 0/false/no/off is true."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    values = [v for k, v in query if k == name]
    if not values:
        return url, None
    kept = urlencode([(k, v) for k, v in query if k != name])
    flag = values[-1].lower() not in ("0", "false", "f", "n", "no", "off")
    return urlunsplit(parts._replace(query=kept)), flag


def sentinel_factory_configured(options: Mapping[str, Any]) -> bool:
    """django-redis's way of asking for Sentinel: its connection factory, by option or setting."""
    factory = options.get("CONNECTION_FACTORY") or getattr(
        settings, "DJANGO_REDIS_CONNECTION_FACTORY", None
    )
    return bool(factory) and str(factory).endswith("SentinelConnectionFactory")


def reverse_key_function(options: Mapping[str, Any]) -> Callable[[str], str]:
    """``REVERSE_KEY_FUNCTION``: the key as given, from the key as stored."""
    path = options.get("REVERSE_KEY_FUNCTION")
    return default_reverse_key if not path else import_option(path, "REVERSE_KEY_FUNCTION")


def close_connection(options: Mapping[str, Any]) -> bool:
    """``CLOSE_CONNECTION`` (or ``DJANGO_REDIS_CLOSE_CONNECTION``)."""
    return bool(
        options.get("CLOSE_CONNECTION", getattr(settings, "DJANGO_REDIS_CLOSE_CONNECTION", False))
    )


def pickle_protocol(options: Mapping[str, Any]) -> int:
    """PICKLE_VERSION as django-redis reads it (anything ``int()`` takes; a negative one means
    the highest protocol, as in pickle), refused in django-redis's words."""
    if "PICKLE_VERSION" not in options:
        return pickle.DEFAULT_PROTOCOL
    try:
        value = int(options["PICKLE_VERSION"])
    except (ValueError, TypeError, OverflowError):
        raise SettingError("PICKLE_VERSION", "PICKLE_VERSION value must be an integer") from None
    if value > pickle.HIGHEST_PROTOCOL:
        highest = pickle.HIGHEST_PROTOCOL
        raise SettingError(
            "PICKLE_VERSION",
            f"PICKLE_VERSION can't be higher than pickle.HIGHEST_PROTOCOL: {highest}",
        )
    return max(value, -1)


def codec(options: Mapping[str, Any]) -> tuple[Any, Any]:
    """The serializer and compressor ``OPTIONS`` name, for the native client."""
    if not isinstance(options, Mapping):
        options = {}  # the native client refuses OPTIONS that is not a dict, naming it
    return (
        _codec_part(options, "SERIALIZER", DEFAULT_SERIALIZER),
        _codec_part(options, "COMPRESSOR", DEFAULT_COMPRESSOR),
    )


def _codec_part(options: Mapping[str, Any], option: str, default: str) -> Any:
    """Our class as the native implementation it names (``native_spec``); any other object
    (``native_spec`` None: a subclass of one's own) as it is, called from Rust."""
    instance = import_option(options.get(option, default), option)(options=options)
    native = getattr(instance, "native_spec", None)
    return instance if native is None else native


def signed_values(options: Mapping[str, Any]) -> tuple[bool, list[bytes]] | None:
    """``SIGNED_VALUES`` for the native client: None (off), or whether unsigned values are still
    read ("transition") and the secrets, the current one first. The secret is the Django setting
    ``SIGNED_VALUES_SECRET`` names (``SECRET_KEY`` by default); its rotation fallbacks are
    ``SECRET_KEY_FALLBACKS``, or ``<name>_FALLBACKS`` for a setting of your own."""
    if not isinstance(options, Mapping):
        return None
    mode = options.get("SIGNED_VALUES", False)
    if mode is False:
        if "SIGNED_VALUES_SECRET" in options:
            raise SettingError(
                "SIGNED_VALUES_SECRET", "SIGNED_VALUES_SECRET has no effect without SIGNED_VALUES"
            )
        return None
    if mode is not True and mode != "transition":
        raise SettingError(
            "SIGNED_VALUES", f"SIGNED_VALUES must be True, False or 'transition', not {mode!r}"
        )
    name = options.get("SIGNED_VALUES_SECRET", "SECRET_KEY")
    if not isinstance(name, str) or not name.isidentifier():
        raise SettingError(
            "SIGNED_VALUES_SECRET",
            f"SIGNED_VALUES_SECRET must name a Django setting (such as 'SECRET_KEY'), not {name!r}",
        )
    fallbacks_name = f"{name}_FALLBACKS"  # SECRET_KEY_FALLBACKS for the default
    try:
        secrets = [getattr(settings, name, None), *getattr(settings, fallbacks_name, ())]
    except ImproperlyConfigured:  # Django refuses an empty SECRET_KEY when it is read
        secrets = [None]
    if not secrets[0] or not all(isinstance(s, (str, bytes)) and s for s in secrets):
        raise SettingError(
            "SIGNED_VALUES_SECRET",
            f"SIGNED_VALUES_SECRET: SIGNED_VALUES needs the setting {name} (and each of "
            f"{fallbacks_name}) to be a non-empty string",
        )
    return mode == "transition", [s.encode() if isinstance(s, str) else s for s in secrets]
