"""Reading a cache's ``LOCATION`` and ``OPTIONS``: every setting is validated here, once, and
errors name the option (never a password).

django-redis dotted paths (``django_redis.client.DefaultClient``, ...) are accepted as aliases of
ours, without importing django_redis.
"""

from __future__ import annotations

import os
import pickle
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.utils.module_loading import import_string

from django_redis_rs.exceptions import SettingError

DEFAULT_CLIENT = "django_redis_rs.client.DefaultClient"
DEFAULT_SERIALIZER = "django_redis_rs.serializers.pickle.PickleSerializer"
DEFAULT_COMPRESSOR = "django_redis_rs.compressors.identity.IdentityCompressor"

# Paths whose django-redis name does not map one-to-one onto ours.
_ALIASES = {
    "django_redis.client.default.DefaultClient": DEFAULT_CLIENT,
}

# The options this backend reads. The django-redis options that tune redis-py configure only
# the raw client (get_redis_connection(), pool.py): the native client does not read them.
KNOWN_OPTIONS = {
    "CLIENT_CLASS",
    "SERIALIZER",
    "COMPRESSOR",
    "PICKLE_VERSION",
    "SOCKET_TIMEOUT",
    "SOCKET_CONNECT_TIMEOUT",
    "CONNECTION_POOL_KWARGS",
    "PASSWORD",
    "USERNAME",
    "IGNORE_EXCEPTIONS",
    "CLOSE_CONNECTION",
    "REPLICA_READ_ONLY",
    "REVERSE_KEY_FUNCTION",
    "COMPRESSOR_LEVEL",
    "COMPRESSOR_MIN_LENGTH",
    "COMPRESSOR_MAX_DECOMPRESSED_SIZE",
    "SENTINELS",
    "SENTINEL_KWARGS",
    "CONNECTION_FACTORY",
    "CIRCUIT_BREAKER",
    "CLEAR_SCOPE",
    "CLIENT_SIDE_CACHE",
    "SINGLE_FLIGHT",
    "SINGLE_FLIGHT_TIMEOUT",
}
CLEAR_SCOPES = ("database", "prefix", "version")
# Accepted so that django-redis settings work unchanged, but without effect here (system
# check W002 says so).
NO_EFFECT_OPTIONS = {"REPLICA_READ_ONLY"}

REDIS_PY_OPTIONS = {
    "PARSER_CLASS",
    "CONNECTION_POOL_CLASS",
    "CONNECTION_POOL_CLASS_KWARGS",
    "REDIS_CLIENT_CLASS",
    "REDIS_CLIENT_KWARGS",
}
_TLS_KWARGS = {"ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"}
_POOL_KWARGS = {"max_connections", "timeout", "health_check_interval"} | _TLS_KWARGS
# redis-py's connection and pool arguments the native pools do not use: passed to the raw
# client's pool only.
_REDIS_PY_POOL_KWARGS = {
    "retry_on_timeout",
    "retry_on_error",
    "retry",
    "socket_keepalive",
    "socket_keepalive_options",
    "socket_type",
    "client_name",
    "lib_name",
    "lib_version",
    "encoding",
    "encoding_errors",
    "decode_responses",
    "protocol",
    "connection_class",
    "queue_class",
    "credential_provider",
    "ssl_password",
    "ssl_min_version",
    "ssl_ciphers",
    "ssl_validate_ocsp",
    "ssl_include_verify_flags",
    "ssl_exclude_verify_flags",
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


# The native module's rule for seconds (config.rs, `duration_from_secs`): at most about 31
# years (longer would overflow deadline arithmetic), and a positive value of at least a
# nanosecond (a smaller one would round to zero, which means "no timeout").
MAX_SECONDS = 1e9
MIN_POSITIVE_SECONDS = 1e-9
# Integers the native module stores in 64 bits.
MAX_INT = 2**63 - 1


def seconds(options: Mapping[str, Any], name: str, label: str | None = None) -> float | None:
    """A number of seconds from 0 to MAX_SECONDS (a positive one at least a nanosecond), or
    None."""
    value = options.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 <= value <= MAX_SECONDS
        or 0 < value < MIN_POSITIVE_SECONDS
    ):
        raise SettingError(
            label or name,
            f"{label or name} must be a number of seconds from 0 to {MAX_SECONDS:.0e} "
            f"(and, when positive, at least {MIN_POSITIVE_SECONDS:.0e}), not {value!r}",
            "timeout",
        )
    return float(value)


def bounded_int(value: Any, label: str, minimum: int, maximum: int = MAX_INT) -> int:
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


def locations(server: Any) -> list[str]:
    """LOCATION as a string, a comma-separated string, or a list/tuple of strings."""
    if isinstance(server, str):
        urls = [part.strip() for part in server.split(",") if part.strip()]
    elif isinstance(server, (list, tuple)) and all(isinstance(s, str) for s in server):
        urls = [s.strip() for s in server]
    else:
        raise SettingError(
            "LOCATION",
            f"LOCATION must be a URL string or a list of them, not {type(server).__name__}",
            "location",
        )
    if not urls:
        raise SettingError("LOCATION", "LOCATION names no server", "location")
    return urls


def tls_kwargs(pool: Mapping[str, Any], label: str = "CONNECTION_POOL_KWARGS") -> dict[str, Any]:
    """redis-py's ``ssl_*`` connection kwargs, for ``rediss://`` servers (and, from
    ``SENTINEL_KWARGS``, for sentinels); ``label`` names where they were given."""
    kwargs: dict[str, Any] = {}
    for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        value = pool.get(name)
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise SettingError(label, f"{label}['{name}'] must be a file path")
        kwargs[name] = None if value is None else os.fspath(value)
    reqs = pool.get("ssl_cert_reqs", "required")
    if isinstance(reqs, str):
        reqs = reqs.lower()
    if reqs in (None, "none", ssl.CERT_NONE):
        kwargs["ssl_verify_peer"] = False
    elif reqs in ("optional", "required", ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED):
        kwargs["ssl_verify_peer"] = True
    else:
        raise SettingError(
            label,
            f"{label}['ssl_cert_reqs'] must be None, 'none', 'optional' or "
            f"'required' (or an ssl.CERT_* constant), not {reqs!r}",
        )
    check_hostname = pool.get("ssl_check_hostname", True)
    if not isinstance(check_hostname, bool):
        raise SettingError(label, f"{label}['ssl_check_hostname'] must be a bool")
    kwargs["ssl_check_hostname"] = check_hostname
    return kwargs


_LOCAL_CACHE_DEFAULTS = {"max_entries": 10_000, "max_bytes": 64 * 1024 * 1024, "ttl": 60.0}


def client_side_cache(value: Any) -> tuple[int, int, float] | None:
    """``CLIENT_SIDE_CACHE``: ``True`` or a dict of ``max_entries``, ``max_bytes``, ``ttl``."""
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, Mapping):
        raise SettingError(
            "CLIENT_SIDE_CACHE",
            "CLIENT_SIDE_CACHE must be True or a dict with max_entries, max_bytes and ttl",
        )
    unknown = set(value) - set(_LOCAL_CACHE_DEFAULTS)
    if unknown:
        raise SettingError(
            "CLIENT_SIDE_CACHE",
            f"Unknown CLIENT_SIDE_CACHE keys {sorted(unknown)}; "
            f"supported: {sorted(_LOCAL_CACHE_DEFAULTS)}",
        )
    settings_ = {**_LOCAL_CACHE_DEFAULTS, **value}
    for name in ("max_entries", "max_bytes"):
        bounded_int(settings_[name], f"CLIENT_SIDE_CACHE['{name}']", 1)
    ttl = seconds(settings_, "ttl", "CLIENT_SIDE_CACHE['ttl']")
    if not ttl:
        raise SettingError(
            "CLIENT_SIDE_CACHE", "CLIENT_SIDE_CACHE['ttl'] must be more than 0 seconds", "timeout"
        )
    return int(settings_["max_entries"]), int(settings_["max_bytes"]), float(ttl)


def circuit_breaker(value: Any) -> tuple[int, float] | None:
    """CIRCUIT_BREAKER = {"failures": N, "reset_timeout": T}: after N consecutive connection
    failures to a server, calls to it fail at once for T seconds, then one call probes it."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"failures", "reset_timeout"}:
        raise SettingError(
            "CIRCUIT_BREAKER",
            "CIRCUIT_BREAKER must be a dict with keys 'failures' and 'reset_timeout'",
        )
    failures = value.get("failures", 5)
    if isinstance(failures, bool) or not isinstance(failures, int) or not 1 <= failures < 2**32:
        raise SettingError(
            "CIRCUIT_BREAKER",
            f"CIRCUIT_BREAKER['failures'] must be a positive integer, not {failures!r}",
        )
    reset_timeout = seconds(value, "reset_timeout", "CIRCUIT_BREAKER['reset_timeout']")
    if reset_timeout == 0:
        raise SettingError(
            "CIRCUIT_BREAKER",
            "CIRCUIT_BREAKER['reset_timeout'] must be more than 0 seconds",
            "timeout",
        )
    return failures, 10.0 if reset_timeout is None else reset_timeout


SENTINEL_FACTORY = "django_redis.pool.SentinelConnectionFactory"
_SENTINEL_KWARGS = {"username", "password", "socket_timeout", "socket_connect_timeout", "ssl"}
_SENTINEL_KWARGS |= _TLS_KWARGS


def sentinel_factory_configured(options: Mapping[str, Any]) -> bool:
    """django-redis's way of asking for Sentinel: its connection factory, by option or setting."""
    factory = options.get("CONNECTION_FACTORY") or getattr(
        settings, "DJANGO_REDIS_CONNECTION_FACTORY", None
    )
    return bool(factory) and str(factory).endswith("SentinelConnectionFactory")


def sentinel_layout(
    server: Any, options: Mapping[str, Any], read_from_replicas: bool | None
) -> tuple[list[str], dict[str, Any]]:
    """The service URL (``redis://SERVICE/db``, ``is_master`` removed) and the Sentinel settings
    for the native client. With ``read_from_replicas=None`` the URLs decide, as django-redis's
    factory does: reads go to replicas when an entry says ``is_master=0``."""
    sentinels = options.get("SENTINELS")
    if not sentinels or not all(
        isinstance(s, (list, tuple))
        and len(s) == 2
        and isinstance(s[0], str)
        and isinstance(s[1], int)
        for s in sentinels
    ):
        raise SettingError("SENTINELS", "SENTINELS must be provided as a list of (host, port).")
    extra = options.get("SENTINEL_KWARGS") or {}
    if not isinstance(extra, Mapping) or set(extra) - _SENTINEL_KWARGS:
        raise SettingError(
            "SENTINEL_KWARGS",
            f"SENTINEL_KWARGS must be a dict with keys among {sorted(_SENTINEL_KWARGS)}",
        )
    urls, replica_flags = [], []
    for url in locations(server):
        url, is_master = pop_flag(url, "is_master")
        urls.append(url)
        if is_master is not None:
            replica_flags.append(not is_master)
    if read_from_replicas is None:
        read_from_replicas = any(replica_flags)
    elif replica_flags and not any(replica_flags):
        read_from_replicas = False  # ?is_master=1 alone: everything on the primary
    return urls[:1], {
        "sentinels": [(host, port) for host, port in sentinels],
        "sentinel_username": extra.get("username"),
        "sentinel_password": extra.get("password"),
        "read_from_replicas": read_from_replicas,
        "sentinel_tls": sentinel_tls(options, extra),
    }


def sentinel_tls(
    options: Mapping[str, Any], extra: Mapping[str, Any]
) -> tuple[str | None, str | None, str | None, bool, bool] | None:
    """TLS to the sentinels, as redis-py's ``sentinel_kwargs`` ask for it (``"ssl": True``):
    ``SENTINEL_KWARGS``'s ``ssl_*`` options, else the data connections' (same defaults:
    certificate and host name verified)."""
    ssl_on = extra.get("ssl", False)
    if not isinstance(ssl_on, bool):
        raise SettingError(
            "SENTINEL_KWARGS", f"SENTINEL_KWARGS['ssl'] must be True or False, not {ssl_on!r}"
        )
    if not ssl_on:
        return None
    pool = options.get("CONNECTION_POOL_KWARGS") or {}
    given = {k: v for k, v in extra.items() if k in _TLS_KWARGS}
    label = "SENTINEL_KWARGS" if given else "CONNECTION_POOL_KWARGS"
    tls = tls_kwargs(given or {k: v for k, v in pool.items() if k in _TLS_KWARGS}, label)
    return (
        tls["ssl_ca_certs"],
        tls["ssl_certfile"],
        tls["ssl_keyfile"],
        tls["ssl_verify_peer"],
        tls["ssl_check_hostname"],
    )


def _reverse_key(key: str) -> str:
    return key.split(":", 2)[2]


@dataclass
class ClientOptions:
    """The validated OPTIONS a client needs."""

    native_kwargs: dict[str, Any] = field(default_factory=dict)
    close_connection: bool = False
    reverse_key: Callable[[str], str] = _reverse_key
    clear_scope: str = "database"
    # Seconds a get_or_set waits for another caller computing the same key; None: no
    # single-flight.
    single_flight_timeout: float | None = 30.0


def client_options(options: Mapping[str, Any]) -> ClientOptions:
    if not isinstance(options, Mapping):
        raise SettingError("OPTIONS", f"OPTIONS must be a dict, not {type(options).__name__}")
    unknown = set(options) - KNOWN_OPTIONS - REDIS_PY_OPTIONS
    if unknown:
        raise SettingError(
            "OPTIONS",
            f"Unknown cache OPTIONS {sorted(unknown)}; known options: {sorted(KNOWN_OPTIONS)}",
            "unknown",
            sorted(unknown),
        )
    kwargs: dict[str, Any] = {
        "socket_timeout": seconds(options, "SOCKET_TIMEOUT"),
        "connect_timeout": seconds(options, "SOCKET_CONNECT_TIMEOUT"),
    }

    pool = options.get("CONNECTION_POOL_KWARGS") or {}
    if not isinstance(pool, Mapping):
        raise SettingError("CONNECTION_POOL_KWARGS", "CONNECTION_POOL_KWARGS must be a dict")
    unknown = set(pool) - _POOL_KWARGS - _REDIS_PY_POOL_KWARGS
    if unknown:
        raise SettingError(
            "CONNECTION_POOL_KWARGS",
            f"Unknown CONNECTION_POOL_KWARGS {sorted(unknown)}; "
            f"supported: {sorted(_POOL_KWARGS | _REDIS_PY_POOL_KWARGS)}",
            "unknown",
            sorted(unknown),
        )
    max_connections = pool.get("max_connections")
    if max_connections is not None:
        bounded_int(max_connections, "CONNECTION_POOL_KWARGS['max_connections']", 1, 2**32 - 1)
    kwargs["max_connections"] = max_connections
    kwargs["pool_timeout"] = seconds(pool, "timeout", "CONNECTION_POOL_KWARGS['timeout']")
    kwargs["health_check_interval"] = seconds(
        pool, "health_check_interval", "CONNECTION_POOL_KWARGS['health_check_interval']"
    )
    kwargs["circuit_breaker"] = circuit_breaker(options.get("CIRCUIT_BREAKER"))
    kwargs["client_side_cache"] = client_side_cache(options.get("CLIENT_SIDE_CACHE"))
    kwargs.update(tls_kwargs(pool))

    for name in ("USERNAME", "PASSWORD"):
        value = options.get(name)
        if value is not None and not isinstance(value, str):
            raise SettingError(name, f"{name} must be a string")
        kwargs[name.lower()] = value or None

    serializer_cls = import_option(options.get("SERIALIZER", DEFAULT_SERIALIZER), "SERIALIZER")
    serializer = serializer_cls(options=options)
    # Our own classes name a native implementation; any other object is called from Rust.
    native_serializer = getattr(serializer, "native_spec", None)
    kwargs["serializer"] = serializer if native_serializer is None else native_serializer

    compressor_cls = import_option(options.get("COMPRESSOR", DEFAULT_COMPRESSOR), "COMPRESSOR")
    compressor = compressor_cls(options=options)
    native_compressor = getattr(compressor, "native_spec", None)
    kwargs["compressor"] = compressor if native_compressor is None else native_compressor

    reverse_key: Callable[[str], str] = _reverse_key
    if options.get("REVERSE_KEY_FUNCTION"):
        reverse_key = import_option(options["REVERSE_KEY_FUNCTION"], "REVERSE_KEY_FUNCTION")

    close = options.get(
        "CLOSE_CONNECTION", getattr(settings, "DJANGO_REDIS_CLOSE_CONNECTION", False)
    )
    clear_scope = options.get("CLEAR_SCOPE", "database")
    if clear_scope not in CLEAR_SCOPES:
        raise SettingError(
            "CLEAR_SCOPE",
            f"CLEAR_SCOPE must be one of {', '.join(map(repr, CLEAR_SCOPES))}, not {clear_scope!r}",
        )
    single_flight = options.get("SINGLE_FLIGHT", True)
    if not isinstance(single_flight, bool):
        raise SettingError(
            "SINGLE_FLIGHT", f"SINGLE_FLIGHT must be True or False, not {single_flight!r}"
        )
    flight_timeout = seconds(options, "SINGLE_FLIGHT_TIMEOUT")
    if flight_timeout is None:
        flight_timeout = 30.0
    return ClientOptions(
        native_kwargs=kwargs,
        close_connection=bool(close),
        reverse_key=reverse_key,
        clear_scope=clear_scope,
        single_flight_timeout=flight_timeout if single_flight else None,
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
