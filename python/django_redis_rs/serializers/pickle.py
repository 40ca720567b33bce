from __future__ import annotations

import _compat_pickle
import io
import pickle
from collections.abc import Iterable, Mapping
from typing import Any

from django_redis_rs._native import UnsafePickleError
from django_redis_rs.exceptions import SettingError
from django_redis_rs.options import pickle_protocol
from django_redis_rs.serializers.base import NativeSerializer

# What SAFE_PICKLE lets a pickle build beyond the builtin values (which the native decoder reads
# without pickle): the standard types people cache, and what pickle itself names to rebuild
# builtins and those types (sets and bytes in old protocols, timezones of aware datetimes).
SAFE_PICKLE_DEFAULTS = frozenset(
    {
        "datetime.datetime",
        "datetime.date",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "zoneinfo.ZoneInfo",
        "zoneinfo.ZoneInfo._unpickle",
        "decimal.Decimal",
        "uuid.UUID",
        "collections.OrderedDict",
        "builtins.set",
        "builtins.frozenset",
        "builtins.bytearray",
        "builtins.complex",
        "builtins.object",
        "_codecs.encode",
        "copyreg._reconstructor",
    }
)


def _refused(dotted: str) -> UnsafePickleError:
    return UnsafePickleError(
        f"refused to load a pickled {dotted!r}: SAFE_PICKLE allows only builtin values and "
        f"SAFE_PICKLE_CLASSES; nothing was run. Add it to SAFE_PICKLE_CLASSES if your "
        f"application writes it and only your application writes to this Redis."
    )


class _RestrictedUnpickler(pickle.Unpickler):
    allowed: frozenset[str] = frozenset()

    def find_class(self, module: str, name: str) -> Any:
        # Pickles of protocols 0-2 name Python 2's modules (`__builtin__`); the check reads the
        # names the base class then imports.
        module, name = _compat_pickle.NAME_MAPPING.get(
            (module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module), name)
        )
        if (module, name) == ("builtins", "getattr"):
            # How pickle names a class's attribute (`ZoneInfo._unpickle`): allowed only for
            # the allowed attributes, else it would reach anything from an allowed class.
            return self._getattr
        if f"{module}.{name}" not in self.allowed:
            raise _refused(f"{module}.{name}")
        return super().find_class(module, name)

    def _getattr(self, owner: Any, attribute: str) -> Any:
        dotted = f"{getattr(owner, '__module__', '?')}.{getattr(owner, '__qualname__', '?')}"
        dotted = f"{dotted}.{attribute}"
        if not isinstance(owner, type) or dotted not in self.allowed:
            raise _refused(dotted)
        return getattr(owner, attribute)


class RestrictedLoader:
    """``pickle.loads`` that builds only the allowed classes (any other raises
    ``UnsafePickleError`` naming it, before anything of it runs)."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self._unpickler = type(
            "RestrictedUnpickler", (_RestrictedUnpickler,), {"allowed": frozenset(allowed)}
        )

    def __call__(self, data: bytes) -> Any:
        return self._unpickler(io.BytesIO(data)).load()


def _safe_pickle_classes(options: Mapping[str, Any]) -> frozenset[str]:
    extra = options.get("SAFE_PICKLE_CLASSES", ())
    if isinstance(extra, str) or not isinstance(extra, Iterable):
        raise SettingError(
            "SAFE_PICKLE_CLASSES", "SAFE_PICKLE_CLASSES must be a list of 'module.Class' names"
        )
    names = list(extra)
    for name in names:
        if not isinstance(name, str) or "." not in name.strip("."):
            raise SettingError(
                "SAFE_PICKLE_CLASSES",
                f"SAFE_PICKLE_CLASSES: {name!r} is not a 'module.Class' name",
            )
    return SAFE_PICKLE_DEFAULTS | frozenset(names)


class PickleSerializer(NativeSerializer):
    """The default: ``pickle.dumps(value, PICKLE_VERSION)``, called directly by the native
    client (no Python frame in between). With ``SAFE_PICKLE``, stored pickles may build only
    builtin values (read natively) and the classes of ``SAFE_PICKLE_CLASSES`` (README,
    "Values that cannot run code")."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        safe = options.get("SAFE_PICKLE", False)
        if not isinstance(safe, bool):
            raise SettingError("SAFE_PICKLE", "SAFE_PICKLE must be True or False")
        if "SAFE_PICKLE_CLASSES" in options and not safe:
            raise SettingError(
                "SAFE_PICKLE_CLASSES", "SAFE_PICKLE_CLASSES has no effect without SAFE_PICKLE"
            )
        protocol = pickle_protocol(options)
        self.spec = (
            ("pickle", protocol, RestrictedLoader(_safe_pickle_classes(options)))
            if safe
            else ("pickle", protocol)
        )
