"""Inventory events as the fold sees them: immutable values decoded from the log."""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct

from stocksync.domain.limits import (
    EVENT_ID_MAX,
    LOCATION_MAX,
    QUANTITY_MAX,
    REASON_MAX,
    RESERVATION_ID_MAX,
    SKU_MAX,
    SOURCE_MAX,
    too_long,
)


class EventKind(StrEnum):
    # Stock side (StockEvent.type)
    RECEIVED = "RECEIVED"
    ADJUSTED = "ADJUSTED"
    COUNTED = "COUNTED"
    TRANSFER_OUT = "TRANSFER_OUT"
    TRANSFER_IN = "TRANSFER_IN"
    DAMAGED = "DAMAGED"
    SAFETY_STOCK_SET = "SAFETY_STOCK_SET"
    # Sale side (SaleEvent.type)
    RESERVED = "RESERVED"
    RELEASED = "RELEASED"
    FULFILLED = "FULFILLED"
    SOLD = "SOLD"
    RETURNED = "RETURNED"


STOCK_KINDS = frozenset(
    {
        EventKind.RECEIVED,
        EventKind.ADJUSTED,
        EventKind.COUNTED,
        EventKind.TRANSFER_OUT,
        EventKind.TRANSFER_IN,
        EventKind.DAMAGED,
        EventKind.SAFETY_STOCK_SET,
    }
)
SALE_KINDS = frozenset(set(EventKind) - STOCK_KINDS)

# Kinds whose quantity is a signed delta or an absolute level; all others carry positive units.
SIGNED_KINDS = frozenset({EventKind.ADJUSTED})
ABSOLUTE_KINDS = frozenset({EventKind.COUNTED, EventKind.SAFETY_STOCK_SET})

TRANSFER_KINDS = frozenset({EventKind.TRANSFER_OUT, EventKind.TRANSFER_IN})

RETURN_NOT_RESTOCKABLE = "damaged"


class InventoryEvent(Struct, frozen=True):
    """One decoded stock or sale event (a msgspec Struct: one is built per event folded)."""

    event_id: str
    source: str
    source_seq: int
    sku: str
    location: str
    quantity: int
    occurred_at: int  # UTC epoch milliseconds, from the source; the fold never reads a clock
    kind: EventKind
    reason: str | None = None
    # TRANSFER_OUT: where the units go; TRANSFER_IN: where they came from (schema v2, optional)
    counterpart_location: str | None = None
    # FULFILLED: the reservation (open order line) it ships (sale schema v2, optional)
    reservation_id: str | None = None


class InvalidEvent(ValueError):
    """An event that is well-formed Avro but makes no sense; it goes to the dead-letter topic."""


def _bad_string(field: str, value: str, limit: int) -> InvalidEvent:
    return InvalidEvent(f"{field} is empty" if not value else too_long(field, len(value), limit))


def validate_event(event: InventoryEvent) -> None:
    """Raise InvalidEvent with a message a producer can act on."""
    # Runs for every event on the hot path: one len() per string field, nothing per character.
    if not 0 < len(event.event_id) <= EVENT_ID_MAX:
        raise _bad_string("event_id", event.event_id, EVENT_ID_MAX)
    if not 0 < len(event.source) <= SOURCE_MAX:
        raise _bad_string("source", event.source, SOURCE_MAX)
    if event.source_seq < 0:
        raise InvalidEvent(f"source_seq {event.source_seq} is negative")
    if not 0 < len(event.sku) <= SKU_MAX:
        raise _bad_string("sku", event.sku, SKU_MAX)
    if not 0 < len(event.location) <= LOCATION_MAX:
        raise _bad_string("location", event.location, LOCATION_MAX)
    if event.reason is not None and len(event.reason) > REASON_MAX:
        raise InvalidEvent(too_long("reason", len(event.reason), REASON_MAX))
    if not -QUANTITY_MAX <= event.quantity <= QUANTITY_MAX:
        raise InvalidEvent(f"quantity {event.quantity} is beyond the limit of ±{QUANTITY_MAX}")
    if event.kind in SIGNED_KINDS:
        if event.quantity == 0:
            raise InvalidEvent(f"{event.kind} quantity must be a non-zero signed delta")
    elif event.kind in ABSOLUTE_KINDS:
        if event.quantity < 0:
            raise InvalidEvent(f"{event.kind} quantity {event.quantity} must be >= 0")
    elif event.quantity <= 0:
        raise InvalidEvent(f"{event.kind} quantity {event.quantity} must be > 0")
    if event.counterpart_location is not None:  # (checked apart: only transfers carry one)
        _validate_counterpart(event, event.counterpart_location)
    if event.reservation_id is not None:  # (only shipments carry one)
        _validate_reservation(event, event.reservation_id)


def _validate_reservation(event: InventoryEvent, reservation_id: str) -> None:
    if not 0 < len(reservation_id) <= RESERVATION_ID_MAX:
        raise _bad_string("reservation_id", reservation_id, RESERVATION_ID_MAX)
    if event.kind is not EventKind.FULFILLED:
        raise InvalidEvent(f"reservation_id is only for FULFILLED, not {event.kind}")


def _validate_counterpart(event: InventoryEvent, counterpart: str) -> None:
    if len(counterpart) > LOCATION_MAX:
        raise InvalidEvent(too_long("counterpart_location", len(counterpart), LOCATION_MAX))
    if event.kind not in TRANSFER_KINDS:
        raise InvalidEvent(f"counterpart_location is only for transfers, not {event.kind}")
    if counterpart == event.location:
        raise InvalidEvent(f"a transfer from {event.location} to itself moves nothing")
