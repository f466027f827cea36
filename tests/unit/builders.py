"""Small builders shared by the unit tests: a fixed topology, events and a fold helper."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from stocksync.domain.effects import Effect
from stocksync.domain.events import EventKind, InventoryEvent
from stocksync.domain.fold import fold_events
from stocksync.domain.state import EMPTY_LOCATION, LocationStock, SkuRow
from stocksync.domain.topology import Topology, parse_topology

if TYPE_CHECKING:
    from stocksync.domain.reservations import (
        CommandResult,
        ReservationCommand,
        ReservationReply,
    )

SKU = "SKU-1"
T = TypeVar("T")

# dc-1: no safety stock; dc-2: safety stock 2 by default; store-1: ships for web and sells at POS.
# "back-room" is deliberately absent: a location outside the topology.
TOPOLOGY_DATA: dict[str, Any] = {
    "version": 3,
    "locations": {
        "dc-1": {"kind": "dc", "groups": ["dcs"]},
        "dc-2": {"kind": "dc", "groups": ["dcs"], "safety_stock": 2},
        "store-1": {"kind": "store", "groups": ["ship-from-store"]},
    },
    "channels": {
        "web": {"sources": ["dcs", "ship-from-store"]},
        "pos-store-1": {"sources": ["store-1"]},
        "marketplace": {
            "sources": ["dcs"],
            "policy": {"buffer_percent": 10, "buffer_units": 1, "cap": 50},
        },
    },
}

OUTSIDE = "back-room"


def topology(**overrides: Any) -> Topology:
    """The test topology; top-level keys (e.g. version=4) can be overridden."""
    return parse_topology({**TOPOLOGY_DATA, **overrides})


TOPOLOGY = topology()

_seq = itertools.count(1)


def ev(
    kind: EventKind | str,
    qty: int = 1,
    *,
    loc: str = "dc-1",
    seq: int | None = None,
    source: str = "wms",
    sku: str = SKU,
    at: int | None = None,
    reason: str | None = None,
    event_id: str | None = None,
    counterpart: str | None = None,
    reservation: str | None = None,
) -> InventoryEvent:
    """An event; seq defaults to a fresh increasing number, occurred_at to seq * 1000."""
    seq = next(_seq) if seq is None else seq
    return InventoryEvent(
        event_id=event_id or f"{source}-{seq}",
        source=source,
        source_seq=seq,
        sku=sku,
        location=loc,
        quantity=qty,
        occurred_at=seq * 1000 if at is None else at,
        kind=EventKind(kind),
        reason=reason,
        counterpart_location=counterpart,
        reservation_id=reservation,
    )


def fold(
    *events: InventoryEvent, row: SkuRow | None = None, topo: Topology = TOPOLOGY
) -> tuple[SkuRow, list[Effect]]:
    new_row, effects = fold_events(row, events, topo)
    assert new_row is not None, "fold() needs at least one event or a row"
    return new_row, effects


def stock(row: SkuRow, loc: str = "dc-1") -> LocationStock:
    return row.locations.get(loc, EMPTY_LOCATION)


def of_type(effects: Iterable[Effect], kind: type[T]) -> list[T]:
    return [e for e in effects if isinstance(e, kind)]


# --- reservations -------------------------------------------------------------------------


def command(
    kind: str,
    reservation_id: str = "res-1",
    *,
    request_id: str | None = None,
    at: int = 0,
    channel: str = "",
    qty: int = 0,
    loc: str | None = None,
    ttl: int = 0,
    partial: bool = False,
    sku: str = SKU,
) -> ReservationCommand:
    """A reservation command; the request id defaults to "<kind>:<reservation id>"."""
    from stocksync.domain.reservations import CommandKind, ReservationCommand

    return ReservationCommand(
        request_id=request_id or f"{kind.lower()}:{reservation_id}",
        kind=CommandKind(kind),
        sku=sku,
        reservation_id=reservation_id,
        issued_at=at,
        channel=channel,
        quantity=qty,
        location=loc,
        ttl_ms=ttl,
        allow_partial=partial,
    )


def reserve(
    qty: int,
    reservation_id: str = "res-1",
    *,
    channel: str = "web",
    ttl: int = 60_000,
    **kwargs: Any,
) -> ReservationCommand:
    """A RESERVE whose request id is its reservation id (as the HTTP API sends it)."""
    kwargs.setdefault("request_id", reservation_id)
    return command("RESERVE", reservation_id, channel=channel, qty=qty, ttl=ttl, **kwargs)


def reply_of(result: CommandResult) -> ReservationReply:
    """The result's reply. Every command is answered but a redelivery (offset at or below the
    row's command offset) whose answer the row no longer remembers."""
    assert result.reply is not None
    return result.reply


def stocked(*levels: tuple[str, int], sku: str = SKU) -> SkuRow:
    """A row with the given units received at each location, e.g. stocked(("dc-1", 10))."""
    row, _ = fold(*(ev(EventKind.RECEIVED, qty, loc=loc, sku=sku) for loc, qty in levels))
    return row
