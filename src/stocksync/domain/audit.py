"""The audit trail of a SKU: what each applied event did and why channel numbers moved."""

from __future__ import annotations

from typing import Any

from stocksync.domain.effects import ChannelQuantityChanged, Effect, alert_type
from stocksync.domain.events import InventoryEvent
from stocksync.domain.state import SkuRow, location_atp
from stocksync.domain.topology import Topology


def audit_entry(
    before: SkuRow | None,
    event: InventoryEvent,
    after: SkuRow,
    effects: tuple[Effect, ...],
    topology: Topology,
) -> dict[str, Any]:
    """One history record: the event, the quantities after it, and each channel change with
    the location ATP moves that explain it."""
    touched = [event.location]
    if event.counterpart_location:
        touched.append(event.counterpart_location)
    locations: dict[str, Any] = {}
    moved: dict[str, tuple[int, int]] = {}
    for loc in touched:
        default = topology.default_safety_stock(loc)
        new = after.locations[loc]
        old = before.locations.get(loc) if before else None
        new_atp = location_atp(new, default)
        old_atp = location_atp(old, default) if old else 0
        locations[loc] = {
            "on_hand": new.on_hand,
            "reserved": new.reserved,
            "damaged": new.damaged,
            "in_transit": new.in_transit,
            "atp": new_atp,
        }
        if new_atp != old_atp:
            moved[loc] = (old_atp, new_atp)
    channels: dict[str, Any] = {}
    for effect in effects:
        if not isinstance(effect, ChannelQuantityChanged):
            continue
        last = before.published.get(effect.channel) if before else None
        reasons = [
            f"{loc} ATP {a} -> {b}"
            for loc, (a, b) in moved.items()
            if loc in topology.channels[effect.channel].locations
        ]
        if last is not None and last[1] != effect.policy_version:
            reasons.append(f"policy version {last[1]} -> {effect.policy_version}")
        channels[effect.channel] = {
            "from": None if last is None else last[0],
            "to": effect.quantity,
            "why": "; ".join(reasons) or "first publication",
        }
    return {
        "revision": after.revision,
        "event_id": event.event_id,
        "type": event.kind.value,
        "source": event.source,
        "location": event.location,
        "counterpart_location": event.counterpart_location,
        "quantity": event.quantity,
        "reason": event.reason,
        "occurred_at": event.occurred_at,
        "locations": locations,
        "channels": channels,
        "alerts": sorted({t for e in effects if (t := alert_type(e)) is not None}),
    }
