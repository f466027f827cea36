"""What folding an event caused, besides the new row: things the adapters publish.

msgspec Structs rather than dataclasses: several are built for every event folded, and a
frozen dataclass costs a microsecond to build."""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct


class StockLevel(StrEnum):
    LOW_STOCK = "LOW_STOCK"  # fell to or below the channel's low_stock threshold
    OUT_OF_STOCK = "OUT_OF_STOCK"  # fell to zero
    BACK_IN_STOCK = "BACK_IN_STOCK"  # rose from zero


class ChannelQuantityChanged(Struct, frozen=True):
    channel: str
    sku: str
    quantity: int
    policy_version: int
    revision: int
    as_of: int


class OversellDetected(Struct, frozen=True):
    sku: str
    location: str
    source: str
    event_id: str
    units: int  # new shortfall this event caused
    as_of: int


class StockLevelCrossed(Struct, frozen=True):
    channel: str
    sku: str
    level: StockLevel
    quantity: int
    previous: int
    threshold: int
    policy_version: int
    revision: int
    as_of: int


class CountNotMerged(Struct, frozen=True):
    """A cycle count the fold could not place in time; on_hand keeps its value. Recount."""

    sku: str
    location: str
    event_id: str
    quantity: int
    counted_at: int
    reason: str
    as_of: int


class UnknownLocation(Struct, frozen=True):
    """The first event of a SKU at a location the topology does not name. Its units are kept
    in the row (the log is the truth, and a new store may enter the topology after its first
    events) but no channel sells them until the topology names the location."""

    sku: str
    location: str
    event_id: str
    source: str
    quantity: int
    as_of: int


class ReservationFulfilled(Struct, frozen=True):
    """A FULFILLED event shipped the last open line of a reservation: it has ended."""

    sku: str
    reservation_id: str
    channel: str
    quantity: int  # units of the reservation, all lines
    event_id: str
    as_of: int


class DuplicateIgnored(Struct, frozen=True):
    sku: str
    event_id: str
    source: str
    source_seq: int


Alert = OversellDetected | StockLevelCrossed | CountNotMerged | UnknownLocation


class AlertRecord(Struct, frozen=True, kw_only=True):
    """An alert as the alerts topic carries it (schema `alert`, newest version), field for
    field: codec/outputs.py writes one from each Alert, connectors write DRIFT ones."""

    alert_id: str  # <sku>:<revision>:<type>:<channel or location>[...]: a re-sent alert repeats it
    type: str  # OVERSELL, COUNT_NOT_MERGED, UNKNOWN_LOCATION, a StockLevel, DRIFT
    sku: str
    channel: str | None = None
    location: str | None = None
    quantity: int
    previous: int | None = None
    threshold: int | None = None
    event_id: str | None = None
    source: str | None = None
    policy_version: int | None = None
    revision: int
    as_of: int
    message: str  # for humans
    displayed: int | None = None  # DRIFT: what the channel displays


Effect = (
    ChannelQuantityChanged
    | OversellDetected
    | StockLevelCrossed
    | CountNotMerged
    | UnknownLocation
    | ReservationFulfilled
    | DuplicateIgnored
)


def alert_type(effect: Effect) -> str | None:
    """The alert an effect raises, by the name the alerts topic uses; None if it raises none."""
    if isinstance(effect, OversellDetected):
        return "OVERSELL"
    if isinstance(effect, StockLevelCrossed):
        return effect.level.value
    if isinstance(effect, CountNotMerged):
        return "COUNT_NOT_MERGED"
    if isinstance(effect, UnknownLocation):
        return "UNKNOWN_LOCATION"
    return None
