"""The audit trail of a SKU: what each applied event did and why channel numbers moved.

The fold records only numbers (`AuditRecord`, built once per applied event, so kept small and
cheap); the sentences that explain a change are written when the trail is read
(`audit_view`)."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from stocksync.domain.effects import ChannelQuantityChanged, Effect, alert_type
from stocksync.domain.events import InventoryEvent
from stocksync.domain.state import EMPTY_LOCATION, SkuRow, location_atp
from stocksync.domain.topology import Topology


class LocationAfter(Struct, frozen=True, array_like=True):
    location: str
    on_hand: int
    reserved: int
    damaged: int
    in_transit: int
    atp: int
    atp_before: int


class ChannelMove(Struct, frozen=True, array_like=True):
    channel: str
    before: int | None  # None: first publication
    after: int
    version_before: int | None
    version: int


class AuditRecord(Struct, frozen=True, array_like=True):
    revision: int
    event_id: str
    type: str
    source: str
    location: str
    counterpart_location: str | None
    quantity: int
    reason: str | None
    occurred_at: int
    locations: tuple[LocationAfter, ...]
    channels: tuple[ChannelMove, ...]
    alerts: tuple[str, ...]


def audit_record(
    before: SkuRow | None,
    event: InventoryEvent,
    after: SkuRow,
    effects: tuple[Effect, ...],
    topology: Topology,
) -> AuditRecord:
    """One history record: the event, the quantities after it at the locations it touched,
    and each channel quantity it changed."""
    # Built for every applied event: the topology's safety stocks read directly, and no set
    # or sort unless the event raised an alert.
    safety_stock = topology.safety_stock_by_location
    old_stocks = before.locations if before is not None else {}
    new_stocks = after.locations
    touched = (
        (event.location,)
        if event.counterpart_location is None
        else (event.location, event.counterpart_location)
    )
    locations = []
    for loc in touched:
        new = new_stocks.get(loc)
        if new is None:
            continue  # a TRANSFER_IN's origin: the row holds nothing there
        default = safety_stock.get(loc, 0)
        locations.append(
            LocationAfter(
                loc,
                new.on_hand,
                new.reserved,
                new.damaged,
                new.in_transit,
                location_atp(new, default),
                location_atp(old_stocks.get(loc, EMPTY_LOCATION), default),
            )
        )
    channels = []
    alerts: set[str] | None = None
    published = before.published if before is not None else {}
    for effect in effects:
        if isinstance(effect, ChannelQuantityChanged):
            last = published.get(effect.channel)  # None: a first publication
            channels.append(
                ChannelMove(
                    effect.channel,
                    None if last is None else last.quantity,
                    effect.quantity,
                    None if last is None else last.version,
                    effect.policy_version,
                )
            )
        elif (name := alert_type(effect)) is not None:
            if alerts is None:
                alerts = set()
            alerts.add(name)
    return AuditRecord(
        revision=after.revision,
        event_id=event.event_id,
        type=event.kind,  # an EventKind is a str: msgspec writes its value (.value is slow)
        source=event.source,
        location=event.location,
        counterpart_location=event.counterpart_location,
        quantity=event.quantity,
        reason=event.reason,
        occurred_at=event.occurred_at,
        locations=tuple(locations),
        channels=tuple(channels),
        alerts=() if alerts is None else tuple(sorted(alerts)),
    )


def audit_view(record: AuditRecord, topology: Topology) -> dict[str, Any]:
    """A history record as the API shows it, each channel change with the location ATP moves
    that explain it (the channel's locations under the current topology)."""
    moved = {
        loc.location: (loc.atp_before, loc.atp)
        for loc in record.locations
        if loc.atp != loc.atp_before
    }
    channels: dict[str, Any] = {}
    for move in record.channels:
        spec = topology.channels.get(move.channel)
        reasons = [
            f"{loc} ATP {a} -> {b}"
            for loc, (a, b) in moved.items()
            if spec is not None and loc in spec.locations
        ]
        if move.version_before is not None and move.version_before != move.version:
            reasons.append(f"policy version {move.version_before} -> {move.version}")
        channels[move.channel] = {
            "from": move.before,
            "to": move.after,
            "why": "; ".join(reasons) or "first publication",
        }
    return {
        "revision": record.revision,
        "event_id": record.event_id,
        "type": record.type,
        "source": record.source,
        "location": record.location,
        "counterpart_location": record.counterpart_location,
        "quantity": record.quantity,
        "reason": record.reason,
        "occurred_at": record.occurred_at,
        "locations": {
            loc.location: {
                "on_hand": loc.on_hand,
                "reserved": loc.reserved,
                "damaged": loc.damaged,
                "in_transit": loc.in_transit,
                "atp": loc.atp,
            }
            for loc in record.locations
        },
        "channels": channels,
        "alerts": list(record.alerts),
    }
