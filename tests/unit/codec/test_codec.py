"""Avro in the Confluent wire format: round trips, errors that go to the dead-letter topic, and
backward compatibility of every kept schema version (BRIEF §5: the log is replayed from 0)."""

from __future__ import annotations

import io
import json
import re
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest
from builders import ev
from fastavro.read import SchemaResolutionError

from stocksync.codec.avro import Undecodable, decode, encode, encode_latest
from stocksync.codec.events import SALE_SUBJECT, STOCK_SUBJECT, decode_event, encode_event
from stocksync.codec.outputs import (
    decode_dead_letter,
    decode_projection,
    encode_dead_letter,
    encode_projection,
    projection_key,
)
from stocksync.codec.schemas import SchemaRegistry, UnknownSchema, registry, schemas_dir
from stocksync.domain.effects import ChannelQuantityChanged
from stocksync.domain.events import EventKind as K
from stocksync.domain.events import InvalidEvent, InventoryEvent
from stocksync.domain.limits import (
    CHANNEL_MAX,
    EVENT_ID_MAX,
    LOCATION_MAX,
    QUANTITY_MAX,
    REASON_MAX,
    REQUEST_ID_MAX,
    RESERVATION_ID_MAX,
    SKU_MAX,
    SOURCE_MAX,
)

SCHEMAS = schemas_dir()
INDEX = json.loads((SCHEMAS / "registry.json").read_text())["schemas"]
SUBJECTS = sorted({entry["subject"] for entry in INDEX})


def header(schema_id: int) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id)


def latest_id(subject: str) -> int:
    return registry().latest[subject].id


def sale_record(**changes: Any) -> dict[str, Any]:
    record = {
        "event_id": "ord-1",
        "source": "marketplace",
        "source_seq": 1,
        "sku": "SKU-1",
        "location": "dc-1",
        "quantity": 2,
        "occurred_at": 1_700_000_000_000,
        "type": "SOLD",
        "reason": None,
    }
    return {**record, **changes}


# --- events -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "subject"),
    [
        (ev(K.RECEIVED, 12, reason="po-77"), STOCK_SUBJECT),
        (ev(K.ADJUSTED, -3, reason="shrink"), STOCK_SUBJECT),
        (ev(K.COUNTED, 0), STOCK_SUBJECT),
        (ev(K.SOLD, 1, source="pos", loc="store-1"), SALE_SUBJECT),
        (ev(K.RETURNED, 1, source="web", reason="damaged"), SALE_SUBJECT),
    ],
)
def test_event_survives_encode_and_decode_with_a_confluent_header(
    event: InventoryEvent, subject: str
) -> None:
    payload = encode_event(event)
    assert payload[:5] == header(latest_id(subject))
    assert decode_event(payload) == event


def test_event_encoded_by_plain_fastavro_from_the_avsc_file_decodes() -> None:
    # given a client that knows only the published .avsc and the registry id (no stocksync code)
    entry = next(e for e in INDEX if e["subject"] == SALE_SUBJECT)
    schema = fastavro.parse_schema(json.loads((SCHEMAS / entry["file"]).read_text()))
    body = io.BytesIO()
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # a client passing a datetime
    fastavro.schemaless_writer(body, schema, sale_record(occurred_at=when, type="RESERVED"))
    # when the bytes with a hand-written header are decoded
    event = decode_event(header(entry["id"]) + body.getvalue())
    # then it is the event the client meant, time as epoch milliseconds
    assert (event.kind, event.quantity, event.sku) == (K.RESERVED, 2, "SKU-1")
    assert event.occurred_at == epoch_ms(when)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": -1}, "quantity"),
        ({"sku": ""}, "sku"),
        ({"location": ""}, "location"),
        ({"source_seq": -5}, "source_seq"),
        ({"event_id": ""}, "event_id"),
    ],
)
def test_well_formed_event_that_makes_no_sense_is_invalid(
    changes: dict[str, Any], named: str
) -> None:
    payload = encode_latest(sale_record(**changes), SALE_SUBJECT)
    with pytest.raises(InvalidEvent, match=named):
        decode_event(payload)


# --- size limits (BRIEF §3: a field over its length limit is dead-lettered) ----------------

# (field, limit, record changes that make the field meaningful); counterpart_location is
# StockEvent v2 only
EVENT_STRING_LIMITS = [
    ("event_id", EVENT_ID_MAX, {}),
    ("source", SOURCE_MAX, {}),
    ("sku", SKU_MAX, {}),
    ("location", LOCATION_MAX, {}),
    ("reason", REASON_MAX, {}),
    ("counterpart_location", LOCATION_MAX, {"type": "TRANSFER_OUT"}),
]


def stock_record(**changes: Any) -> dict[str, Any]:
    return sale_record(**{"type": "RECEIVED", **changes})


def every_event_version() -> list[Any]:
    return [*registry().versions(STOCK_SUBJECT), *registry().versions(SALE_SUBJECT)]


def event_payloads(field: str, value: str, changes: dict[str, Any]) -> list[bytes]:
    """The field set to value, written with every kept version that has the field."""
    payloads = []
    for version in every_event_version():
        if field not in {f["name"] for f in version.definition["fields"]}:
            continue
        make = stock_record if version.subject == STOCK_SUBJECT else sale_record
        payloads.append(encode(make(**{field: value, **changes}), version))
    return payloads


@pytest.mark.parametrize(("field", "limit", "changes"), EVENT_STRING_LIMITS)
def test_an_event_string_at_its_limit_is_applied(
    field: str, limit: int, changes: dict[str, Any]
) -> None:
    payloads = event_payloads(field, "x" * limit, changes)
    assert payloads
    for payload in payloads:
        assert getattr(decode_event(payload), field) == "x" * limit


@pytest.mark.parametrize(("field", "limit", "changes"), EVENT_STRING_LIMITS)
def test_an_event_string_one_over_its_limit_is_invalid_naming_the_field_and_limit(
    field: str, limit: int, changes: dict[str, Any]
) -> None:
    for payload in event_payloads(field, "x" * (limit + 1), changes):
        with pytest.raises(InvalidEvent) as caught:
            decode_event(payload)
        assert str(caught.value) == f"{field} is {limit + 1} characters, the limit is {limit}"


# The subjects producers write to the worker's input topics, and the limit of each string.
INPUT_STRING_LIMITS: dict[str, dict[str, int]] = {
    STOCK_SUBJECT: {
        "event_id": EVENT_ID_MAX,
        "source": SOURCE_MAX,
        "sku": SKU_MAX,
        "location": LOCATION_MAX,
        "reason": REASON_MAX,
        "counterpart_location": LOCATION_MAX,
    },
    SALE_SUBJECT: {
        "event_id": EVENT_ID_MAX,
        "source": SOURCE_MAX,
        "sku": SKU_MAX,
        "location": LOCATION_MAX,
        "reason": REASON_MAX,
        "reservation_id": RESERVATION_ID_MAX,
    },
    "reservation-command": {
        "request_id": REQUEST_ID_MAX,
        "sku": SKU_MAX,
        "reservation_id": RESERVATION_ID_MAX,
        "channel": CHANNEL_MAX,
        "location": LOCATION_MAX,
    },
}
UNBOUNDED = {"string", "bytes", "array", "map"}


def has_unbounded_type(schema: Any) -> bool:
    if isinstance(schema, list):
        return any(has_unbounded_type(s) for s in schema)
    if isinstance(schema, dict):
        return schema["type"] in UNBOUNDED or (
            schema["type"] == "record"
            and any(has_unbounded_type(f["type"]) for f in schema["fields"])
        )
    return schema in UNBOUNDED


@pytest.mark.parametrize("subject", sorted(INPUT_STRING_LIMITS))
def test_every_string_of_every_kept_input_version_has_a_limit(subject: str) -> None:
    # a new version adding a string (or bytes, array, map) must add its limit too
    for version in registry().versions(subject):
        unbounded = {
            f["name"] for f in version.definition["fields"] if has_unbounded_type(f["type"])
        }
        assert unbounded <= set(INPUT_STRING_LIMITS[subject]), (version.file, unbounded)
    assert set(INPUT_STRING_LIMITS[subject]) == {
        f["name"]
        for v in registry().versions(subject)
        for f in v.definition["fields"]
        if has_unbounded_type(f["type"])
    }


def test_the_limits_in_schemas_readme_are_the_enforced_ones() -> None:
    text = (SCHEMAS / "README.md").read_text()
    section = text[text.index("## 3a. Size limits") : text.index("## 4. ")]
    documented: dict[str, dict[str, int]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        limit = re.fullmatch(r"(\d+) characters", cells[2]) if len(cells) == 4 else None
        if limit is None:
            continue
        assert cells[3].startswith("dead letter, `invalid`"), line
        for subject in re.findall(r"`([a-z-]+)`", cells[0]):
            documented.setdefault(subject, {})[cells[1].strip("`")] = int(limit.group(1))
    assert documented == INPUT_STRING_LIMITS


def test_a_reason_over_256_characters_is_invalid_with_the_field_named() -> None:
    payload = encode_latest(sale_record(reason="r" * 1_048_576), SALE_SUBJECT)
    with pytest.raises(InvalidEvent) as caught:
        decode_event(payload)
    # the reason of the dead letter names the field and the limit, without the megabyte
    assert str(caught.value) == "reason is 1048576 characters, the limit is 256"


def test_limits_count_characters_not_utf8_bytes() -> None:
    sku = "Ä" * SKU_MAX  # 256 bytes of UTF-8
    assert decode_event(encode_latest(sale_record(sku=sku), SALE_SUBJECT)).sku == sku
    with pytest.raises(InvalidEvent, match=f"sku is {SKU_MAX + 1} characters"):
        decode_event(encode_latest(sale_record(sku=sku + "Ä"), SALE_SUBJECT))


@pytest.mark.parametrize("quantity", [QUANTITY_MAX, -QUANTITY_MAX])
def test_an_adjustment_at_the_quantity_limit_is_applied(quantity: int) -> None:
    payload = encode_latest(stock_record(type="ADJUSTED", quantity=quantity), STOCK_SUBJECT)
    assert decode_event(payload).quantity == quantity


@pytest.mark.parametrize(
    ("kind", "quantity"),
    [
        ("ADJUSTED", QUANTITY_MAX + 1),
        ("ADJUSTED", -QUANTITY_MAX - 1),
        ("COUNTED", QUANTITY_MAX + 1),
        ("RECEIVED", 2**63 - 1),
    ],
)
def test_a_quantity_beyond_the_limit_is_invalid_naming_the_limit(kind: str, quantity: int) -> None:
    payload = encode_latest(stock_record(type=kind, quantity=quantity), STOCK_SUBJECT)
    with pytest.raises(InvalidEvent) as caught:
        decode_event(payload)
    assert str(caught.value) == f"quantity {quantity} is beyond the limit of ±{QUANTITY_MAX}"


def test_projection_on_the_event_topic_is_not_an_inventory_event() -> None:
    payload = encode_projection(ChannelQuantityChanged("web", "SKU-1", 3, 1, 1, 0))
    with pytest.raises(InvalidEvent, match="channel-atp"):
        decode_event(payload)


# --- bytes that cannot be read ------------------------------------------------------------


@pytest.mark.parametrize("payload", [None, b"", b"\x00", b"\x00\x00\x00\x00"])
def test_message_shorter_than_the_header_is_undecodable(payload: bytes | None) -> None:
    with pytest.raises(Undecodable, match="shorter than the header"):
        decode_event(payload)


@pytest.mark.parametrize("payload", [b"hello, world", b'{"sku": "SKU-1"}', b"\x01" + b"\0" * 20])
def test_bytes_without_the_magic_byte_are_undecodable(payload: bytes) -> None:
    with pytest.raises(Undecodable, match="0x00"):
        decode_event(payload)


def test_wrong_magic_byte_is_reported_as_it_was_sent() -> None:
    with pytest.raises(Undecodable, match="0xff"):
        decode(b"\xff" + encode_event(ev(K.RECEIVED, 1))[1:])


def test_unknown_schema_id_is_reported_with_the_known_ids() -> None:
    payload = header(999) + encode_event(ev(K.RECEIVED, 1))[5:]
    with pytest.raises(UnknownSchema) as caught:
        decode_event(payload)
    assert "999" in str(caught.value)
    assert str(latest_id(STOCK_SUBJECT)) in str(caught.value)


@pytest.mark.parametrize("cut", [1, 2, 5, 10])
def test_truncated_body_is_undecodable(cut: int) -> None:
    payload = encode_event(ev(K.SOLD, 1, source="pos", reason="x"))
    with pytest.raises(Undecodable, match=f"schema id {latest_id(SALE_SUBJECT)}"):
        decode_event(payload[:-cut])


def test_header_without_a_body_is_undecodable() -> None:
    with pytest.raises(Undecodable):
        decode_event(header(latest_id(STOCK_SUBJECT)))


def test_trailing_bytes_after_a_record_are_undecodable() -> None:
    payload = encode_event(ev(K.RECEIVED, 1)) + b"\x00\x01"
    with pytest.raises(Undecodable, match="2 trailing bytes"):
        decode_event(payload)


def test_garbage_body_with_a_valid_header_is_undecodable() -> None:
    payload = header(latest_id(STOCK_SUBJECT)) + b"\xff" * 40
    with pytest.raises((Undecodable, InvalidEvent)):
        decode_event(payload)


# --- what the worker publishes ------------------------------------------------------------


def test_projection_survives_encode_and_decode() -> None:
    change = ChannelQuantityChanged("marketplace", "SKU-1", 26, 3, 17, 1_700_000_000_000)
    payload = encode_projection(change)
    assert payload[:5] == header(latest_id("channel-atp"))
    assert decode_projection(payload) == change


def test_projection_key_splits_at_the_first_colon() -> None:
    assert projection_key("web", "SKU:1").split(b":", 1) == [b"web", b"SKU:1"]


@pytest.mark.parametrize(("key", "value"), [(b"SKU-1", b"\xff\x00garbage"), (None, None)])
def test_dead_letter_keeps_the_reason_and_the_original_bytes(
    key: bytes | None, value: bytes | None
) -> None:
    payload = encode_dead_letter(
        reason="first byte is 0xff",
        error="undecodable",
        topic="stock-events",
        partition=3,
        offset=42,
        key=key,
        value=value,
        at_ms=1_700_000_000_000,
    )
    record = decode_dead_letter(payload)
    assert record["original_key"] == key
    assert record["original_value"] == value
    assert (record["reason"], record["error"]) == ("first byte is 0xff", "undecodable")
    assert (record["topic"], record["partition"], record["offset"]) == ("stock-events", 3, 42)
    assert record["dead_lettered_at"] == 1_700_000_000_000


def test_decoders_refuse_a_message_of_another_subject() -> None:
    event = encode_event(ev(K.RECEIVED, 1))
    with pytest.raises(ValueError, match="channel-atp"):
        decode_projection(event)
    with pytest.raises(ValueError, match="dead-letter"):
        decode_dead_letter(event)


# --- the registry and backward compatibility ----------------------------------------------


def test_registry_ids_are_unique() -> None:
    ids = [entry["id"] for entry in INDEX]
    assert len(ids) == len(set(ids))


def test_each_subject_keeps_every_version_from_1() -> None:
    for subject in SUBJECTS:
        versions = sorted(e["version"] for e in INDEX if e["subject"] == subject)
        assert versions == list(range(1, len(versions) + 1)), subject


def test_registry_files_exist_and_the_newest_version_is_the_reader() -> None:
    reg = registry()
    for subject in SUBJECTS:
        entries = [e for e in INDEX if e["subject"] == subject]
        assert all((SCHEMAS / e["file"]).is_file() for e in entries)
        assert reg.latest[subject].version == max(e["version"] for e in entries)


def test_registry_refuses_an_id_used_twice(tmp_path: Path) -> None:
    doc = {"schemas": [dict(INDEX[0]), {**INDEX[1], "id": INDEX[0]["id"]}]}
    for entry in doc["schemas"]:
        (tmp_path / entry["file"]).write_text((SCHEMAS / entry["file"]).read_text())
    (tmp_path / "registry.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=f"schema id {INDEX[0]['id']} is used twice"):
        SchemaRegistry(tmp_path)


def _width(schema: Any) -> int:
    """Largest number of choices (enum symbols, union branches) anywhere in the schema."""
    if isinstance(schema, list):
        return max([len(schema), *(_width(s) for s in schema)])
    if not isinstance(schema, dict):
        return 1
    kind = schema.get("type")
    if kind == "enum":
        return len(schema["symbols"])
    if kind == "record":
        return max([1, *(_width(f["type"]) for f in schema["fields"])])
    if kind == "array":
        return _width(schema["items"])
    if kind == "map":
        return _width(schema["values"])
    return _width(kind)


PRIMITIVE_SAMPLES: dict[str, Any] = {
    "null": None,
    "boolean": True,
    "int": 7,
    "long": 1_700_000_000_000,
    "float": 1.5,
    "double": 2.25,
    "bytes": b"\x00\xffbytes",
    "string": "sample",
}


def sample(schema: Any, choice: int, named: dict[str, Any] | None = None) -> Any:
    """A value of the schema; `choice` picks which enum symbol / union branch to use."""
    named = {} if named is None else named
    if isinstance(schema, str):
        return (
            PRIMITIVE_SAMPLES[schema]
            if schema in PRIMITIVE_SAMPLES
            else sample(named[schema], choice, named)
        )
    if isinstance(schema, list):
        return sample(schema[choice % len(schema)], choice, named)
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        named[schema["name"]] = schema
        if "namespace" in schema:
            named[f"{schema['namespace']}.{schema['name']}"] = schema
    if kind == "record":
        return {f["name"]: sample(f["type"], choice, named) for f in schema["fields"]}
    if kind == "enum":
        return schema["symbols"][choice % len(schema["symbols"])]
    if kind == "fixed":
        return b"\x01" * schema["size"]
    if kind == "array":
        return [sample(schema["items"], choice, named)]
    if kind == "map":
        return {"k": sample(schema["values"], choice, named)}
    return sample(kind, choice, named)  # a primitive written as {"type": ..., logicalType...}


def samples(definition: dict[str, Any]) -> list[Any]:
    return [sample(definition, choice) for choice in range(_width(definition))]


def epoch_ms(value: Any) -> Any:
    """fastavro reads timestamp-millis as an aware datetime; compare as epoch milliseconds."""
    if isinstance(value, datetime):
        return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return value


def read_old_with_new(old: dict[str, Any], new: dict[str, Any], record: Any) -> Any:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(old, named_schemas={}), record)
    buffer.seek(0)
    return fastavro.schemaless_reader(
        buffer,
        fastavro.parse_schema(old, named_schemas={}),
        fastavro.parse_schema(new, named_schemas={}),
    )


def kept_pairs() -> list[tuple[str, int, int]]:
    """(subject, writer version, reader version) for every kept version and each later one
    (and itself, so a subject with a single version is still exercised)."""
    pairs = []
    for subject in SUBJECTS:
        versions = [v.version for v in registry().versions(subject)]
        pairs += [(subject, old, new) for old in versions for new in versions if new >= old]
    return pairs


@pytest.mark.parametrize(("subject", "old", "new"), kept_pairs())
def test_every_kept_version_is_readable_by_every_later_version(
    subject: str, old: int, new: int
) -> None:
    by_version = {v.version: v.definition for v in registry().versions(subject)}
    writer, reader = by_version[old], by_version[new]
    common = {f["name"] for f in writer["fields"]} & {f["name"] for f in reader["fields"]}
    for record in samples(writer):
        read = read_old_with_new(writer, reader, record)
        assert set(read) == {f["name"] for f in reader["fields"]}
        assert {k: epoch_ms(read[k]) for k in common} == {k: record[k] for k in common}


@pytest.mark.parametrize("subject", SUBJECTS)
def test_messages_of_every_kept_version_decode_with_the_newest_reader(subject: str) -> None:
    newest_fields = {f["name"] for f in registry().latest[subject].definition["fields"]}
    for version in registry().versions(subject):
        for record in samples(version.definition):
            payload = encode(record, version)
            assert payload[:5] == header(version.id)
            decoded_subject, decoded = decode(payload)
            assert decoded_subject == subject
            assert set(decoded) == newest_fields


def test_compatibility_check_catches_a_new_field_without_default() -> None:
    # the check above must fail for a breaking change, or it proves nothing
    old = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "string"}]}
    new = {**old, "fields": [*old["fields"], {"name": "b", "type": "string"}]}
    with pytest.raises(SchemaResolutionError):
        read_old_with_new(old, new, sample(old, 0))


def test_compatibility_check_catches_a_removed_enum_symbol() -> None:
    enum = {"type": "enum", "name": "T", "symbols": ["A", "B"]}
    old = {"type": "record", "name": "R", "fields": [{"name": "t", "type": enum}]}
    new = {**old, "fields": [{"name": "t", "type": {**enum, "symbols": ["A"]}}]}
    with pytest.raises(SchemaResolutionError):
        for record in samples(old):
            read_old_with_new(old, new, record)
