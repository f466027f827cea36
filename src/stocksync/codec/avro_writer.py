"""Avro binary writers compiled once per schema, for the flat records this project writes.

fastavro's schemaless_writer walks the schema for every record it writes and is slow on records
with many ["null", X] unions: six microseconds for an alert, which the worker writes for a
quarter of the events it folds. `compile_writer` turns a parsed record schema into one Python
function that writes the fields in order, with the bytes schemaless_writer writes for the same
record (tests/unit/test_avro_writer.py checks this over generated records of every schema in
schemas/).

The compiled function only takes the plain path: every field present, each value of the type
its schema names. On anything else (a missing field, a float for a long, a bool in a union, a
string that is not UTF-8, ...) it gives up and hands the whole record to the fallback, which is
fastavro's writer: what it writes or raises is then fastavro's own answer. A schema with a type
outside what is compiled (records of null-free primitives, enums, maps of longs and two-branch
unions with null) is refused with Unsupported, and its caller keeps fastavro.

`compile_object_writer` is the same writer reading each field from an attribute of a record
object (codec/records.py binds schemas to domain records), so no dict is built per record.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Writer = Callable[[Mapping[str, Any]], bytes]
# A writer reading the fields as attributes of a record object (a msgspec Struct, a dataclass)
ObjectWriter = Callable[[Any], bytes]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Longs in [-SMALL_OFFSET, SMALL_OFFSET) are written from a table: quantities, revisions,
# versions and string lengths all are; only timestamps take the loop.
SMALL_OFFSET = 8192


class Unsupported(ValueError):
    """The schema has a type the compiled writers do not handle."""


def _base128(u: int) -> bytes:
    """An unsigned varint: base-128 groups, least significant first, the last without the
    continuation bit."""
    out = bytearray()
    while u > 0x7F:
        out.append(u & 0x7F | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


_GROUPS2 = 1 << 14
# by an unsigned value below _GROUPS2: its varint (one or two bytes)
_UNSIGNED = tuple(_base128(u) for u in range(_GROUPS2))
# by 14 bits: their two groups, both with the continuation bit (more groups follow)
_PAIRS = tuple(bytes((u & 0x7F | 0x80, u >> 7 | 0x80)) for u in range(_GROUPS2))


def _varint(n: int) -> bytes:
    """Avro's long: zig-zag (small magnitudes of either sign give small numbers), then
    base-128, two groups a step (a timestamp takes three steps rather than six)."""
    if not INT64_MIN <= n <= INT64_MAX:
        raise OverflowError(f"{n} does not fit an Avro long")
    u = (n << 1) ^ (n >> 63)
    out = b""
    while u >= _GROUPS2:
        out += _PAIRS[u & (_GROUPS2 - 1)]
        u >>= 14
    return out + _UNSIGNED[u]


# by value + SMALL_OFFSET: the varint of a small long (the zig-zag of -8192..8191 is 0..16383)
_SMALL = tuple(_UNSIGNED[(n << 1) ^ (n >> 63)] for n in range(-SMALL_OFFSET, SMALL_OFFSET))
_LENGTH = _UNSIGNED[: 2 * SMALL_OFFSET : 2]  # by a length (never negative): zig-zag doubles it


# Lines of the generated function that write `v`, one template per type; `{i}` names the
# field's own constants (an enum's symbol table, a union's branch index).
_LONG = "add(SMALL[v + OFFSET] if -OFFSET <= v < OFFSET else varint(v))"
_WRITE = {
    "boolean": ["add(TRUE if v else FALSE)"],
    "int": [_LONG],  # fastavro writes an int's value as a long, without a range check
    "long": [_LONG],
    "string": [
        "b = str_encode(v)",  # a TypeError for what is not a str, as fastavro's
        "n = len(b)",
        "add(LENGTH[n] if n < OFFSET else varint(n))",
        "add(b)",
    ],
    "bytes": [
        "if type(v) is not bytes:",  # bytearray, memoryview: fastavro's business
        "    raise GiveUp",
        "n = len(v)",
        "add(LENGTH[n] if n < OFFSET else varint(n))",
        "add(v)",
    ],
    "enum": ["add(SYMBOL{i}[v])"],  # a KeyError for an unknown symbol
    # a map of longs, as fastavro writes one: one block (count, then key and value pairs),
    # then the empty block that ends it
    "map_long": [
        "if type(v) is not dict:",
        "    raise GiveUp",
        "if v:",
        "    n = len(v)",
        "    add(LENGTH[n] if n < OFFSET else varint(n))",
        "    for k, x in v.items():",
        "        if type(x) is not int:",
        "            raise GiveUp",
        "        b = str_encode(k)",
        "        m = len(b)",
        "        add(LENGTH[m] if m < OFFSET else varint(m))",
        "        add(b)",
        "        add(SMALL[x + OFFSET] if -OFFSET <= x < OFFSET else varint(x))",
        "add(FALSE)",  # (the byte of a zero count)
    ],
}
# What fastavro accepts for a union's non-null branch, when narrower than the branch's writer
# above (a bool is an int, yet not a union's long).
_UNION_CHECK = {
    "boolean": "type(v) is not bool",
    "int": "type(v) is not int or not INT32_MIN <= v <= INT32_MAX",
    "long": "type(v) is not int",
}


class GiveUp(Exception):
    """Raised inside a compiled writer: the record is not on the plain path."""


def _resolve(node: Any, named: Mapping[str, Any]) -> tuple[str, Any]:
    """(type name, schema node) of a field type: primitives, enums and named references."""
    if isinstance(node, str):
        if node in _WRITE:
            return node, node
        if node in named:
            return _resolve(named[node], named)
        raise Unsupported(f"type {node!r}")
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "enum":
            return kind, node
        if kind == "map" and node.get("values") in ("long", {"type": "long"}):
            return "map_long", node
        if isinstance(kind, str) and kind in _WRITE:  # {"type": "long"}, a primitive
            return kind, kind
    raise Unsupported(f"type {node!r}")


def _field_lines(node: Any, named: Mapping[str, Any], i: int, consts: dict[str, Any]) -> list[str]:
    if isinstance(node, list):  # a union: only ["null", X] and [X, "null"]
        if len(node) != 2 or "null" not in node:
            raise Unsupported(f"union {node!r}")
        null_index = node.index("null")
        kind, branch = _resolve(node[1 - null_index], named)
        if kind == "enum":
            consts[f"SYMBOL{i}"] = _symbols(branch)
        consts[f"NULL{i}"] = _varint(null_index)
        consts[f"BRANCH{i}"] = _varint(1 - null_index)
        lines = ["if v is None:", f"    add(NULL{i})", "else:"]
        if kind in _UNION_CHECK:
            lines += [f"    if {_UNION_CHECK[kind]}:", "        raise GiveUp"]
        lines.append(f"    add(BRANCH{i})")
        return lines + [f"    {line.format(i=i)}" for line in _WRITE[kind]]
    kind, resolved = _resolve(node, named)
    if kind == "enum":
        consts[f"SYMBOL{i}"] = _symbols(resolved)
    return [line.format(i=i) for line in _WRITE[kind]]


def _symbols(enum: Mapping[str, Any]) -> dict[str, bytes]:
    return {symbol: _varint(index) for index, symbol in enumerate(enum["symbols"])}


def compile_writer(schema: Mapping[str, Any], fallback: Writer, prefix: bytes = b"") -> Writer:
    """A function writing `prefix` then a record of the (fastavro-parsed) `schema`, as
    `fallback` (fastavro's schemaless_writer after the same prefix) would. Raises Unsupported
    for a schema with a type outside those handled here."""
    fields = _record_fields(schema)
    # missing: a KeyError, fastavro's turn
    writer: Writer = _compile(schema, [f"record[{f['name']!r}]" for f in fields], fallback, prefix)
    return writer


def compile_object_writer(
    schema: Mapping[str, Any],
    attributes: Sequence[str],
    fallback: ObjectWriter,
    prefix: bytes = b"",
) -> ObjectWriter:
    """As compile_writer, for a record object whose attribute `attributes[i]` holds the
    schema's field i: no dict is built for the plain path. `fallback` gets the object."""
    fields = _record_fields(schema)
    if len(attributes) != len(fields):
        raise ValueError(f"{len(attributes)} attributes for {len(fields)} fields")
    for name in attributes:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"{name!r} is not an attribute name")
    # missing: an AttributeError, the fallback's turn
    return _compile(schema, [f"record.{name}" for name in attributes], fallback, prefix)


def _record_fields(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if not isinstance(schema, Mapping) or schema.get("type") != "record":
        raise Unsupported("not a record schema")
    fields: list[Mapping[str, Any]] = schema["fields"]
    return fields


def _compile(
    schema: Mapping[str, Any],
    reads: Sequence[str],
    fallback: Callable[[Any], bytes],
    prefix: bytes,
) -> Callable[[Any], bytes]:
    named = schema.get("__named_schemas", {})
    consts: dict[str, Any] = {}
    body: list[str] = []
    for i, (field, read) in enumerate(zip(schema["fields"], reads, strict=True)):
        body.append(f"v = {read}")
        body += _field_lines(field["type"], named, i, consts)
    source = "\n".join(
        [
            "def write(record):",
            "    try:",
            "        parts = [PREFIX]",
            "        add = parts.append",
            *(f"        {line}" for line in body),
            "        return b''.join(parts)",
            "    except Exception:",  # off the plain path: the fallback writes or raises
            "        return fallback(record)",
        ]
    )
    namespace: dict[str, Any] = {
        **consts,
        "PREFIX": prefix,
        "SMALL": _SMALL,
        "LENGTH": _LENGTH,
        "OFFSET": SMALL_OFFSET,
        "INT32_MIN": INT32_MIN,
        "INT32_MAX": INT32_MAX,
        "TRUE": b"\x01",
        "FALSE": b"\x00",
        "GiveUp": GiveUp,
        "varint": _varint,
        "str_encode": str.encode,
        "fallback": fallback,
    }
    exec(compile(source, f"<avro writer of {schema.get('name')}>", "exec"), namespace)
    writer: Callable[[Any], bytes] = namespace["write"]
    return writer
