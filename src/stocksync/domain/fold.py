"""The fold: (row, event) -> (row, effects). Pure and deterministic: time comes from events.

Applying an event twice, or replaying any prefix of the log, changes nothing: an event whose
source_seq is at or below the highest already applied for its source is a duplicate.
Reality is never rejected: a sale without stock is applied and flagged as an oversell.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from stocksync.domain.effects import (
    ChannelQuantityChanged,
    DuplicateIgnored,
    Effect,
    OversellDetected,
)
from stocksync.domain.events import RETURN_NOT_RESTOCKABLE, EventKind, InventoryEvent
from stocksync.domain.state import EMPTY_LOCATION, LocationStock, SkuRow, channel_atp
from stocksync.domain.topology import Topology


@dataclass(frozen=True, slots=True)
class FoldResult:
    row: SkuRow
    effects: tuple[Effect, ...]
    applied: bool


def apply_to_location(stock: LocationStock, event: InventoryEvent) -> LocationStock:
    """The effect of one event on one location's quantities (see the semantics table)."""
    q = event.quantity
    kind = event.kind
    if kind is EventKind.RECEIVED or kind is EventKind.TRANSFER_IN:
        return replace(stock, on_hand=stock.on_hand + q)
    if kind is EventKind.ADJUSTED:
        return replace(stock, on_hand=stock.on_hand + q)
    if kind is EventKind.COUNTED:
        return replace(stock, on_hand=q)
    if kind is EventKind.TRANSFER_OUT:
        return replace(stock, on_hand=stock.on_hand - q, in_transit=stock.in_transit + q)
    if kind is EventKind.DAMAGED:
        return replace(stock, on_hand=stock.on_hand - q, damaged=stock.damaged + q)
    if kind is EventKind.SAFETY_STOCK_SET:
        return replace(stock, safety_stock=q)
    if kind is EventKind.RESERVED:
        return replace(stock, reserved=stock.reserved + q)
    if kind is EventKind.RELEASED:
        return replace(stock, reserved=max(0, stock.reserved - q))
    if kind is EventKind.FULFILLED:
        return replace(stock, reserved=max(0, stock.reserved - q), on_hand=stock.on_hand - q)
    if kind is EventKind.SOLD:
        return replace(stock, on_hand=stock.on_hand - q)
    if kind is EventKind.RETURNED:
        if event.reason == RETURN_NOT_RESTOCKABLE:
            return replace(stock, damaged=stock.damaged + q)
        return replace(stock, on_hand=stock.on_hand + q)
    raise AssertionError(f"unhandled event kind {kind}")  # pragma: no cover


def apply_event(row: SkuRow | None, event: InventoryEvent, topology: Topology) -> FoldResult:
    """Fold one validated event into the SKU's row."""
    if row is None:
        row = SkuRow(sku=event.sku)
    if event.source_seq <= row.sources.get(event.source, -1):
        duplicate = DuplicateIgnored(event.sku, event.event_id, event.source, event.source_seq)
        return FoldResult(row, (duplicate,), applied=False)

    before = row.locations.get(event.location, EMPTY_LOCATION)
    after = apply_to_location(before, event)
    effects: list[Effect] = []
    new_shortfall = after.shortfall() - before.shortfall()
    if new_shortfall > 0:
        after = replace(after, oversold=after.oversold + new_shortfall)
        effects.append(
            OversellDetected(
                sku=event.sku,
                location=event.location,
                source=event.source,
                event_id=event.event_id,
                units=new_shortfall,
                as_of=event.occurred_at,
            )
        )
    locations = dict(row.locations)
    locations[event.location] = after
    sources = dict(row.sources)
    sources[event.source] = event.source_seq
    row = SkuRow(
        sku=row.sku,
        locations=locations,
        sources=sources,
        published=row.published,
        revision=row.revision + 1,
        last_event_at=max(row.last_event_at, event.occurred_at),
    )
    row, changes = project_channels(row, topology, topology.channels_for(event.location))
    effects.extend(changes)
    return FoldResult(row, tuple(effects), applied=True)


def project_channels(
    row: SkuRow, topology: Topology, channels: Iterable[str]
) -> tuple[SkuRow, list[ChannelQuantityChanged]]:
    """Recompute the given channels' quantities; report and remember only those that changed."""
    changes: list[ChannelQuantityChanged] = []
    published = None
    for channel in channels:
        quantity = channel_atp(row, topology, channel)
        current = (quantity, topology.version)
        if row.published.get(channel) == current:
            continue
        if published is None:
            published = dict(row.published)
        published[channel] = current
        changes.append(
            ChannelQuantityChanged(
                channel=channel,
                sku=row.sku,
                quantity=quantity,
                policy_version=topology.version,
                revision=row.revision,
                as_of=row.last_event_at,
            )
        )
    if published is None:
        return row, changes
    return replace(row, published=published), changes


def published_quantities(row: SkuRow, channels: Iterable[str]) -> list[ChannelQuantityChanged]:
    """What the row says was last published for these channels, to publish again.

    After a crash, events after the last committed offset are delivered again and are
    duplicates for the local row, yet the changelog and projection messages they caused may
    have been lost with the process: the adapter re-sends the row and these quantities."""
    out = []
    for channel in channels:
        published = row.published.get(channel)
        if published is not None:
            out.append(
                ChannelQuantityChanged(
                    channel=channel,
                    sku=row.sku,
                    quantity=published[0],
                    policy_version=published[1],
                    revision=row.revision,
                    as_of=row.last_event_at,
                )
            )
    return out


def fold_events(
    row: SkuRow | None, events: Iterable[InventoryEvent], topology: Topology
) -> tuple[SkuRow | None, list[Effect]]:
    """Fold many events of one SKU; the replay and test helper."""
    effects: list[Effect] = []
    for event in events:
        result = apply_event(row, event, topology)
        row = result.row
        effects.extend(result.effects)
    return row, effects
