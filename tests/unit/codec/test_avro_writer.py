"""The compiled Avro writers (codec/avro_writer.py) write what fastavro's schemaless_writer
writes, byte for byte, for every schema in schemas/; off their plain path (a missing field, a
value of another type) they hand the record to fastavro, so the outcome is fastavro's own."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from enum import IntEnum, StrEnum
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stocksync.codec.avro import HEADER, MAGIC, encode
from stocksync.codec.avro_writer import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    SMALL_OFFSET,
    ObjectWriter,
    Unsupported,
    Writer,
    compile_object_writer,
    compile_writer,
)
from stocksync.codec.schemas import SchemaVersion, registry

KEPT = sorted(registry().by_id.values(), key=lambda s: s.id)
# Every type and union the writers compile, beyond what the kept schemas use.
EVERY_TYPE = {
    "type": "record",
    "name": "EveryType",
    "namespace": "test",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "count", "type": "int"},
        {"name": "level", "type": {"type": "enum", "name": "Level", "symbols": ["A", "B", "C"]}},
        {"name": "again", "type": ["null", "test.Level"]},  # a named reference
        {"name": "maybe_flag", "type": ["null", "boolean"]},
        {"name": "maybe_count", "type": ["null", "int"]},
        {"name": "maybe_long", "type": ["long", "null"], "default": 0},
        {"name": "maybe_text", "type": ["string", "null"], "default": ""},
        {"name": "maybe_bytes", "type": ["null", "bytes"]},
        {"name": "payload", "type": "bytes"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
SYNTHETIC = SchemaVersion(
    id=9_999,
    subject="every-type",
    version=1,
    file="every_type (synthetic)",
    definition=EVERY_TYPE,
    parsed=parse_schema(EVERY_TYPE, named_schemas={}),
)
SCHEMAS = [*KEPT, SYNTHETIC]
# The records the worker and the connectors publish; each must compile (not fall back).
OUTPUTS = {"alert", "channel-atp", "dead-letter", "reservation-reply", "published-quantity"}
R = TypeVar("R")  # what a writer takes: a record mapping, or an object with attributes
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fastavro_bytes(record: Mapping[str, Any], schema: SchemaVersion) -> bytes:
    buffer = io.BytesIO()
    buffer.write(HEADER.pack(MAGIC, schema.id))
    schemaless_writer(buffer, schema.parsed, record)
    return buffer.getvalue()


def outcome(write: Callable[[R], bytes], record: R) -> bytes | tuple[str, str]:
    try:
        written: bytes = write(record)
    except Exception as exc:  # fastavro raises several types for a record it cannot write
        return type(exc).__name__, str(exc)
    return written


class Fallback:
    """fastavro, counting the records handed to it."""

    def __init__(self, schema: SchemaVersion) -> None:
        self.schema = schema
        self.calls = 0

    def __call__(self, record: Mapping[str, Any]) -> bytes:
        self.calls += 1
        return fastavro_bytes(record, self.schema)


def compiled(schema: SchemaVersion) -> tuple[Writer, Fallback]:
    fallback = Fallback(schema)
    return compile_writer(schema.parsed, fallback, HEADER.pack(MAGIC, schema.id)), fallback


LONGS = st.one_of(
    st.integers(-SMALL_OFFSET - 2, SMALL_OFFSET + 2),  # the table's edges
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from([INT64_MIN, INT64_MAX, 1_795_963_229_273, -1, 0, 63, 64, -64, -65]),
)


def branch_type(node: Any, named: Mapping[str, Any]) -> Any:
    if isinstance(node, str) and node in named:
        return named[node]
    if isinstance(node, dict) and node.get("type") not in ("enum", "map"):
        return node["type"]  # {"type": "long"}: a primitive
    return node


def values(node: Any, named: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a field type that fastavro writes without complaint."""
    node = branch_type(node, named)
    if isinstance(node, list):
        return st.one_of(*(values(branch, named) for branch in node))
    if isinstance(node, dict) and node["type"] == "map":
        return st.dictionaries(st.text(), values(node["values"], named), max_size=3)
    if isinstance(node, dict):  # an enum
        return st.sampled_from(node["symbols"])
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(INT32_MIN, INT32_MAX),
        "long": LONGS,
        "string": st.text(),
        "bytes": st.binary(),
    }[node]


class Level(StrEnum):  # a str subclass, as the project's enums are
    LOW = "LOW_STOCK"


class Small(IntEnum):
    ONE = 1


# Values off the plain path: other types, ints past 64 bits, strings that are not UTF-8.
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.builds(bytearray, st.binary(max_size=3)),
    st.just("\ud800"),
    st.just(Level.LOW),
    st.just(Small.ONE),
    st.just("OVERSELL"),
)


def records(schema: SchemaVersion) -> st.SearchStrategy[dict[str, Any]]:
    named = schema.parsed.get("__named_schemas", {})
    return st.fixed_dictionaries(
        {f["name"]: values(f["type"], named) for f in schema.parsed["fields"]}
    )


@st.composite
def spoilt_records(draw: st.DrawFn, schema: SchemaVersion) -> dict[str, Any]:
    """A right record with one or two fields given an odd value or left out."""
    record = draw(records(schema))
    for name in draw(
        st.lists(st.sampled_from(sorted(record)), min_size=1, max_size=2, unique=True)
    ):
        if draw(st.booleans()):
            record[name] = draw(ODD)
        else:
            del record[name]
    return record


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.file)
def test_every_kept_schema_compiles(schema: SchemaVersion) -> None:
    compiled(schema)  # no Unsupported: each kept schema takes the compiled path


def test_the_published_records_are_all_covered() -> None:
    assert {s.subject for s in KEPT} >= OUTPUTS


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.file)
@EXAMPLES
@given(data=st.data())
def test_a_record_is_written_as_fastavro_writes_it(schema: SchemaVersion, data: Any) -> None:
    record = data.draw(records(schema))
    write, fallback = compiled(schema)
    assert write(record) == fastavro_bytes(record, schema)
    assert fallback.calls == 0  # the plain path wrote it


def object_writer(schema: SchemaVersion) -> tuple[ObjectWriter, Fallback]:
    """The writer reading attributes, its fallback given the object's fields as a record."""
    fallback = Fallback(schema)
    names = [f["name"] for f in schema.parsed["fields"]]
    return compile_object_writer(
        schema.parsed,
        names,
        lambda obj: fallback({n: getattr(obj, n) for n in names if hasattr(obj, n)}),
        HEADER.pack(MAGIC, schema.id),
    ), fallback


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.file)
@EXAMPLES
@given(data=st.data())
def test_an_object_is_written_as_fastavro_writes_its_record(
    schema: SchemaVersion, data: Any
) -> None:
    record = data.draw(records(schema))
    write, fallback = object_writer(schema)
    assert write(SimpleNamespace(**record)) == fastavro_bytes(record, schema)
    assert fallback.calls == 0


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.file)
@EXAMPLES
@given(data=st.data())
def test_an_odd_object_gets_fastavros_outcome(schema: SchemaVersion, data: Any) -> None:
    record = data.draw(spoilt_records(schema))
    write, _ = object_writer(schema)
    assert outcome(write, SimpleNamespace(**record)) == outcome(
        lambda r: fastavro_bytes(r, schema), record
    )


def test_an_object_writer_takes_attribute_names_only() -> None:
    fields = [{"name": "a", "type": "long"}]
    # fastavro types a parsed schema as any schema form; a record's is a dict (as SchemaVersion)
    schema: Any = parse_schema({"type": "record", "name": "R", "fields": fields}, named_schemas={})
    for bad in (["a.b"], ["class"], ["a", "b"]):
        with pytest.raises(ValueError):
            compile_object_writer(schema, bad, lambda obj: b"")


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.file)
@EXAMPLES
@given(data=st.data())
def test_off_the_plain_path_the_outcome_is_fastavros(schema: SchemaVersion, data: Any) -> None:
    record = data.draw(spoilt_records(schema))
    write, _ = compiled(schema)
    assert outcome(write, record) == outcome(lambda r: fastavro_bytes(r, schema), record)


MISSING = object()
# One of each kind of odd value, for every field of every schema in turn.
ODD_VALUES = [
    MISSING,
    None,
    True,
    False,
    0,
    -1,
    2**63,
    -(2**63) - 1,
    2**31,
    1.5,
    -3.0,
    "",
    "A",
    "\ud800",
    b"x",
    bytearray(b"x"),
    Level.LOW,
    Small.ONE,
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.file)
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_each_odd_value_in_each_field_gets_fastavros_outcome(
    schema: SchemaVersion, data: Any
) -> None:
    base = data.draw(records(schema))
    write, _ = compiled(schema)
    for name in base:
        for odd in ODD_VALUES:
            record = {k: v for k, v in base.items() if k != name}
            if odd is not MISSING:
                record[name] = odd
            expected = outcome(lambda r: fastavro_bytes(r, schema), record)
            assert outcome(write, record) == expected, (name, odd)


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.file)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_encode_writes_the_same_bytes_as_fastavro(schema: SchemaVersion, data: Any) -> None:
    record = data.draw(records(schema))
    assert encode(record, schema) == fastavro_bytes(record, schema)


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "array", "items": "long"},
        {"type": "map", "values": "string"},
        "double",
        ["null", "string", "long"],
        {"type": "record", "name": "Inner", "fields": []},
    ],
    ids=repr,
)
def test_a_schema_beyond_the_compiled_types_is_refused(field_type: Any) -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "f", "type": field_type}]}
    with pytest.raises(Unsupported):
        compile_writer(schema, lambda record: b"")
