"""Inventory events <-> Avro records of the stock-event and sale-event subjects."""

from __future__ import annotations

from typing import Any

from stocksync.codec.avro import decode, encode_latest
from stocksync.domain.events import (
    SALE_KINDS,
    STOCK_KINDS,
    EventKind,
    InvalidEvent,
    InventoryEvent,
    validate_event,
)

STOCK_SUBJECT = "stock-event"
SALE_SUBJECT = "sale-event"
EVENT_SUBJECTS = frozenset({STOCK_SUBJECT, SALE_SUBJECT})


def subject_for(kind: EventKind) -> str:
    return STOCK_SUBJECT if kind in STOCK_KINDS else SALE_SUBJECT


def event_to_record(event: InventoryEvent) -> dict[str, Any]:
    record = {
        "event_id": event.event_id,
        "source": event.source,
        "source_seq": event.source_seq,
        "sku": event.sku,
        "location": event.location,
        "quantity": event.quantity,
        "occurred_at": event.occurred_at,
        "type": event.kind.value,
        "reason": event.reason,
    }
    if event.kind in STOCK_KINDS:
        record["counterpart_location"] = event.counterpart_location
    return record


def encode_event(event: InventoryEvent) -> bytes:
    return encode_latest(event_to_record(event), subject_for(event.kind))


# Avro enum symbol -> kind, for the subject's kinds only. Runs for every event: a dict lookup
# costs a tenth of EventKind(symbol), the enum's constructor.
_STOCK_KIND_OF = {kind.value: kind for kind in STOCK_KINDS}
_SALE_KIND_OF = {kind.value: kind for kind in SALE_KINDS}


def record_to_event(subject: str, record: dict[str, Any]) -> InventoryEvent:
    symbol = record["type"]
    kind = (_STOCK_KIND_OF if subject == STOCK_SUBJECT else _SALE_KIND_OF).get(symbol)
    if kind is None:
        # Not a kind of this subject: EventKind() raises ValueError for an unknown symbol.
        # Cannot happen with the kept schemas; guards a future mistake.
        raise InvalidEvent(f"{EventKind(symbol)} is not a {subject} type")
    event = InventoryEvent(
        event_id=record["event_id"],
        source=record["source"],
        source_seq=record["source_seq"],
        sku=record["sku"],
        location=record["location"],
        quantity=record["quantity"],
        occurred_at=record["occurred_at"],
        kind=kind,
        reason=record.get("reason"),
        counterpart_location=record.get("counterpart_location"),
    )
    validate_event(event)
    return event


def decode_event(payload: bytes | None) -> InventoryEvent:
    """Bytes from the stock or sale topic to a validated event.

    Raises Undecodable, UnknownSchema or InvalidEvent, each with a reason for the dead letter."""
    subject, record = decode(payload)
    if subject not in EVENT_SUBJECTS:
        raise InvalidEvent(f"a {subject} message is not an inventory event")
    return record_to_event(subject, record)
