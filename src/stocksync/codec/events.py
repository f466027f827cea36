"""Inventory events <-> Avro records of the stock-event and sale-event subjects."""

from __future__ import annotations

from typing import Any

from stocksync.codec.avro import decode
from stocksync.codec.bindings import SALE_EVENT, STOCK_EVENT
from stocksync.domain.events import (
    STOCK_KINDS,
    EventKind,
    InvalidEvent,
    InventoryEvent,
    validate_event,
)

STOCK_SUBJECT = STOCK_EVENT.subject
SALE_SUBJECT = SALE_EVENT.subject
EVENT_SUBJECTS = frozenset({STOCK_SUBJECT, SALE_SUBJECT})


def subject_for(kind: EventKind) -> str:
    return STOCK_SUBJECT if kind in STOCK_KINDS else SALE_SUBJECT


def event_to_record(event: InventoryEvent) -> dict[str, Any]:
    """The Avro record of an event, in its subject's newest version."""
    return (STOCK_EVENT if event.kind in STOCK_KINDS else SALE_EVENT).to_record(event)


def encode_event(event: InventoryEvent) -> bytes:
    return (STOCK_EVENT if event.kind in STOCK_KINDS else SALE_EVENT).encode(event)


def record_to_event(subject: str, record: dict[str, Any]) -> InventoryEvent:
    # Each subject's type enum holds only its own kinds (tests/unit/test_records.py checks
    # every kept version), so the kind read is always one of the subject's.
    event = (STOCK_EVENT if subject == STOCK_SUBJECT else SALE_EVENT).from_record(record)
    validate_event(event)
    return event


def decode_event(payload: bytes | None) -> InventoryEvent:
    """Bytes from the stock or sale topic to a validated event.

    Raises Undecodable, UnknownSchema or InvalidEvent, each with a reason for the dead letter."""
    subject, record = decode(payload)
    if subject not in EVENT_SUBJECTS:
        raise InvalidEvent(f"a {subject} message is not an inventory event")
    return record_to_event(subject, record)
