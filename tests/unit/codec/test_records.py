"""Codecs derived from the schemas (codec/records.py, codec/bindings.py): every subject is
bound to a record type field by field, the derived codecs write the bytes the hand-written
mappings they replaced wrote, and a field added to a schema and its record type round-trips
with no other edit."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import msgspec
import pytest

from stocksync.codec.avro import HEADER, MAGIC, decode, encode, fastavro_encode
from stocksync.codec.bindings import BY_SUBJECT, DeadLetter, PublishedQuantity
from stocksync.codec.connectors import decode_published, encode_drift_alert, encode_published
from stocksync.codec.events import decode_event, encode_event
from stocksync.codec.outputs import (
    decode_alert,
    decode_dead_letter,
    decode_projection,
    encode_alert,
    encode_dead_letter,
    encode_projection,
)
from stocksync.codec.records import BindingError, RecordCodec, bind_fields
from stocksync.codec.reservations import (
    command_from_record,
    encode_command,
    encode_reply,
    reply_from_record,
)
from stocksync.codec.rows import ROW_FORMAT, row_from_bytes, row_to_bytes
from stocksync.codec.schemas import SchemaRegistry, registry, schemas_dir
from stocksync.domain.effects import (
    ChannelQuantityChanged,
    CountNotMerged,
    OversellDetected,
    StockLevel,
    StockLevelCrossed,
    UnknownLocation,
)
from stocksync.domain.events import SALE_KINDS, STOCK_KINDS, InventoryEvent
from stocksync.domain.events import EventKind as K
from stocksync.domain.reservations import (
    CommandKind,
    ReplyStatus,
    ReservationCommand,
    ReservationReply,
)
from stocksync.domain.state import Answer

AT = 1_700_000_000_000

STOCK = InventoryEvent("evt-1", "wms-east", 1001, "SKU-1", "dc-east", -3, AT, K.ADJUSTED, "shrink")
TRANSFER = InventoryEvent(
    "evt-2", "wms-east", 1002, "SKU-1", "dc-east", 4, AT, K.TRANSFER_OUT, None, "store-1"
)
SALE = InventoryEvent("evt-3", "web", 7, "SKU-1", "dc-east", 2, AT + 1, K.SOLD)
PROJECTION = ChannelQuantityChanged("web", "SKU-1", 10, 1, 1, AT)
COMMAND = ReservationCommand(
    "q1", CommandKind.RESERVE, "SKU-1", "res-1", AT, "web", 4, "dc-1", 60_000, True
)
CONFIRM = ReservationCommand("q2", CommandKind.CONFIRM, "SKU-1", "res-1", AT)
REPLY = ReservationReply(
    request_id="q1",
    reservation_id="res-1",
    kind=CommandKind.RESERVE,
    status=ReplyStatus.HELD,
    sku="SKU-1",
    channel="web",
    location="dc-1",
    quantity=4,
    requested=4,
    available=10,
    expires_at=AT + 60_000,
)
NOT_FOUND = ReservationReply(
    request_id="q2",
    reservation_id="res-2",
    kind=CommandKind.RELEASE,
    status=ReplyStatus.NOT_FOUND,
    sku="SKU-1",
    reason="no active hold",
)
PUBLISHED = PublishedQuantity(
    "web", "SKU-1", 10, 3, 1, AT, "FIRST", 1, AT + 100, AT + 200, "http://x"
)
DRIFT = {
    "channel": "web",
    "sku": "SKU-1",
    "published": 10,
    "displayed": 7,
    "allowed": 1,
    "revision": 3,
    "policy_version": 1,
    "as_of": AT,
    "reported_at": AT + 300,
}

# What the hand-written field-by-field mappings wrote for these records (hex, header
# included), before the codecs were derived from the schemas; the reservation records as
# their version 2 writes them (ids 13 and 14: the v1 bytes, then the reply's empty `lines`
# map and `fingerprint`), alerts as version 3 and sale events as version 2 do (ids 303 and 4:
# the same bytes after the header, then for the sale event its null `reservation_id`).
GOLDEN = {
    "stock": (
        "00000000030a6576742d3110776d732d65617374d20f0a534b552d310e64632d656173740580"
        "a0abfef96202020c736872696e6b00"
    ),
    "transfer": (
        "00000000030a6576742d3210776d732d65617374d40f0a534b552d310e64632d656173740880"
        "a0abfef9620600020e73746f72652d31"
    ),
    "sale": ("00000000040a6576742d33067765620e0a534b552d310e64632d656173740482a0abfef962060000"),
    "projection": "0000000065067765620a534b552d3114020280a0abfef962",
    "oversell": (
        "000000012f2a534b552d313a373a4f56455253454c4c3a64632d31000a534b552d3100020864"
        "632d310600000206652d390206706f73000e80a0abfef96268706f7320736f6c64203320756e"
        "6974287329206f6620534b552d312061742064632d31206265796f6e64206974732073746f63"
        "6b00"
    ),
    "low": (
        "000000012f2a534b552d313a383a4c4f575f53544f434b3a776562020a534b552d3102067765"
        "620004020a0206000002081080a0abfef96254776562206d61792073656c6c2032206f662053"
        "4b552d3120287761732035293a206c6f772073746f636b00"
    ),
    "out": (
        "000000012f30534b552d313a393a4f55545f4f465f53544f434b3a776562040a534b552d3102"
        "067765620000020a00000002081280a0abfef9625a776562206d61792073656c6c2030206f66"
        "20534b552d3120287761732035293a206f7574206f662073746f636b00"
    ),
    "count": (
        "000000012f3c534b552d313a31303a434f554e545f4e4f545f4d45524745443a64632d31080a"
        "534b552d3100020864632d311800000208652d313000001480a0abfef9627c636f756e74206f"
        "6620534b552d312061742064632d31206173206f662031363939393939393939393939206e6f"
        "74206d65726765643a20746f6f206f6c6400"
    ),
    "dead": "00000000c902720e696e76616c6964027406c60102026b0080a0abfef962",
    "command": (
        "000000000d047131000a534b552d310a7265732d3180a0abfef9620677656208020864632d31c0a90701"
    ),
    "command2": "000000000d047132020a534b552d310a7265732d3180a0abfef9620000000000",
    "reply": (
        "000000000e0471310a7265732d3100000a534b552d3106776562020864632d31080814c0c9b2fef962000000"
    ),
    "reply2": (
        "000000000e0471320a7265732d32040c0a534b552d310000000000001c6e6f2061637469766520686f6c640000"
    ),
    "published": (
        "0000000191067765620a534b552d3114060280a0abfef9620a464952535402c8a1abfef96290"
        "a3abfef96210687474703a2f2f78"
    ),
    "drift": (
        "000000012f3e534b552d313a333a44524946543a7765623a313730303030303030303330300a"
        "0a534b552d3102067765620014000202000002020680a0abfef9629a0177656220646973706c"
        "6179732037206f6620534b552d31206275742077617320746f6c6420313020286d6f72652074"
        "68616e2031206170617274293a2073656e64696e6720313020616761696e020e"
    ),
}


def written() -> dict[str, bytes]:
    return {
        "stock": encode_event(STOCK),
        "transfer": encode_event(TRANSFER),
        "sale": encode_event(SALE),
        "projection": encode_projection(PROJECTION),
        "oversell": encode_alert(OversellDetected("SKU-1", "dc-1", "pos", "e-9", 3, AT), 7),
        "low": encode_alert(
            StockLevelCrossed("web", "SKU-1", StockLevel.LOW_STOCK, 2, 5, 3, 4, 8, AT), 8
        ),
        "out": encode_alert(
            StockLevelCrossed("web", "SKU-1", StockLevel.OUT_OF_STOCK, 0, 5, 0, 4, 8, AT), 9
        ),
        "count": encode_alert(
            CountNotMerged("SKU-1", "dc-1", "e-10", 12, AT - 1, "too old", AT), 10
        ),
        "dead": encode_dead_letter(
            reason="r",
            error="invalid",
            topic="t",
            partition=3,
            offset=99,
            key=b"k",
            value=None,
            at_ms=AT,
        ),
        "command": encode_command(COMMAND),
        "command2": encode_command(CONFIRM),
        "reply": encode_reply(REPLY),
        "reply2": encode_reply(NOT_FOUND),
        "published": encode_published(PUBLISHED),
        "drift": encode_drift_alert(**DRIFT),
    }


def test_the_derived_codecs_write_the_bytes_the_hand_written_mappings_wrote() -> None:
    assert {name: payload.hex() for name, payload in written().items()} == GOLDEN


def test_every_record_round_trips() -> None:
    for event in (STOCK, TRANSFER, SALE):
        assert decode_event(encode_event(event)) == event
    assert decode_projection(encode_projection(PROJECTION)) == PROJECTION
    for cmd in (COMMAND, CONFIRM):
        assert command_from_record(decode(encode_command(cmd))[1]) == cmd
    for reply in (REPLY, NOT_FOUND):
        assert reply_from_record(decode(encode_reply(reply))[1]) == reply
    assert decode_published(encode_published(PUBLISHED)) == PUBLISHED
    dead = decode_dead_letter(written()["dead"])
    assert DeadLetter(**dead) == DeadLetter("r", "invalid", "t", 3, 99, b"k", None, AT)


def test_every_subject_is_bound_to_a_record_type_field_by_field() -> None:
    assert set(BY_SUBJECT) == set(registry().latest)
    for subject, codec in BY_SUBJECT.items():
        fields = codec.fields  # raises BindingError on a field without a counterpart
        assert [f.name for f in fields] == [
            f["name"] for f in registry().latest[subject].parsed["fields"]
        ]


@pytest.mark.parametrize("subject", sorted(BY_SUBJECT))
def test_the_object_writer_writes_what_fastavro_writes_from_the_record(subject: str) -> None:
    codec = BY_SUBJECT[subject]
    schema = codec.schema
    for payload in written().values():
        found, record = decode(payload)
        if found != subject:
            continue
        obj = codec.from_record(record)
        assert codec.to_record(obj) == record
        body = io.BytesIO()
        fastavro.schemaless_writer(body, schema.parsed, codec.to_record(obj))
        assert codec.encode(obj) == encode(record, schema)
        assert codec.encode(obj)[5:] == body.getvalue()


def outcome(write: Any, record: Any) -> bytes | tuple[str, str]:
    try:
        payload: bytes = write(record)
    except Exception as exc:  # fastavro raises several types for a record it cannot write
        return type(exc).__name__, str(exc)
    return payload


@pytest.mark.parametrize("odd", [2.5, True, "10", None, 2**64])
def test_a_record_off_the_plain_path_gets_fastavros_answer(odd: Any) -> None:
    record = msgspec.structs.replace(PROJECTION, quantity=odd)
    codec = BY_SUBJECT["channel-atp"]
    assert outcome(codec.encode, record) == outcome(
        lambda r: fastavro_encode(codec.to_record(r), codec.schema), record
    )


def test_each_event_subject_carries_only_its_own_kinds() -> None:
    # codec/events.py relies on it rather than checking each event's kind against its subject
    for subject, kinds in (("stock-event", STOCK_KINDS), ("sale-event", SALE_KINDS)):
        for version in registry().versions(subject):
            (kind,) = (f for f in version.definition["fields"] if f["name"] == "type")
            assert set(kind["type"]["symbols"]) <= {k.value for k in kinds}, version.file


def test_a_reply_field_is_a_field_the_row_remembers() -> None:
    # A field declared on ReservationReply alone would be lost by a retried request's answer.
    assert set(ReservationReply.__struct_fields__) == {
        *Answer.__struct_fields__,
        "request_id",
        "sku",
    }


# --- a trial field: the schema and the record type are the only edits ------------------------


class TrialReply(ReservationReply, frozen=True, kw_only=True):
    """ReservationReply with one more field, as the domain would declare it."""

    note: str | None = None


def trial_schemas(tmp_path: Path, extra_field: dict[str, Any]) -> SchemaRegistry:
    """The project's schemas plus a new version of reservation-reply adding `extra_field`,
    under an unused id."""
    folder = tmp_path / "schemas"
    shutil.copytree(schemas_dir(), folder)
    newest = registry().latest["reservation-reply"]
    definition = json.loads((folder / newest.file).read_text())
    definition["fields"].append(extra_field)
    (folder / "reservation_reply.trial.avsc").write_text(json.dumps(definition))
    index = json.loads((folder / "registry.json").read_text())
    index["schemas"].append(
        {
            "id": TRIAL_ID,
            "subject": "reservation-reply",
            "version": newest.version + 1,
            "file": "reservation_reply.trial.avsc",
        }
    )
    (folder / "registry.json").write_text(json.dumps(index))
    return SchemaRegistry(folder)


TRIAL_ID = max(registry().by_id) + 1
NOTE = {"name": "note", "type": ["null", "string"], "default": None}


def test_a_trial_schema_field_round_trips_through_the_derived_codec(tmp_path: Path) -> None:
    schemas = trial_schemas(tmp_path, NOTE)
    codec = RecordCodec("reservation-reply", TrialReply, schemas=schemas)
    reply = TrialReply(**msgspec.structs.asdict(REPLY), note="held at the nearest store")

    payload = codec.encode(reply)

    assert payload[:5] == HEADER.pack(MAGIC, TRIAL_ID)  # written with the new version
    assert codec.decode(payload) == reply
    assert codec.to_record(reply)["note"] == "held at the nearest store"
    # a message of the old version reads with the new field's default
    assert codec.decode(encode_reply(REPLY)) == TrialReply(**msgspec.structs.asdict(REPLY))


def test_a_schema_field_the_record_type_lacks_is_a_binding_error(tmp_path: Path) -> None:
    schemas = trial_schemas(tmp_path, NOTE)
    with pytest.raises(BindingError, match=r"'note'.*ReservationReply"):
        bind_fields(schemas.latest["reservation-reply"], ReservationReply)
    codec = RecordCodec("reservation-reply", ReservationReply, schemas=schemas)
    with pytest.raises(BindingError):
        codec.encode(REPLY)


class Unfilled(ReservationReply, frozen=True, kw_only=True):
    note: str  # required, and no schema carries it


def test_a_required_field_no_schema_carries_is_a_binding_error() -> None:
    with pytest.raises(BindingError, match="note"):
        bind_fields(registry().latest["reservation-reply"], Unfilled)


# --- rows: named answers, same bytes ------------------------------------------------------


def test_rows_whose_answers_were_stored_as_tuples_decode_into_named_answers() -> None:
    answer = ["res-1", "RESERVE", "HELD", "web", "dc-1", 4, 4, 10, AT + 60_000, ""]
    stored = msgspec.msgpack.encode(
        [ROW_FORMAT, ["SKU-1", {}, {}, {}, 1, 0, {}, {"q1": answer}, 5]]
    )

    row = row_from_bytes(stored)

    assert row.answers["q1"] == REPLY.answer()
    assert row.answers["q1"].status is ReplyStatus.HELD
    # written back as it was: the tuple's elements, in its order (and the fields added since)
    assert msgspec.msgpack.decode(row_to_bytes(row))[1][7]["q1"][: len(answer)] == answer
    if len(Answer.__struct_fields__) == len(answer):  # no field added since: the same bytes
        assert row_to_bytes(row) == stored


def test_an_answer_with_a_field_added_later_still_decodes() -> None:
    # a newer version appended a field: this one ignores it (a rolling upgrade, a rollback)
    answer = ["res-1", "RESERVE", "HELD", "web", "dc-1", 4, 4, 10, AT + 60_000, "", {}, "", "new"]
    stored = msgspec.msgpack.encode(
        [ROW_FORMAT, ["SKU-1", {}, {}, {}, 1, 0, {}, {"q1": answer}, 5]]
    )
    assert row_from_bytes(stored).answers["q1"] == REPLY.answer()


def test_an_unknown_location_alert_names_the_location_and_the_fix() -> None:
    alert = UnknownLocation("SKU-1", "mars", "e-1", "wms", 5, AT)
    record = decode_alert(encode_alert(alert, 3))
    assert (record["type"], record["location"], record["quantity"]) == (
        "UNKNOWN_LOCATION",
        "mars",
        5,
    )
    assert record["alert_id"] == "SKU-1:3:UNKNOWN_LOCATION:mars"
    assert "add mars to the topology" in record["message"]
