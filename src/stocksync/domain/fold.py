"""The fold: (row, event) -> (row, effects). Pure and deterministic: time comes from events.

Applying an event twice, or replaying any prefix of the log, changes nothing: an event whose
source_seq is at or below the highest already applied for its source (and topic) is a duplicate.
Reality is never rejected: a sale without stock is applied and flagged as an oversell.

Cycle counts merge with the movements they race with (the count-merge rule):
- a count C at location L as of event time T says: every on-hand movement at L that happened
  at or before T is inside C;
- a movement at L with occurred_at <= the last merged count's time changes on_hand not at all
  (its other effects, such as releasing a reservation, still apply);
- a movement newer than the last count is applied and remembered in L's journal;
- a count sets on_hand = C + the journal's movements newer than T, whatever order they came in;
- a count older than the last merged count, or older than what the journal still remembers
  (COUNT_WINDOW_MS, MAX_JOURNAL), cannot be placed: on_hand is kept and CountNotMerged is
  emitted so the location is recounted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from msgspec import Struct
from msgspec.structs import replace

from stocksync.domain.effects import (
    ChannelQuantityChanged,
    CountNotMerged,
    DuplicateIgnored,
    Effect,
    OversellDetected,
    ReservationFulfilled,
    StockLevel,
    StockLevelCrossed,
    UnknownLocation,
)
from stocksync.domain.events import (
    RETURN_NOT_RESTOCKABLE,
    STOCK_KINDS,
    EventKind,
    InventoryEvent,
)
from stocksync.domain.rules import COUNT_WINDOW_MS, MAX_JOURNAL
from stocksync.domain.state import (
    EMPTY_LOCATION,
    Hold,
    HoldStatus,
    LocationStock,
    Movement,
    Published,
    SkuRow,
    location_atp,
)
from stocksync.domain.topology import Topology


class FoldResult(Struct, frozen=True):
    row: SkuRow
    effects: tuple[Effect, ...]
    applied: bool


# The kinds the fold branches on, read once: Python 3.11 reads a member off its enum class
# (EventKind.SOLD) through a descriptor, about 60 ns a time, and an event took ten of them.
COUNTED = EventKind.COUNTED
SAFETY_STOCK_SET = EventKind.SAFETY_STOCK_SET
RESERVED = EventKind.RESERVED
RELEASED = EventKind.RELEASED
FULFILLED = EventKind.FULFILLED
DAMAGED = EventKind.DAMAGED
RETURNED = EventKind.RETURNED
TRANSFER_IN = EventKind.TRANSFER_IN
TRANSFER_OUT = EventKind.TRANSFER_OUT

# The on-hand change each movement makes at its own location, as a sign of the quantity.
_ON_HAND_SIGN: Mapping[EventKind, int] = {
    EventKind.RECEIVED: 1,
    EventKind.ADJUSTED: 1,  # the quantity is already signed
    EventKind.TRANSFER_IN: 1,
    EventKind.TRANSFER_OUT: -1,
    EventKind.DAMAGED: -1,
    EventKind.FULFILLED: -1,
    EventKind.SOLD: -1,
    EventKind.RETURNED: 1,
}


def on_hand_delta(event: InventoryEvent) -> int:
    if event.kind is RETURNED and event.reason == RETURN_NOT_RESTOCKABLE:
        return 0
    return _ON_HAND_SIGN.get(event.kind, 0) * event.quantity


def apply_movement(stock: LocationStock, occurred_at: int, delta: int) -> LocationStock:
    """Change on_hand by delta unless the last merged count already contains the movement."""
    if delta == 0 or occurred_at <= stock.counted_at:
        return stock
    journal = (*stock.journal, Movement(occurred_at, delta))
    if len(journal) > 1 and journal[-2].occurred_at > occurred_at:
        journal = tuple(sorted(journal))
    horizon = journal[-1].occurred_at - COUNT_WINDOW_MS
    size = len(journal)
    keep_from = 0
    while keep_from < size and (
        journal[keep_from].occurred_at <= horizon or size - keep_from > MAX_JOURNAL
    ):
        keep_from += 1
    floor = stock.journal_floor
    if keep_from:
        # the journal is in time order: the last entry dropped is the newest dropped
        floor = max(floor, journal[keep_from - 1].occurred_at)
        journal = journal[keep_from:]
    return replace(stock, on_hand=stock.on_hand + delta, journal=journal, journal_floor=floor)


def apply_count(
    stock: LocationStock, event: InventoryEvent
) -> tuple[LocationStock, CountNotMerged | None]:
    counted_at = event.occurred_at
    reason = None
    if counted_at <= stock.counted_at:
        reason = f"older than the count already merged as of {stock.counted_at}"
    elif counted_at < stock.journal_floor:
        reason = (
            f"movements after {counted_at} are no longer remembered (journal reaches back to "
            f"{stock.journal_floor}); recount"
        )
    if reason is not None:
        return stock, CountNotMerged(
            event.sku,
            event.location,
            event.event_id,
            event.quantity,
            counted_at,
            reason,
            event.occurred_at,
        )
    later = tuple(entry for entry in stock.journal if entry.occurred_at > counted_at)
    on_hand = event.quantity + sum(entry.delta for entry in later)
    return replace(stock, on_hand=on_hand, counted_at=counted_at, journal=later), None


def apply_to_locations(
    locations: Mapping[str, LocationStock], event: InventoryEvent
) -> tuple[dict[str, LocationStock], CountNotMerged | None]:
    """The effect of one event on the quantities of the locations it touches."""
    out = dict(locations)
    loc = event.location
    stock = out.get(loc, EMPTY_LOCATION)
    q = event.quantity
    kind = event.kind
    if kind is COUNTED:
        out[loc], problem = apply_count(stock, event)
        return out, problem
    if kind is SAFETY_STOCK_SET:
        out[loc] = replace(stock, safety_stock=q)
        return out, None
    stock = apply_movement(stock, event.occurred_at, on_hand_delta(event))
    if kind is RESERVED:
        stock = replace(stock, reserved=stock.reserved + q)
    elif kind is RELEASED or kind is FULFILLED:
        stock = replace(stock, reserved=max(0, stock.reserved - q))
    elif kind is DAMAGED or (kind is RETURNED and event.reason == RETURN_NOT_RESTOCKABLE):
        stock = replace(stock, damaged=stock.damaged + q)
    elif kind is TRANSFER_IN:
        stock = replace(stock, in_transit=max(0, stock.in_transit - q))
    out[loc] = stock
    if kind is TRANSFER_OUT:
        # In transit counts at the destination; without one (schema v1) at the origin.
        dest = event.counterpart_location or loc
        dest_stock = out.get(dest, EMPTY_LOCATION)
        out[dest] = replace(dest_stock, in_transit=dest_stock.in_transit + q)
    return out, None


def settle_order_lines(
    holds: Mapping[str, Hold], event: InventoryEvent, reserved_after: int
) -> tuple[dict[str, Hold], list[ReservationFulfilled]]:
    """The holds after a FULFILLED or RELEASED at a location (whose own effect on reserved and
    on hand is already applied), and the reservations that ended shipped.

    A FULFILLED naming a reservation ships that reservation's line there (one the row does not
    hold is not an error: the units shipped all the same). Whatever the event names, the holds'
    lines at the location never stay above its reserved units: an order system that ships or
    cancels without naming the reservation closes confirmed order lines, oldest first, by what
    they exceed (otherwise such lines would stay open for ever, the row growing with them, and
    a later cancel would hand back units another hold reserved)."""
    out = dict(holds)
    ended: list[ReservationFulfilled] = []
    loc = event.location

    def ship(rid: str, hold: Hold, units: int) -> None:
        after = hold.shipped(loc, units)
        if after is not None:
            out[rid] = after
            return
        del out[rid]
        if event.kind is FULFILLED:
            ended.append(
                ReservationFulfilled(
                    event.sku, rid, hold.channel, hold.quantity, event.event_id, event.occurred_at
                )
            )

    named = out.get(event.reservation_id) if event.reservation_id is not None else None
    if named is not None and event.kind is FULFILLED:
        ship(event.reservation_id or "", named, event.quantity)
    excess = sum(hold.allocation().get(loc, 0) for hold in out.values()) - reserved_after
    for rid, hold in list(out.items()):
        if excess <= 0:
            break
        line = hold.allocation().get(loc, 0)
        if line and hold.status is HoldStatus.CONFIRMED:
            units = min(line, excess)
            ship(rid, hold, units)
            excess -= units
    return out, ended


def unknown_location(event: InventoryEvent, location: str) -> UnknownLocation:
    return UnknownLocation(
        event.sku, location, event.event_id, event.source, event.quantity, event.occurred_at
    )


def dedupe_key(event: InventoryEvent) -> str:
    """Sequences are compared per source and per topic: Kafka orders a source's stock events
    and its sale events each on their own topic, not relative to each other."""
    return event.source if event.kind in STOCK_KINDS else f"{event.source}|sale"


def apply_event(row: SkuRow | None, event: InventoryEvent, topology: Topology) -> FoldResult:
    """Fold one validated event into the SKU's row."""
    if row is None:
        row = SkuRow(sku=event.sku)
    stream_key = dedupe_key(event)
    if event.source_seq <= row.sources.get(stream_key, -1):
        duplicate = DuplicateIgnored(event.sku, event.event_id, event.source, event.source_seq)
        return FoldResult(row, (duplicate,), applied=False)

    before = row.locations.get(event.location)
    locations, count_problem = apply_to_locations(row.locations, event)
    after = locations[event.location]
    effects: list[Effect] = [] if count_problem is None else [count_problem]
    if before is None:
        before = EMPTY_LOCATION
        if event.location not in topology.locations:  # (once: the row keeps it from now on)
            effects.append(unknown_location(event, event.location))
    counterpart = event.counterpart_location
    if (
        counterpart is not None
        and counterpart not in row.locations
        and counterpart not in topology.locations
    ):
        effects.append(unknown_location(event, counterpart))
    new_shortfall = after.shortfall() - before.shortfall()
    if new_shortfall > 0:
        locations[event.location] = replace(after, oversold=after.oversold + new_shortfall)
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
    sources = dict(row.sources)
    sources[stream_key] = event.source_seq
    holds = row.holds
    if holds and (event.kind is FULFILLED or event.kind is RELEASED):
        holds, ended = settle_order_lines(holds, event, locations[event.location].reserved)
        effects.extend(ended)
    row = replace(
        row,
        holds=holds,
        locations=locations,
        sources=sources,
        revision=row.revision + 1,
        last_event_at=(
            event.occurred_at if event.occurred_at > row.last_event_at else row.last_event_at
        ),
    )
    touched = topology.channels_for(event.location)  # each channel once
    if event.counterpart_location is not None:
        touched = tuple(
            dict.fromkeys((*touched, *topology.channels_for(event.counterpart_location)))
        )
    row, changes = project_channels(row, topology, touched)
    effects.extend(changes)
    return FoldResult(row, tuple(effects), applied=True)


def level_crossed(
    previous: int | None, quantity: int, low_stock: int
) -> tuple[StockLevel, int] | None:
    """The threshold a channel quantity crossed, if any, with the threshold's value."""
    if previous is None or previous == quantity:
        return None
    if quantity == 0 and previous > 0:
        return StockLevel.OUT_OF_STOCK, 0
    if previous == 0 and quantity > 0:
        return StockLevel.BACK_IN_STOCK, 0
    if low_stock and quantity <= low_stock < previous:
        return StockLevel.LOW_STOCK, low_stock
    return None


def project_channels(
    row: SkuRow, topology: Topology, channels: Iterable[str]
) -> tuple[SkuRow, list[Effect]]:
    """Recompute the given channels' quantities; report and remember only those that changed,
    and the stock-level thresholds they crossed."""
    effects: list[Effect] = []
    published = None
    atps: dict[str, int] = {}  # location ATP, computed once for all channels sharing it
    stocks = row.locations
    safety_stock = topology.safety_stock_by_location
    version = topology.version
    for channel in channels:
        spec = topology.channels[channel]
        raw = 0
        for loc in spec.locations:
            atp = atps.get(loc)
            if atp is None:
                stock = stocks.get(loc)
                atp = atps[loc] = (
                    0 if stock is None else location_atp(stock, safety_stock.get(loc, 0))
                )
            raw += atp
        policy = spec.policy
        quantity = policy.apply(raw)
        last = row.published.get(channel)
        if last is not None and last.quantity == quantity and last.version == version:
            continue
        if published is None:
            published = dict(row.published)
        published[channel] = Published(quantity, version)
        effects.append(
            ChannelQuantityChanged(
                channel=channel,
                sku=row.sku,
                quantity=quantity,
                policy_version=version,
                revision=row.revision,
                as_of=row.last_event_at,
            )
        )
        previous = None if last is None else last.quantity
        crossed = level_crossed(previous, quantity, policy.low_stock)
        if crossed is not None:
            effects.append(
                StockLevelCrossed(
                    channel=channel,
                    sku=row.sku,
                    level=crossed[0],
                    quantity=quantity,
                    previous=previous or 0,
                    threshold=crossed[1],
                    policy_version=version,
                    revision=row.revision,
                    as_of=row.last_event_at,
                )
            )
    if published is None:
        return row, effects
    return replace(row, published=published), effects


def current_quantities(
    row: SkuRow, topology: Topology, channels: Iterable[str]
) -> list[ChannelQuantityChanged]:
    """The channels' quantities under the current topology, to publish again.

    After a crash, events after the last committed offset are delivered again and are
    duplicates for the local row, yet the changelog and projection messages they caused may
    have been lost with the process: the adapter re-sends the row and these quantities."""
    _, effects = project_channels(replace(row, published={}), topology, channels)
    return [e for e in effects if isinstance(e, ChannelQuantityChanged)]


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
