"""The command table: django-redis's data-structure and expiry methods that are one Redis
command each, a row per method. A row says which command it sends, whether it writes, what
each parameter is (a key, a value or sorted-set member to encode, a timeout, a moment, or an
argument passed as it is), how the reply is read, and what the method answers when
``IGNORE_EXCEPTIONS`` swallows a failure.

From the rows come the client's methods (``TableCommands``: each described once, so its async
twin ``a`` + name comes with it), the cache's forwarding methods (``cache.py``), and the typed
stub of those methods (``_table_stub.pyi``, which ``stub()`` writes and a test keeps current).
The methods with logic of their own — options, several reply shapes, cursors — are written out
in ``structures.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from django.core.cache.backends.base import DEFAULT_TIMEOUT

from django_redis_rs._native import (
    REPLY_BOOL,
    REPLY_BOOLS,
    REPLY_FLOAT,
    REPLY_INT,
    REPLY_STRINGS,
    REPLY_VALUE,
    REPLY_VALUE_SET,
    REPLY_VALUES,
)
from django_redis_rs.described import Command, add_async_twins, described
from django_redis_rs.forgiving import EMPTY_LIST, EMPTY_SET

# A parameter: "<kind>:<name>", ``*`` before the name for several. Kinds: ``k`` a key (made with
# ``version``), ``v`` a value (encoded as the cache stores values), ``m`` a sorted-set member
# (encoded as members are), ``p`` passed as it is, ``t`` a timeout (the cache's default for
# ``DEFAULT_TIMEOUT``), ``s`` / ``S`` a moment (a datetime or a Unix time) in seconds /
# milliseconds. With the type each has in the stub:
KINDS = {"k": "Any", "v": "Any", "m": "Any", "p": "Any", "t": "Any", "s": "datetime | float"}
KINDS["S"] = KINDS["s"]

# How each reply is read: the native reply code, the stub's return type, and the neutral
# answer of a swallowed failure.
READS: dict[int, tuple[str, Any]] = {
    REPLY_INT: ("int", 0),
    REPLY_BOOL: ("bool", False),
    REPLY_FLOAT: ("float | None", None),
    REPLY_VALUE: ("Any", None),
    REPLY_VALUES: ("list[Any]", EMPTY_LIST),
    REPLY_VALUE_SET: ("set[Any]", EMPTY_SET),
    REPLY_STRINGS: ("list[str]", EMPTY_LIST),
    REPLY_BOOLS: ("list[bool]", EMPTY_LIST),
}
_NO_NEUTRAL = object()


class Row(NamedTuple):
    name: str
    command: str
    write: bool
    params: tuple[str, ...]
    reply: int
    # Where the reply's neutral answer is not the method's (a rank: None, not 0).
    neutral: Any = _NO_NEUTRAL
    returns: str = ""
    # A function of this module that reads the reply further.
    then: str = ""

    @property
    def answer(self) -> Any:
        """What the cache answers for it when a failure is swallowed."""
        return READS[self.reply][1] if self.neutral is _NO_NEUTRAL else self.neutral

    @property
    def return_type(self) -> str:
        return self.returns or READS[self.reply][0]


W, R = True, False
TABLE: tuple[Row, ...] = (
    # sets
    Row("sadd", "SADD", W, ("k:key", "v:*values"), REPLY_INT),
    Row("scard", "SCARD", R, ("k:key",), REPLY_INT),
    Row("sdiff", "SDIFF", R, ("k:*keys",), REPLY_VALUE_SET),
    Row("sinter", "SINTER", R, ("k:*keys",), REPLY_VALUE_SET),
    Row("sinterstore", "SINTERSTORE", W, ("k:dest", "k:*keys"), REPLY_INT),
    Row("sunion", "SUNION", R, ("k:*keys",), REPLY_VALUE_SET),
    Row("sunionstore", "SUNIONSTORE", W, ("k:destination", "k:*keys"), REPLY_INT),
    Row("sismember", "SISMEMBER", R, ("k:key", "v:member"), REPLY_BOOL),
    Row("smismember", "SMISMEMBER", R, ("k:key", "v:*members"), REPLY_BOOLS),
    Row("smembers", "SMEMBERS", R, ("k:key",), REPLY_VALUE_SET),
    Row("smove", "SMOVE", W, ("k:source", "k:destination", "v:member"), REPLY_BOOL),
    Row("srem", "SREM", W, ("k:key", "v:*members"), REPLY_INT),
    # hashes
    Row("hdel", "HDEL", W, ("k:key", "p:field"), REPLY_INT),
    Row("hlen", "HLEN", R, ("k:key",), REPLY_INT),
    Row("hkeys", "HKEYS", R, ("k:key",), REPLY_STRINGS),
    Row("hexists", "HEXISTS", R, ("k:key", "p:field"), REPLY_BOOL),
    Row("hget", "HGET", R, ("k:key", "p:field"), REPLY_VALUE),
    # sorted sets
    Row("zcard", "ZCARD", R, ("k:key",), REPLY_INT),
    Row("zcount", "ZCOUNT", R, ("k:key", "p:min", "p:max"), REPLY_INT),
    Row("zincrby", "ZINCRBY", W, ("k:key", "p:amount", "m:value"), REPLY_FLOAT, returns="float"),
    Row("zrevrank", "ZREVRANK", R, ("k:key", "m:value"), REPLY_INT, None, "int | None"),
    Row("zrem", "ZREM", W, ("k:key", "m:*values"), REPLY_INT),
    Row("zremrangebyscore", "ZREMRANGEBYSCORE", W, ("k:key", "p:min", "p:max"), REPLY_INT),
    Row("zscore", "ZSCORE", R, ("k:key", "m:value"), REPLY_FLOAT),
    # lists
    Row("lpush", "LPUSH", W, ("k:key", "v:*values"), REPLY_INT),
    Row("rpush", "RPUSH", W, ("k:key", "v:*values"), REPLY_INT),
    Row("lrange", "LRANGE", R, ("k:key", "p:start", "p:end"), REPLY_VALUES),
    Row("llen", "LLEN", R, ("k:key",), REPLY_INT),
    Row("lrem", "LREM", W, ("k:key", "p:count", "v:value"), REPLY_INT),
    Row("ltrim", "LTRIM", W, ("k:key", "p:start", "p:end"), REPLY_BOOL),
    Row("lindex", "LINDEX", R, ("k:key", "p:index"), REPLY_VALUE),
    # expiry
    Row("ttl", "TTL", R, ("k:key",), REPLY_INT, None, "int | None", "_remaining"),
    Row("pttl", "PTTL", R, ("k:key",), REPLY_INT, None, "int | None", "_remaining"),
    Row("persist", "PERSIST", W, ("k:key",), REPLY_BOOL),
    Row("expire", "EXPIRE", W, ("k:key", "t:timeout"), REPLY_BOOL),
    Row("pexpire", "PEXPIRE", W, ("k:key", "t:timeout"), REPLY_BOOL),
    Row("expire_at", "EXPIREAT", W, ("k:key", "s:when"), REPLY_BOOL),
    Row("pexpire_at", "PEXPIREAT", W, ("k:key", "S:when"), REPLY_BOOL),
)


class RawRow(NamedTuple):
    """A method of the native raw client (``raw.py``: redis-py's names and arguments, replies as
    redis-py gives them): its parameters as Python writes them (``i:`` before one taken as an
    ``int``), and the function of this module that converts the reply, if any."""

    name: str
    command: str
    write: bool
    params: tuple[str, ...] = ()
    convert: str = ""


RAW_TABLE: tuple[RawRow, ...] = (
    RawRow("ping", "PING", R, (), "_is_pong"),
    RawRow("get", "GET", R, ("name",)),
    RawRow("delete", "DEL", W, ("*names",)),
    RawRow("exists", "EXISTS", R, ("*names",)),
    RawRow("expire", "EXPIRE", W, ("name", "i:time"), "_bool"),
    RawRow("ttl", "TTL", R, ("name",)),
    RawRow("incr", "INCRBY", W, ("name", "amount=1")),
    RawRow("keys", "KEYS", R, ("pattern='*'",)),
    RawRow("hget", "HGET", R, ("name", "key")),
    RawRow("hgetall", "HGETALL", R, ("name",), "_pairs_to_dict"),
    RawRow("lpush", "LPUSH", W, ("name", "*values")),
    RawRow("lrange", "LRANGE", R, ("name", "start", "end")),
    RawRow("sadd", "SADD", W, ("name", "*values")),
    RawRow("smembers", "SMEMBERS", R, ("name",), "_as_set"),
    RawRow("publish", "PUBLISH", W, ("channel", "message")),
    RawRow("flushdb", "FLUSHDB", W, (), "_bool"),
)


def _bool(reply: Any) -> bool:
    return bool(reply)


def _as_set(reply: Any) -> set[Any]:
    return set(reply)


def _is_pong(reply: Any) -> bool:
    return reply in (True, "PONG", b"PONG")


def _pairs_to_dict(reply: Any) -> dict[Any, Any]:
    """HGETALL's reply as a dict (RESP2 gives a flat list of pairs)."""
    if isinstance(reply, dict):
        return reply
    return {reply[i]: reply[i + 1] for i in range(0, len(reply), 2)}


def _raw_parts(row: RawRow) -> list[tuple[str, str]]:
    """Each parameter as (how it is written in the signature, how it goes in the command)."""
    parts = []
    for param in row.params:
        as_int = param.startswith("i:")
        written = param.removeprefix("i:")
        name = written.split("=", 1)[0]
        parts.append((written, f"int({name})" if as_int else name))
    return parts


def _raw_source(row: RawRow) -> str:
    parts = _raw_parts(row)
    signature = ", ".join(["self", *(written for written, _ in parts)])
    arguments = ", ".join([repr(row.command), *(used for _, used in parts)])
    convert = row.convert or "None"
    return (
        f"def {row.name}({signature}):\n"
        f"    return self._call(({arguments},), {convert}, write={row.write})\n"
    )


def _raw_stub_signature(row: RawRow) -> str:
    params = []
    for written, _ in _raw_parts(row):
        name, _, default = written.partition("=")
        params.append(f"{name}: Any" + (f" = {default}" if default else ""))
    return ", ".join(["self", *params])


# How a parameter of each kind becomes the command's arguments (`{0}`: its name).
_ARGUMENT = {
    "k": "self.make_key({0}, version)",
    "v": "self._native.encode({0})",
    "m": "self._native.encode_member({0})",
    "p": "{0}",
    "t": "_whole_timeout(self, {0})",
    "s": "_moment({0}, 1)",
    "S": "_moment({0}, 1000)",
}
_ARGUMENTS = {
    "k": "*[self.make_key(k, version) for k in {0}]",
    "v": "*[self._native.encode(v) for v in {0}]",
    "m": "*[self._native.encode_member(m) for m in {0}]",
    "p": "*{0}",
}


def _whole_timeout(client: Any, timeout: Any) -> int:
    """A timeout as EXPIRE takes it: whole units, the cache's default for ``DEFAULT_TIMEOUT``."""
    if timeout is DEFAULT_TIMEOUT:
        timeout = client._backend.default_timeout
    return int(timeout)


def _moment(when: datetime | float, scale: int) -> int:
    """A datetime or a Unix time, in whole seconds (`scale` 1) or milliseconds (1000)."""
    if isinstance(when, datetime):
        return int(when.timestamp() * scale)
    return int(when * scale) if scale != 1 else int(when)


def _remaining(reply: int) -> int | None:
    """TTL's reply as django-redis gives it: None for a key without expiry, 0 for a missing
    key (Redis's -1 and -2)."""
    return None if reply == -1 else max(reply, 0)


def _parts(row: Row) -> list[tuple[str, str, bool]]:
    """Each parameter as (kind, name, several)."""
    parts = []
    for param in row.params:
        kind, _, name = param.partition(":")
        if kind not in KINDS:
            raise ValueError(f"{row.name}: unknown parameter kind {kind!r}")
        parts.append((kind, name.lstrip("*"), name.startswith("*")))
    return parts


def _signature(row: Row, typed: bool) -> str:
    """The parameters, then django-redis's ``version`` and ``client`` (keyword-only after a
    ``*`` parameter, as in django-redis)."""
    params = [
        ("*" if several else "") + name + (f": {KINDS[kind]}" if typed else "")
        for kind, name, several in _parts(row)
    ]
    version = "version: int | None = None" if typed else "version=None"
    client = "client: Any = None" if typed else "client=None"
    return ", ".join(["self", *params, version, client])


def _argument(kind: str, name: str, several: bool) -> str:
    return (_ARGUMENTS if several else _ARGUMENT)[kind].format(name)


def _source(row: Row) -> str:
    """The method's description: its one command. Several keys (they must reach one node: one
    shard, one slot) come first and are named to the native client, which routes by them."""
    parts = _parts(row)
    keys = [part for part in parts if part[0] == "k"]
    body, routed = "", ""
    if len(keys) > 1 or any(several for _, _, several in keys):
        if parts[: len(keys)] != keys:
            raise ValueError(f"{row.name}: the keys must come first")
        body = f"    made = [{', '.join(_argument(*key) for key in keys)}]\n"
        parts, routed = [("p", "*made", False), *parts[len(keys) :]], ", made"
    arguments = ", ".join([repr(row.command), *(_argument(*part) for part in parts)])
    step = f"(yield Command({row.write}, ({arguments},), {row.reply}{routed}))"
    return f"def {row.name}({_signature(row, typed=False)}):\n{body}    return {row.then}({step})\n"


def _build() -> type:
    namespace: dict[str, Any] = {
        "Command": Command,
        "_whole_timeout": _whole_timeout,
        "_moment": _moment,
        "_remaining": _remaining,
    }
    methods: dict[str, Any] = {}
    for row in TABLE:
        exec(_source(row), namespace)  # noqa: S102 - the table's own text, no input
        method = namespace.pop(row.name)
        method.__qualname__ = f"TableCommands.{row.name}"
        method.__doc__ = f"``{row.command}`` (the command table's row)."
        methods[row.name] = described(method)
        methods[row.name].async_twin.__qualname__ = f"TableCommands.a{row.name}"
    return add_async_twins(type("TableCommands", (), methods))


TableCommands = _build()


def _build_raw() -> type:
    namespace: dict[str, Any] = {
        "_bool": _bool,
        "_as_set": _as_set,
        "_is_pong": _is_pong,
        "_pairs_to_dict": _pairs_to_dict,
    }
    methods: dict[str, Any] = {}
    for row in RAW_TABLE:
        exec(_raw_source(row), namespace)  # noqa: S102 - the table's own text, no input
        method = methods[row.name] = namespace.pop(row.name)
        method.__qualname__ = f"RawTableCommands.{row.name}"
        method.__doc__ = f"``{row.command}``, as redis-py's client sends it."
    return type("RawTableCommands", (), methods)


RawTableCommands = _build_raw()


def stub() -> str:
    """The typed stub of ``TableCommands`` and ``RawTableCommands``: what ``_table_stub.pyi``
    holds."""
    lines = [
        '"""Generated from the command table (``table.py``) by ``table.stub()``: do not edit."""',
        "",
        "from datetime import datetime",
        "from typing import Any",
        "",
        "class TableCommands:",
    ]
    for row in TABLE:
        signature = _signature(row, typed=True)
        lines.append(f"    def {row.name}({signature}) -> {row.return_type}: ...")
        lines.append(f"    async def a{row.name}({signature}) -> {row.return_type}: ...")
    lines += ["", "class RawTableCommands:"]
    for raw in RAW_TABLE:
        lines.append(f"    def {raw.name}({_raw_stub_signature(raw)}) -> Any: ...")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from pathlib import Path

    Path(__file__).with_name("_table_stub.pyi").write_text(stub())
