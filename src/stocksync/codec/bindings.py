"""Which record type each subject of schemas/registry.json is read and written as.

The codecs of codec/events.py, outputs.py, reservations.py and connectors.py are these
bindings: a field of a subject lives in its `.avsc` file and in the record type named here,
nowhere else (codec/records.py derives the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from msgspec import Struct

from stocksync.codec.records import RecordCodec
from stocksync.domain.effects import AlertRecord, ChannelQuantityChanged
from stocksync.domain.events import InventoryEvent
from stocksync.domain.reservations import ReservationCommand, ReservationReply


class DeadLetter(Struct, frozen=True):
    """An input message the worker could not apply (schema `dead-letter`)."""

    reason: str  # for humans: what was wrong and how to fix it
    error: str  # machine-readable class (undecodable, invalid, ...)
    topic: str
    partition: int
    offset: int
    original_key: bytes | None
    original_value: bytes | None
    dead_lettered_at: int  # wall clock of the worker, epoch ms


@dataclass(frozen=True, slots=True)
class PublishedQuantity:
    """One ledger entry (schema `published-quantity`): the channel acknowledged this value."""

    channel: str
    sku: str
    quantity: int
    revision: int
    policy_version: int
    as_of: int
    reason: str
    attempts: int
    sent_at: int
    acknowledged_at: int
    endpoint: str


# The domain calls an event's type its kind (EventKind spans both event subjects).
_EVENT_NAMES = {"type": "kind"}

STOCK_EVENT = RecordCodec("stock-event", InventoryEvent, rename=_EVENT_NAMES)
SALE_EVENT = RecordCodec("sale-event", InventoryEvent, rename=_EVENT_NAMES)
RESERVATION_COMMAND = RecordCodec("reservation-command", ReservationCommand)
RESERVATION_REPLY = RecordCodec("reservation-reply", ReservationReply)
CHANNEL_ATP = RecordCodec("channel-atp", ChannelQuantityChanged)
ALERT = RecordCodec("alert", AlertRecord)
DEAD_LETTER = RecordCodec("dead-letter", DeadLetter)
PUBLISHED_QUANTITY = RecordCodec("published-quantity", PublishedQuantity)

BY_SUBJECT: dict[str, RecordCodec[Any]] = {
    codec.subject: codec
    for codec in (
        STOCK_EVENT,
        SALE_EVENT,
        RESERVATION_COMMAND,
        RESERVATION_REPLY,
        CHANNEL_ATP,
        ALERT,
        DEAD_LETTER,
        PUBLISHED_QUANTITY,
    )
}
