"""Properties of the fold over generated event logs (BRIEF §3: conservation, idempotency,
determinism, ATP never negative, projections never stale)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Literal

from builders import OUTSIDE, TOPOLOGY
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.domain.effects import (
    ChannelQuantityChanged,
    DuplicateIgnored,
    Effect,
    OversellDetected,
)
from stocksync.domain.events import (
    ABSOLUTE_KINDS,
    RETURN_NOT_RESTOCKABLE,
    EventKind,
    InventoryEvent,
    validate_event,
)
from stocksync.domain.fold import apply_event
from stocksync.domain.state import (
    LocationStock,
    Movement,
    Published,
    SkuRow,
    channel_atp,
    location_atps,
)

SKUS = ("SKU-A", "SKU-B", "SKU-C")
LOCATIONS = ("dc-1", "dc-2", "store-1", OUTSIDE)
SOURCES = ("wms", "pos-1", "web", "marketplace")
ALL_KINDS = tuple(EventKind)
# SAFETY_STOCK_SET moves no unit; COUNTED (an absolute level) breaks unit conservation, and a
# TRANSFER_IN without its TRANSFER_OUT settles units that were never in transit: transfer pairs
# have a property of their own.
UNIT_CONSERVING_KINDS = tuple(
    k for k in EventKind if k not in (EventKind.COUNTED, EventKind.TRANSFER_IN)
)

PROPERTY = settings(max_examples=200, deadline=None)

Rows = dict[str, SkuRow]


@st.composite
def event_logs(draw: st.DrawFn, kinds: Sequence[EventKind] = ALL_KINDS) -> list[InventoryEvent]:
    """A log over 1-3 SKUs and 2-4 locations; each source's seq strictly increases."""
    skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=3, unique=True))
    locs = draw(st.lists(st.sampled_from(LOCATIONS), min_size=2, max_size=4, unique=True))
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(kinds),
                st.sampled_from(skus),
                st.sampled_from(locs),
                st.sampled_from(SOURCES),
                st.integers(1, 20),  # magnitude
                st.booleans(),  # sign of an adjustment / damaged return
                st.integers(1, 3),  # seq gap
                st.integers(0, 10_000),  # occurred_at, not necessarily in log order
            ),
            max_size=40,
        )
    )
    seqs: Counter[str] = Counter()
    log = []
    for i, (kind, sku, loc, source, size, flag, gap, at) in enumerate(steps):
        seqs[source] += gap
        if kind is EventKind.ADJUSTED:
            quantity = size if flag else -size
        elif kind in ABSOLUTE_KINDS:
            quantity = size - 1  # zero allowed
        else:
            quantity = size
        reason = RETURN_NOT_RESTOCKABLE if kind is EventKind.RETURNED and flag else None
        # schema v2 transfers name the other location; v1 ones (flag False) do not
        counterpart = None
        if kind is EventKind.TRANSFER_OUT and flag:
            counterpart = next((other for other in locs if other != loc), None)
        event = InventoryEvent(
            event_id=f"e{i}",
            source=source,
            source_seq=seqs[source],
            sku=sku,
            location=loc,
            quantity=quantity,
            occurred_at=at,
            kind=kind,
            reason=reason,
            counterpart_location=counterpart,
        )
        validate_event(event)  # the generator only makes events the codec would accept
        log.append(event)
    return log


def fold_log(
    events: Sequence[InventoryEvent], rows: Rows | None = None
) -> tuple[Rows, list[Effect]]:
    """Fold a multi-SKU log the way the worker does: one row per SKU."""
    rows = dict(rows or {})
    effects: list[Effect] = []
    for event in events:
        result = apply_event(rows.get(event.sku), event, TOPOLOGY)
        rows[event.sku] = result.row
        effects.extend(result.effects)
    return rows, effects


def table_bytes(rows: Rows) -> dict[str, bytes]:
    return {sku: row_to_bytes(row) for sku, row in rows.items()}


# (a) -------------------------------------------------------------------------------------


def units_owned(row: SkuRow) -> int:
    return sum(s.on_hand + s.in_transit + s.damaged for s in row.locations.values())


def expected_units(events: Sequence[InventoryEvent]) -> int:
    inflow = {EventKind.RECEIVED, EventKind.ADJUSTED, EventKind.RETURNED}
    outflow = {EventKind.SOLD, EventKind.FULFILLED}
    # TRANSFER_OUT (on_hand -> in_transit) and DAMAGED (on_hand -> damaged) move units within a
    # location; RESERVED/RELEASED/SAFETY_STOCK_SET move none.
    return sum(e.quantity for e in events if e.kind in inflow) - sum(
        e.quantity for e in events if e.kind in outflow
    )


@PROPERTY
@given(event_logs(kinds=UNIT_CONSERVING_KINDS))
def test_every_unit_is_accounted_for(log: list[InventoryEvent]) -> None:
    # when a log of delta events is folded
    rows, _ = fold_log(log)
    # then per SKU, units on hand + in transit + damaged equal what came in minus what went out
    for sku, row in rows.items():
        assert units_owned(row) == expected_units([e for e in log if e.sku == sku])


# (b) -------------------------------------------------------------------------------------


@st.composite
def logs_with_redeliveries(
    draw: st.DrawFn,
) -> tuple[list[InventoryEvent], list[InventoryEvent], set[int]]:
    """(original log, log with copies of applied events re-inserted later, copy positions)."""
    log = draw(event_logs())
    if not log:
        return log, [], set()
    copies = draw(
        st.lists(
            st.integers(0, len(log) - 1).flatmap(
                lambda i: st.tuples(st.just(i), st.integers(i, len(log) - 1))
            ),
            max_size=15,
        )
    )
    after: defaultdict[int, list[int]] = defaultdict(list)
    for original, position in copies:
        after[position].append(original)
    redelivered: list[InventoryEvent] = []
    copy_positions: set[int] = set()
    for position, event in enumerate(log):
        redelivered.append(event)
        for original in after[position]:
            copy_positions.add(len(redelivered))
            redelivered.append(log[original])
    return log, redelivered, copy_positions


@PROPERTY
@given(logs_with_redeliveries())
def test_redelivered_events_change_nothing(
    case: tuple[list[InventoryEvent], list[InventoryEvent], set[int]],
) -> None:
    log, redelivered, copy_positions = case
    # given the table and effects of the log as produced once
    expected_rows, expected_effects = fold_log(log)
    # when the same log is folded with already-applied events delivered again later
    rows: Rows = {}
    effects: list[Effect] = []
    for position, event in enumerate(redelivered):
        result = apply_event(rows.get(event.sku), event, TOPOLOGY)
        if position in copy_positions:
            # then each redelivery leaves its row untouched and only reports the duplicate
            assert not result.applied
            assert result.row is rows[event.sku]
            assert result.effects == (
                DuplicateIgnored(event.sku, event.event_id, event.source, event.source_seq),
            )
        else:
            effects.extend(result.effects)
        rows[event.sku] = result.row
    # and the final table and the effects are those of the log delivered once
    assert table_bytes(rows) == table_bytes(expected_rows)
    assert effects == expected_effects


@PROPERTY
@given(event_logs(), st.data())
def test_replaying_a_prefix_of_the_log_changes_nothing(
    log: list[InventoryEvent], data: st.DataObject
) -> None:
    rows, _ = fold_log(log)
    prefix = log[: data.draw(st.integers(0, len(log)))]
    replayed, effects = fold_log(prefix, rows)
    assert table_bytes(replayed) == table_bytes(rows)
    assert all(isinstance(e, DuplicateIgnored) for e in effects)


# (c) -------------------------------------------------------------------------------------


@PROPERTY
@given(event_logs(), st.data())
def test_restoring_rows_from_bytes_mid_log_gives_the_same_table_byte_for_byte(
    log: list[InventoryEvent], data: st.DataObject
) -> None:
    # given the table from folding the whole log in one go
    whole, whole_effects = fold_log(log)
    # when a worker folds a prefix, stores the rows as bytes, restarts from them and goes on
    split = data.draw(st.integers(0, len(log)))
    before, before_effects = fold_log(log[:split])
    restored = {sku: row_from_bytes(raw) for sku, raw in table_bytes(before).items()}
    after, after_effects = fold_log(log[split:], restored)
    # then the table is identical byte for byte and the same effects were emitted
    assert table_bytes(after) == table_bytes(whole)
    assert before_effects + after_effects == whole_effects


# (d) -------------------------------------------------------------------------------------


@PROPERTY
@given(event_logs())
def test_atp_is_never_negative_at_any_step(log: list[InventoryEvent]) -> None:
    rows: Rows = {}
    for event in log:
        result = apply_event(rows.get(event.sku), event, TOPOLOGY)
        rows[event.sku] = row = result.row
        assert all(atp >= 0 for atp in location_atps(row, TOPOLOGY).values())
        assert all(channel_atp(row, TOPOLOGY, ch) >= 0 for ch in TOPOLOGY.channels)
        assert all(c.quantity >= 0 for c in result.effects if isinstance(c, ChannelQuantityChanged))


# (e) -------------------------------------------------------------------------------------

SURROGATES: tuple[Literal["Cs"]] = ("Cs",)  # not encodable as UTF-8
ids = st.text(st.characters(codec="utf-8", exclude_categories=SURROGATES), min_size=1, max_size=8)
counts = st.integers(-(2**40), 2**40)
location_stocks = st.builds(
    LocationStock,
    on_hand=counts,
    reserved=st.integers(0, 2**40),
    damaged=st.integers(0, 2**40),
    in_transit=st.integers(0, 2**40),
    safety_stock=st.none() | st.integers(0, 2**20),
    oversold=st.integers(0, 2**40),
    counted_at=st.integers(-1, 2**62),
    journal=st.lists(st.builds(Movement, st.integers(0, 2**62), counts), max_size=4).map(tuple),
    journal_floor=st.integers(0, 2**62),
)
sku_rows = st.builds(
    SkuRow,
    sku=ids,
    locations=st.dictionaries(ids, location_stocks, max_size=4),
    sources=st.dictionaries(ids, st.integers(0, 2**62), max_size=4),
    published=st.dictionaries(
        ids, st.builds(Published, st.integers(0, 2**40), st.integers(1, 2**31)), max_size=4
    ),
    revision=st.integers(0, 2**62),
    last_event_at=st.integers(0, 2**62),
)


@PROPERTY
@given(sku_rows)
def test_row_bytes_survive_a_round_trip(row: SkuRow) -> None:
    data = row_to_bytes(row)
    restored = row_from_bytes(data)
    assert restored == row
    assert row_to_bytes(restored) == data


@PROPERTY
@given(event_logs())
def test_folded_row_bytes_survive_a_round_trip(log: list[InventoryEvent]) -> None:
    rows, _ = fold_log(log)
    for data in table_bytes(rows).values():
        assert row_to_bytes(row_from_bytes(data)) == data


# Further properties a channel relies on ----------------------------------------------------


@PROPERTY
@given(event_logs())
def test_every_unit_of_recorded_shortfall_was_alerted(log: list[InventoryEvent]) -> None:
    rows, effects = fold_log(log)
    alerted: Counter[tuple[str, str]] = Counter()
    for alert in effects:
        if isinstance(alert, OversellDetected):
            assert alert.units > 0
            alerted[alert.sku, alert.location] += alert.units
    recorded = {
        (sku, loc): s.oversold
        for sku, row in rows.items()
        for loc, s in row.locations.items()
        if s.oversold
    }
    assert recorded == dict(alerted)


@PROPERTY
@given(event_logs())
def test_channels_are_never_left_with_a_stale_quantity(log: list[InventoryEvent]) -> None:
    # when a log is folded
    rows, effects = fold_log(log)
    # then the last quantity sent to each channel is the channel's current ATP
    last: dict[tuple[str, str], int] = {}
    for change in effects:
        if isinstance(change, ChannelQuantityChanged):
            # and a quantity is only sent when it differs from the previous one
            assert last.get((change.channel, change.sku)) != change.quantity
            last[change.channel, change.sku] = change.quantity
    for sku, row in rows.items():
        for channel in TOPOLOGY.channels:
            assert last.get((channel, sku), 0) == channel_atp(row, TOPOLOGY, channel)


# count-merge rule -------------------------------------------------------------------------


@st.composite
def counted_timelines(draw: st.DrawFn) -> tuple[int, list[InventoryEvent], InventoryEvent]:
    """What really happened at one location (movements at distinct times, and a cycle count
    at time T that saw every movement up to T), delivered in any order."""
    from stocksync.domain.rules import MAX_JOURNAL

    base = draw(st.integers(0, 50))
    times = draw(st.lists(st.integers(1, 100_000), unique=True, max_size=MAX_JOURNAL - 1))
    deltas = draw(
        st.lists(st.integers(-5, 9).filter(bool), min_size=len(times), max_size=len(times))
    )
    count_at = draw(st.integers(1, 100_000).filter(lambda t: t not in times))
    movements = [
        InventoryEvent(f"m{i}", f"till-{i}", 1, "SKU-A", "dc-1", d, t, EventKind.ADJUSTED)
        for i, (t, d) in enumerate(zip(times, deltas, strict=True))
    ]
    counted = base + sum(d for t, d in zip(times, deltas, strict=True) if t <= count_at)
    count = InventoryEvent(
        "count", "counter", 1, "SKU-A", "dc-1", max(counted, 0), count_at, EventKind.COUNTED
    )
    arrival = draw(st.permutations([*movements, count]))
    return base if counted >= 0 else base - counted, arrival, count


@PROPERTY
@given(counted_timelines())
def test_a_count_merges_with_movements_in_any_arrival_order(
    timeline: tuple[int, list[InventoryEvent], InventoryEvent],
) -> None:
    # given opening stock at dc-1 before anything in the timeline happened
    base, arrival, count = timeline
    opening = InventoryEvent("open", "opening", 1, "SKU-A", "dc-1", base, 0, EventKind.RECEIVED)
    rows, effects = fold_log([opening])
    # when the movements and the count arrive in any order
    rows, effects = fold_log(arrival, rows)
    # then on_hand is the opening stock plus every movement: none lost, none counted twice
    movements = [e for e in arrival if e is not count]
    assert rows["SKU-A"].locations["dc-1"].on_hand == base + sum(e.quantity for e in movements)
    assert not [e for e in effects if type(e).__name__ == "CountNotMerged"]


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.sampled_from(("dc-1", "dc-2", "store-1")),
            st.sampled_from(("dc-1", "dc-2", "store-1")),
            st.integers(1, 9),
        ).filter(lambda t: t[0] != t[1]),
        max_size=10,
    ),
    st.randoms(),
)
def test_transfers_move_units_without_creating_or_losing_any(
    transfers: list[tuple[str, str, int]], rng: object
) -> None:
    # given 100 units at each location
    opening = [
        InventoryEvent(f"o-{loc}", "wms", i + 1, "SKU-A", loc, 100, 1, EventKind.RECEIVED)
        for i, loc in enumerate(("dc-1", "dc-2", "store-1"))
    ]
    rows, _ = fold_log(opening)
    outs = [
        InventoryEvent(
            f"out{i}",
            "wms",
            10 + i,
            "SKU-A",
            a,
            q,
            10 + i,
            EventKind.TRANSFER_OUT,
            counterpart_location=b,
        )
        for i, (a, b, q) in enumerate(transfers)
    ]
    ins = [
        InventoryEvent(
            f"in{i}",
            "store-sys",
            1 + i,
            "SKU-A",
            b,
            q,
            100 + i,
            EventKind.TRANSFER_IN,
            counterpart_location=a,
        )
        for i, (a, b, q) in enumerate(transfers)
    ]
    # when every transfer ships, and then arrives
    shipped, _ = fold_log(outs, rows)
    arrived, _ = fold_log(ins, shipped)
    # then units are conserved while in transit, and nothing is left in transit at the end
    assert units_owned(shipped["SKU-A"]) == 300
    assert units_owned(arrived["SKU-A"]) == 300
    assert all(s.in_transit == 0 for s in arrived["SKU-A"].locations.values())
