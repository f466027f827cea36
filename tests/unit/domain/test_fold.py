"""The fold, by example: one behaviour per test, arranged given / when / then (BRIEF §3)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from builders import OUTSIDE, SKU, TOPOLOGY, ev, fold, of_type, stock, topology

from stocksync.codec.rows import ROW_FORMAT, row_from_bytes, row_to_bytes
from stocksync.domain.effects import (
    ChannelQuantityChanged,
    DuplicateIgnored,
    OversellDetected,
    UnknownLocation,
)
from stocksync.domain.events import EventKind as K
from stocksync.domain.fold import apply_event
from stocksync.domain.state import (
    LocationStock,
    Movement,
    Published,
    channel_atp,
    channel_raw_atp,
    location_atp,
    location_atps,
)
from stocksync.domain.topology import ChannelPolicy


def projections(effects: list[Any]) -> dict[str, int]:
    return {e.channel: e.quantity for e in of_type(effects, ChannelQuantityChanged)}


# --- stock events -------------------------------------------------------------------------


def test_received_units_go_on_hand() -> None:
    # given an empty row, when goods are received
    row, _ = fold(ev(K.RECEIVED, 10))
    # then they are on hand and sellable
    assert stock(row).on_hand == 10
    assert location_atp(stock(row), 0) == 10


def test_positive_adjustment_adds_units() -> None:
    row, _ = fold(ev(K.RECEIVED, 10))
    row, _ = fold(ev(K.ADJUSTED, 3, reason="found"), row=row)
    assert stock(row).on_hand == 13


def test_negative_adjustment_removes_units() -> None:
    row, _ = fold(ev(K.RECEIVED, 10))
    row, _ = fold(ev(K.ADJUSTED, -4, reason="shrink"), row=row)
    assert stock(row).on_hand == 6


def test_count_replaces_on_hand_with_the_counted_level() -> None:
    # given stock moved by deltas before the count was taken
    row, _ = fold(ev(K.RECEIVED, 10), ev(K.SOLD, 2, source="pos"))
    # when a later cycle count finds 5 units
    row, _ = fold(ev(K.COUNTED, 5), row=row)
    # then on_hand is the absolute count, not a delta
    assert stock(row).on_hand == 5


def test_count_of_zero_empties_the_location() -> None:
    row, _ = fold(ev(K.RECEIVED, 7))
    row, effects = fold(ev(K.COUNTED, 0), row=row)
    assert stock(row).on_hand == 0
    assert projections(effects)["web"] == 0


def test_count_after_sale_keeps_the_sale() -> None:
    # given 10 received, and a sale at t=5000 that arrived first
    row, _ = fold(ev(K.RECEIVED, 10, at=1000), ev(K.SOLD, 1, source="pos", at=5000))
    # when a cycle count taken at t=3000 (before that sale) reports 10 units
    row, _ = fold(ev(K.COUNTED, 10, at=3000), row=row)
    # then the later sale still counts: 10 counted - 1 sold afterwards
    assert stock(row).on_hand == 9
    # and the journal keeps only that sale, for a count that comes later still
    assert stock(row).journal == (Movement(occurred_at=5000, delta=-1),)


def test_movements_arriving_out_of_order_are_journaled_in_time_order() -> None:
    row, _ = fold(ev(K.RECEIVED, 10, at=5000), ev(K.SOLD, 1, source="pos", at=3000))
    assert [(m.occurred_at, m.delta) for m in stock(row).journal] == [(3000, -1), (5000, 10)]


def test_transfer_out_moves_units_from_on_hand_to_in_transit() -> None:
    row, _ = fold(ev(K.RECEIVED, 10))
    row, effects = fold(ev(K.TRANSFER_OUT, 4), row=row)
    assert (stock(row).on_hand, stock(row).in_transit) == (6, 4)
    assert projections(effects)["web"] == 6


def test_transfer_in_adds_to_on_hand_at_the_receiving_location() -> None:
    row, _ = fold(ev(K.TRANSFER_IN, 4, loc="store-1"))
    assert stock(row, "store-1").on_hand == 4
    assert location_atps(row, TOPOLOGY) == {"store-1": 4}


def test_completed_transfer_leaves_nothing_in_transit() -> None:
    # given 10 at dc-1, 4 of them shipped to store-1 (schema v2 names the destination)
    row, _ = fold(ev(K.RECEIVED, 10), ev(K.TRANSFER_OUT, 4, counterpart="store-1"))
    assert stock(row, "store-1").in_transit == 4
    # when store-1 receives the transfer
    row, _ = fold(ev(K.TRANSFER_IN, 4, loc="store-1", counterpart="dc-1"), row=row)
    # then no unit is in transit any more and the company still owns 10 units
    assert sum(s.in_transit for s in row.locations.values()) == 0
    assert sum(s.on_hand + s.in_transit for s in row.locations.values()) == 10


def test_damaged_units_leave_sellable_stock() -> None:
    row, _ = fold(ev(K.RECEIVED, 10))
    row, effects = fold(ev(K.DAMAGED, 3), row=row)
    assert (stock(row).on_hand, stock(row).damaged) == (7, 3)
    assert projections(effects)["web"] == 7


def test_safety_stock_set_overrides_the_topology_default() -> None:
    # given dc-2, whose topology safety stock is 2, holding 10 units
    row, _ = fold(ev(K.RECEIVED, 10, loc="dc-2"))
    assert location_atps(row, TOPOLOGY)["dc-2"] == 8
    # when the safety stock is set to 5 for this SKU
    row, effects = fold(ev(K.SAFETY_STOCK_SET, 5, loc="dc-2"), row=row)
    # then only 5 are available and channels are told
    assert stock(row, "dc-2").safety_stock == 5
    assert location_atps(row, TOPOLOGY)["dc-2"] == 5
    assert projections(effects)["web"] == 5


def test_safety_stock_set_to_zero_releases_the_topology_default() -> None:
    row, _ = fold(ev(K.RECEIVED, 10, loc="dc-2"), ev(K.SAFETY_STOCK_SET, 0, loc="dc-2"))
    assert location_atps(row, TOPOLOGY)["dc-2"] == 10


# --- sale events --------------------------------------------------------------------------


def test_reservation_holds_units_without_moving_on_hand() -> None:
    row, _ = fold(ev(K.RECEIVED, 10))
    row, effects = fold(ev(K.RESERVED, 3, source="web"), row=row)
    assert (stock(row).on_hand, stock(row).reserved) == (10, 3)
    assert projections(effects)["web"] == 7


def test_release_frees_held_units() -> None:
    row, _ = fold(ev(K.RECEIVED, 10), ev(K.RESERVED, 3, source="web"))
    row, effects = fold(ev(K.RELEASED, 2, source="web"), row=row)
    assert stock(row).reserved == 1
    assert projections(effects)["web"] == 9


def test_release_of_more_than_is_held_never_makes_reserved_negative() -> None:
    row, _ = fold(ev(K.RECEIVED, 10), ev(K.RESERVED, 1, source="web"))
    row, _ = fold(ev(K.RELEASED, 5, source="web"), row=row)
    assert stock(row).reserved == 0
    assert location_atp(stock(row), 0) == 10


def test_fulfilment_drops_both_reserved_and_on_hand() -> None:
    row, _ = fold(ev(K.RECEIVED, 10), ev(K.RESERVED, 3, source="web"))
    row, effects = fold(ev(K.FULFILLED, 3, source="web"), row=row)
    assert (stock(row).on_hand, stock(row).reserved) == (7, 0)
    # shipping what was already held does not change what channels may sell
    assert "web" not in projections(effects)
    assert channel_atp(row, TOPOLOGY, "web") == 7


def test_pos_sale_drops_on_hand_at_once() -> None:
    row, _ = fold(ev(K.RECEIVED, 5, loc="store-1"))
    row, effects = fold(ev(K.SOLD, 2, loc="store-1", source="pos"), row=row)
    assert stock(row, "store-1").on_hand == 3
    assert projections(effects) == {"web": 3, "pos-store-1": 3}


def test_restockable_return_goes_back_on_hand() -> None:
    row, _ = fold(ev(K.RECEIVED, 5), ev(K.SOLD, 1, source="pos"))
    row, _ = fold(ev(K.RETURNED, 1, source="pos", reason="restockable"), row=row)
    assert (stock(row).on_hand, stock(row).damaged) == (5, 0)


def test_return_without_reason_is_restockable() -> None:
    row, _ = fold(ev(K.RETURNED, 2, source="pos"))
    assert stock(row).on_hand == 2


def test_damaged_return_is_kept_on_the_books_but_not_sellable() -> None:
    row, _ = fold(ev(K.RECEIVED, 5), ev(K.SOLD, 1, source="pos"))
    row, effects = fold(ev(K.RETURNED, 1, source="pos", reason="damaged"), row=row)
    assert (stock(row).on_hand, stock(row).damaged) == (4, 1)
    assert of_type(effects, ChannelQuantityChanged) == []


# --- ATP ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_hand", "reserved", "safety", "expected"),
    [
        (10, 0, 0, 10),
        (10, 3, 0, 7),
        (10, 3, 2, 5),
        (5, 3, 2, 0),
        (3, 5, 0, 0),  # more held than on hand: nothing to promise, never negative
        (-4, 0, 0, 0),  # oversold location
        (0, 0, 5, 0),
    ],
)
def test_location_atp_is_on_hand_minus_reserved_minus_safety_stock_floored_at_zero(
    on_hand: int, reserved: int, safety: int, expected: int
) -> None:
    assert location_atp(LocationStock(on_hand=on_hand, reserved=reserved), safety) == expected
    explicit = LocationStock(on_hand=on_hand, reserved=reserved, safety_stock=safety)
    assert location_atp(explicit, default_safety_stock=99) == expected


def test_location_atp_uses_the_topology_safety_stock_by_default() -> None:
    row, _ = fold(ev(K.RECEIVED, 10, loc="dc-1"), ev(K.RECEIVED, 10, loc="dc-2"))
    assert location_atps(row, TOPOLOGY) == {"dc-1": 10, "dc-2": 8}


def test_channel_atp_sums_the_locations_that_may_fulfil_it() -> None:
    # given stock in both DCs and in the ship-from-store store
    row, _ = fold(
        ev(K.RECEIVED, 10, loc="dc-1"),
        ev(K.RECEIVED, 10, loc="dc-2"),  # safety stock 2
        ev(K.RECEIVED, 4, loc="store-1"),
    )
    # then web sells all three, POS its own store only, the marketplace the DCs only
    assert channel_raw_atp(row, TOPOLOGY, "web") == 10 + 8 + 4
    assert channel_atp(row, TOPOLOGY, "pos-store-1") == 4
    assert channel_raw_atp(row, TOPOLOGY, "marketplace") == 18


def test_a_location_in_deficit_does_not_eat_into_other_locations() -> None:
    # given dc-1 oversold by 5 and dc-2 with 10 units
    row, _ = fold(ev(K.SOLD, 5, loc="dc-1", source="pos"), ev(K.RECEIVED, 10, loc="dc-2"))
    # then channel ATP sums location ATPs, each floored at zero
    assert channel_raw_atp(row, TOPOLOGY, "web") == 8


@pytest.mark.parametrize(
    ("policy", "raw", "expected"),
    [
        (ChannelPolicy(), 17, 17),
        (ChannelPolicy(buffer_percent=10), 50, 45),
        (ChannelPolicy(buffer_percent=10), 15, 14),  # 1.5 held back, rounded down to 1
        (ChannelPolicy(buffer_units=3), 10, 7),
        (ChannelPolicy(buffer_percent=20, buffer_units=2), 50, 38),  # percent first, then units
        (ChannelPolicy(cap=5), 100, 5),
        (ChannelPolicy(buffer_percent=10, buffer_units=1, cap=50), 100, 50),  # cap last
        (ChannelPolicy(buffer_percent=10, buffer_units=1, cap=50), 30, 26),
        (ChannelPolicy(buffer_units=5), 3, 0),  # never negative
        (ChannelPolicy(buffer_percent=100), 40, 0),
        (ChannelPolicy(cap=0), 40, 0),
        (ChannelPolicy(buffer_units=1, cap=10), 0, 0),
    ],
)
def test_channel_policy_applies_percent_then_units_then_cap_never_negative(
    policy: ChannelPolicy, raw: int, expected: int
) -> None:
    assert policy.apply(raw) == expected


def test_channel_quantity_is_the_policy_applied_to_the_summed_atp() -> None:
    # given 30 units in dc-1 (marketplace: 10% buffer, 1 unit buffer, cap 50)
    row, effects = fold(ev(K.RECEIVED, 30, loc="dc-1"))
    # then the marketplace is told 30 - 3 - 1 = 26, the web shop all 30
    assert projections(effects) == {"web": 30, "marketplace": 26}
    assert channel_atp(row, TOPOLOGY, "marketplace") == 26


def test_location_outside_the_topology_is_tracked_but_sells_through_no_channel() -> None:
    # when stock arrives at a location the topology does not know
    row, effects = fold(ev(K.RECEIVED, 10, loc=OUTSIDE))
    # then the row tracks it, its ATP is computed, but no channel may sell it
    assert stock(row, OUTSIDE).on_hand == 10
    assert location_atps(row, TOPOLOGY) == {OUTSIDE: 10}
    assert of_type(effects, ChannelQuantityChanged) == []
    assert all(channel_atp(row, TOPOLOGY, ch) == 0 for ch in TOPOLOGY.channels)


def test_the_first_event_at_an_unknown_location_raises_one_alert_per_sku_and_location() -> None:
    # when units arrive twice at a location the topology does not name, then are sold there
    first = ev(K.RECEIVED, 5, loc=OUTSIDE, source="wms")
    row, effects = fold(first, ev(K.RECEIVED, 3, loc=OUTSIDE), ev(K.SOLD, 1, loc=OUTSIDE))
    # then one UNKNOWN_LOCATION is raised, naming the first event, and every unit is kept
    assert of_type(effects, UnknownLocation) == [
        UnknownLocation(SKU, OUTSIDE, first.event_id, "wms", 5, first.occurred_at)
    ]
    assert stock(row, OUTSIDE).on_hand == 7
    # and another SKU at the same location raises its own
    _, other = fold(ev(K.RECEIVED, 1, loc=OUTSIDE, sku="SKU-2"))
    assert [a.sku for a in of_type(other, UnknownLocation)] == ["SKU-2"]


def test_a_transfer_to_an_unknown_location_raises_the_alert_for_the_destination() -> None:
    row, _ = fold(ev(K.RECEIVED, 5, loc="dc-1"))
    moved = apply_event(
        row, ev(K.TRANSFER_OUT, 2, loc="dc-1", counterpart=OUTSIDE, source="tms"), TOPOLOGY
    )
    assert [a.location for a in of_type(moved.effects, UnknownLocation)] == [OUTSIDE]


def test_a_known_location_raises_no_unknown_location_alert() -> None:
    _, effects = fold(ev(K.RECEIVED, 5, loc="dc-1"), ev(K.SOLD, 1, loc="store-1"))
    assert of_type(effects, UnknownLocation) == []


# --- oversell -----------------------------------------------------------------------------


def test_sale_without_stock_is_applied_and_flagged_as_an_oversell() -> None:
    # given a marketplace that already sold a unit we do not have
    sale = ev(K.SOLD, 2, loc="dc-1", source="marketplace")
    # when the sale is folded
    result = apply_event(None, sale, TOPOLOGY)
    # then reality is accepted, the shortfall recorded and an alert emitted
    assert result.applied
    assert stock(result.row).on_hand == -2
    assert stock(result.row).oversold == 2
    assert of_type(result.effects, OversellDetected) == [
        OversellDetected(
            sku=SKU,
            location="dc-1",
            source="marketplace",
            event_id=sale.event_id,
            units=2,
            as_of=sale.occurred_at,
        )
    ]


def test_oversell_alert_reports_only_the_new_shortfall() -> None:
    # given 3 units, then a sale of 5 (2 short)
    row, _ = fold(ev(K.RECEIVED, 3), ev(K.SOLD, 5, source="pos"))
    # when another unit sells
    row, effects = fold(ev(K.SOLD, 1, source="pos"), row=row)
    # then the alert is for 1 unit and the recorded shortfall accumulates to 3
    assert [o.units for o in of_type(effects, OversellDetected)] == [1]
    assert stock(row).oversold == 3


def test_sale_within_stock_is_not_an_oversell() -> None:
    row, effects = fold(ev(K.RECEIVED, 3), ev(K.SOLD, 3, source="pos"))
    assert of_type(effects, OversellDetected) == []
    assert stock(row).oversold == 0


def test_reservation_eating_into_safety_stock_only_is_not_an_oversell() -> None:
    # given dc-2 with 10 units and safety stock 2 (8 available)
    row, _ = fold(ev(K.RECEIVED, 10, loc="dc-2"))
    # when an order holds 9 units
    row, effects = fold(ev(K.RESERVED, 9, loc="dc-2", source="web"), row=row)
    # then it is held, ATP is 0, but every unit exists: no oversell
    assert of_type(effects, OversellDetected) == []
    assert stock(row, "dc-2").oversold == 0
    assert location_atps(row, TOPOLOGY)["dc-2"] == 0


def test_reservation_beyond_on_hand_is_flagged_as_an_oversell() -> None:
    row, _ = fold(ev(K.RECEIVED, 2))
    row, effects = fold(ev(K.RESERVED, 5, source="web"), row=row)
    assert stock(row).reserved == 5
    assert [o.units for o in of_type(effects, OversellDetected)] == [3]
    assert stock(row).oversold == 3


def test_restock_after_an_oversell_makes_stock_sellable_again_without_new_alerts() -> None:
    row, _ = fold(ev(K.SOLD, 2, source="pos"))
    row, effects = fold(ev(K.RECEIVED, 5), row=row)
    assert of_type(effects, OversellDetected) == []
    assert channel_atp(row, TOPOLOGY, "web") == 3
    assert stock(row).oversold == 2  # the history of the shortfall is kept


# --- projections --------------------------------------------------------------------------


def test_projection_carries_quantity_policy_version_revision_and_time() -> None:
    row, _ = fold(ev(K.RECEIVED, 10, loc="store-1", at=111))
    row, effects = fold(ev(K.SOLD, 1, loc="store-1", source="pos", at=222), row=row)
    changes = of_type(effects, ChannelQuantityChanged)
    assert {c.channel for c in changes} == {"web", "pos-store-1"}
    for change in changes:
        assert change.sku == SKU
        assert change.quantity == 9
        assert change.policy_version == TOPOLOGY.version
        assert change.revision == row.revision == 2
        assert change.as_of == 222


def test_projection_only_for_channels_that_sell_the_location() -> None:
    _, effects = fold(ev(K.RECEIVED, 4, loc="store-1"))
    assert set(projections(effects)) == {"web", "pos-store-1"}


def test_no_projection_when_the_channel_quantity_does_not_change() -> None:
    # given dc-2 with 1 unit under its safety stock of 2: ATP 0, already published
    row, first = fold(ev(K.RECEIVED, 1, loc="dc-2"))
    assert projections(first) == {"web": 0, "marketplace": 0}
    # when another unit arrives, still within safety stock
    row, effects = fold(ev(K.RECEIVED, 1, loc="dc-2"), row=row)
    # then nothing is re-sent to the channels
    assert of_type(effects, ChannelQuantityChanged) == []
    assert row.revision == 2


def test_only_the_channels_whose_quantity_changed_are_projected() -> None:
    # given the marketplace capped at 50 with 100 units in dc-1
    row, _ = fold(ev(K.RECEIVED, 100))
    # when one unit sells
    row, effects = fold(ev(K.SOLD, 1, source="pos"), row=row)
    # then web learns 99, the capped marketplace hears nothing
    assert projections(effects) == {"web": 99}
    assert row.published["marketplace"] == Published(quantity=50, version=TOPOLOGY.version)
    assert row.published["web"] == Published(quantity=99, version=TOPOLOGY.version)


def test_new_policy_version_republishes_an_unchanged_quantity_once() -> None:
    # given the marketplace told 8 (of 10) under policy version 3
    row, _ = fold(ev(K.RECEIVED, 10))
    assert row.published["marketplace"] == Published(quantity=8, version=3)
    # when a hold and its release are folded under topology version 4 (marketplace stays at 8)
    v4 = topology(version=4)
    hold, release = ev(K.RESERVED, 1, source="web"), ev(K.RELEASED, 1, source="web")
    row, effects = fold(hold, release, row=row, topo=v4)
    # then the unchanged quantity is re-sent once, stamped with the new version
    market = [c for c in of_type(effects, ChannelQuantityChanged) if c.channel == "marketplace"]
    assert [(c.quantity, c.policy_version, c.revision) for c in market] == [(8, 4, 2)]


# --- idempotency --------------------------------------------------------------------------


def test_duplicate_event_changes_nothing_and_is_reported() -> None:
    # given a sale already applied
    sale = ev(K.SOLD, 1, source="pos", seq=7)
    row, _ = fold(ev(K.RECEIVED, 5), sale)
    # when the same event is delivered again
    result = apply_event(row, sale, TOPOLOGY)
    # then the row is untouched and only a DuplicateIgnored effect comes out
    assert not result.applied
    assert result.row == row
    assert result.effects == (DuplicateIgnored(SKU, sale.event_id, "pos", 7),)


def test_older_sequence_from_the_same_source_is_a_duplicate() -> None:
    row, _ = fold(ev(K.RECEIVED, 5, source="wms", seq=10))
    result = apply_event(row, ev(K.RECEIVED, 5, source="wms", seq=9), TOPOLOGY)
    assert not result.applied
    assert stock(result.row).on_hand == 5


def test_same_sequence_from_another_source_is_applied() -> None:
    row, _ = fold(ev(K.RECEIVED, 5, source="wms", seq=10))
    row, effects = fold(ev(K.SOLD, 1, source="pos", seq=10), row=row)
    assert stock(row).on_hand == 4
    assert of_type(effects, DuplicateIgnored) == []
    assert row.sources == {"wms": 10, "pos|sale": 10}


def test_replaying_the_log_onto_its_result_changes_nothing() -> None:
    log = [ev(K.RECEIVED, 10), ev(K.RESERVED, 2, source="web"), ev(K.SOLD, 20, source="pos")]
    row, _ = fold(*log)
    replayed, effects = fold(*log, row=row)
    assert replayed == row
    assert all(isinstance(e, DuplicateIgnored) for e in effects)
    assert len(effects) == len(log)


def test_revision_counts_applied_events_and_time_is_the_latest_event_time() -> None:
    first = ev(K.RECEIVED, 5, at=5000)
    row, _ = fold(first, ev(K.RECEIVED, 1, at=3000), first)
    assert row.revision == 2
    assert row.last_event_at == 5000


def test_fold_reads_no_clock_the_same_log_gives_the_same_row() -> None:
    log = [ev(K.RECEIVED, 10), ev(K.SOLD, 12, source="pos"), ev(K.COUNTED, 4)]
    assert fold(*log) == fold(*log)


def test_a_source_sending_on_both_topics_loses_nothing_when_they_interleave() -> None:
    # given one source that emits a receipt (stock topic) and then a sale (sale topic)
    receipt = ev(K.RECEIVED, 5, source="store-app", seq=1)
    sale = ev(K.SOLD, 1, source="store-app", seq=2)
    # when the worker happens to read the sale topic first
    row, effects = fold(sale, receipt)
    # then both are applied: sequences are compared per topic
    assert stock(row).on_hand == 4
    assert of_type(effects, DuplicateIgnored) == []


# --- stored rows --------------------------------------------------------------------------


def test_rows_stored_with_plain_pairs_decode_into_named_ones_and_encode_the_same() -> None:
    # given a row as stored when journal entries and published quantities were plain tuples
    dc1 = [7, 1, 0, 0, None, 0, 1000, [[2000, -2], [3000, -1]], 500]
    stored = msgspec.msgpack.encode(
        [ROW_FORMAT, [SKU, {"dc-1": dc1}, {"wms": 4}, {"web": [6, 3]}, 4, 3000, {}, {}, -1]]
    )
    # when it is read
    row = row_from_bytes(stored)
    # then its pairs are named, and writing it back gives the same bytes
    assert stock(row).journal == (
        Movement(occurred_at=2000, delta=-2),
        Movement(occurred_at=3000, delta=-1),
    )
    assert all(type(entry) is Movement for entry in stock(row).journal)
    assert row.published == {"web": Published(quantity=6, version=3)}
    assert type(row.published["web"]) is Published
    assert row_to_bytes(row) == stored


def test_a_folded_row_stores_its_named_pairs_as_arrays() -> None:
    row, _ = fold(ev(K.RECEIVED, 10, at=1000), ev(K.SOLD, 1, source="pos", at=2000))
    stored = msgspec.msgpack.decode(row_to_bytes(row))
    assert stored[1][1]["dc-1"][7] == [[1000, 10], [2000, -1]]  # LocationStock.journal
    assert stored[1][3]["web"] == [9, TOPOLOGY.version]  # SkuRow.published
