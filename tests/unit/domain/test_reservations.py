"""Reservations, by example: one behaviour per test, arranged given / when / then
(BRIEF §3 "Reservations that cannot oversell")."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from api.test_reservation_http import call, post_reserve, stocked_service
from builders import (
    OUTSIDE,
    SKU,
    TOPOLOGY,
    command,
    ev,
    of_type,
    reply_of,
    reserve,
    stock,
    stocked,
)

from stocksync.codec.avro import decode
from stocksync.codec.reservations import (
    COMMAND_SUBJECT,
    REPLY_SUBJECT,
    command_from_record,
    encode_command,
    encode_reply,
    reply_from_record,
)
from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.domain.effects import ChannelQuantityChanged, ReservationFulfilled
from stocksync.domain.events import EventKind as K
from stocksync.domain.fold import apply_event
from stocksync.domain.limits import (
    CHANNEL_MAX,
    LOCATION_MAX,
    REQUEST_ID_MAX,
    RESERVATION_ID_MAX,
    SKU_MAX,
    TIME_MS_MAX,
)
from stocksync.domain.reservations import (
    MAX_ANSWERS,
    CommandKind,
    CommandResult,
    InvalidCommand,
    ReplyStatus,
    ReservationCommand,
    ReservationReply,
    apply_command,
    expired_holds,
    fulfilled_reply,
    validate_command,
)
from stocksync.domain.state import Hold, HoldStatus, Published, SkuRow, channel_atp


def run(row: SkuRow | None, *commands: ReservationCommand) -> CommandResult:
    """Apply the commands in order; the result of the last one."""
    assert commands
    result = None
    for cmd in commands:
        result = apply_command(row, cmd, TOPOLOGY)
        row = result.row
    assert result is not None
    return result


def projections(result: CommandResult) -> dict[str, int]:
    return {e.channel: e.quantity for e in of_type(result.effects, ChannelQuantityChanged)}


# --- RESERVE: accepted --------------------------------------------------------------------


def test_reserve_covered_by_channel_and_location_is_held() -> None:
    # given 10 units at dc-1
    row = stocked(("dc-1", 10))
    # when web asks to hold 4 for a minute
    result = run(row, reserve(4, "res-1", at=5_000, ttl=60_000))
    # then they are held at dc-1 until issued_at + ttl
    reply = reply_of(result)
    assert result.applied
    assert (reply.status, reply.kind) == (ReplyStatus.HELD, CommandKind.RESERVE)
    assert (reply.request_id, reply.reservation_id, reply.sku) == ("res-1", "res-1", SKU)
    assert (reply.channel, reply.location) == ("web", "dc-1")
    assert (reply.quantity, reply.requested, reply.available) == (4, 4, 10)
    assert reply.expires_at == 65_000
    assert reply.reason == ""


def test_held_units_count_as_reserved_at_the_chosen_location() -> None:
    row = stocked(("dc-1", 10), ("store-1", 3))
    result = run(row, reserve(4))
    assert stock(result.row, "dc-1").reserved == 4
    assert stock(result.row, "dc-1").on_hand == 10
    assert stock(result.row, "store-1").reserved == 0
    assert result.row.holds == {"res-1": Hold("web", "dc-1", 4, 60_000, {"dc-1": 4})}


def test_a_hold_lowers_the_quantity_of_every_channel_selling_that_location() -> None:
    # given dc-1 feeds web and marketplace (10% + 1 unit buffer), store-1 feeds web and POS
    row = stocked(("dc-1", 10), ("store-1", 3))
    assert (row.published["web"].quantity, row.published["marketplace"].quantity) == (13, 8)
    # when 4 are held at dc-1
    result = run(row, reserve(4))
    # then web and marketplace are told their lower quantity; POS is untouched
    assert projections(result) == {"web": 9, "marketplace": 5}
    changed = of_type(result.effects, ChannelQuantityChanged)
    assert {(e.sku, e.policy_version, e.revision) for e in changed} == {
        (SKU, TOPOLOGY.version, result.row.revision)
    }
    assert result.row.published["web"] == Published(9, TOPOLOGY.version)
    assert channel_atp(result.row, TOPOLOGY, "web") == 9


def test_location_with_the_most_atp_is_chosen() -> None:
    # given dc-1 has 3, store-1 has 7 and dc-2 has 6 (ATP 4 after its safety stock of 2)
    row = stocked(("dc-1", 3), ("dc-2", 6), ("store-1", 7))
    # when web holds 1
    result = run(row, reserve(1))
    # then it goes to store-1
    assert reply_of(result).location == "store-1"
    assert stock(result.row, "store-1").reserved == 1


def test_safety_stock_counts_when_choosing_the_location() -> None:
    # given dc-2 has more units on hand but less ATP than dc-1 (safety stock 2)
    row = stocked(("dc-1", 5), ("dc-2", 6))
    result = run(row, reserve(1))
    assert reply_of(result).location == "dc-1"


def test_tie_in_atp_is_broken_by_location_name() -> None:
    # given dc-2 (8 - safety 2) and store-1 have the same ATP, 6, and dc-1 less
    row = stocked(("dc-1", 2), ("dc-2", 8), ("store-1", 6))
    result = run(row, reserve(1))
    assert reply_of(result).location == "dc-2"
    # and the choice does not depend on the order the locations were first stocked in
    reordered = stocked(("store-1", 6), ("dc-2", 8), ("dc-1", 2))
    assert reply_of(run(reordered, reserve(1))).location == "dc-2"
    assert reply_of(run(reordered, reserve(1))).lines == {"dc-2": 1}


def test_explicit_location_is_honoured_even_when_another_has_more() -> None:
    row = stocked(("dc-1", 10), ("store-1", 2))
    result = run(row, reserve(2, loc="store-1"))
    assert reply_of(result).status is ReplyStatus.HELD
    assert reply_of(result).location == "store-1"
    assert stock(result.row, "store-1").reserved == 2
    assert stock(result.row, "dc-1").reserved == 0


def test_partial_hold_takes_what_is_available() -> None:
    # given 3 units where 5 are wanted and the channel accepts a partial hold
    row = stocked(("dc-1", 3))
    result = run(row, reserve(5, partial=True))
    # then 3 are held and the reply says 5 were asked for
    reply = reply_of(result)
    assert reply.status is ReplyStatus.HELD
    assert (reply.quantity, reply.requested, reply.available) == (3, 5, 3)
    assert stock(result.row, "dc-1").reserved == 3
    assert result.row.holds["res-1"].quantity == 3


def test_partial_hold_of_less_than_available_takes_what_was_asked() -> None:
    row = stocked(("dc-1", 10))
    result = run(row, reserve(4, partial=True))
    assert (reply_of(result).quantity, reply_of(result).available) == (4, 10)


# --- RESERVE: rejected --------------------------------------------------------------------


def test_reserve_beyond_channel_atp_is_rejected_with_what_was_available() -> None:
    # given marketplace sees 10 - 10% - 1 = 8 of dc-1's 10 units
    row = stocked(("dc-1", 10))
    # when it asks for 9
    result = run(row, reserve(9, channel="marketplace"))
    # then nothing is held and the reply says 8 were available
    reply = reply_of(result)
    assert reply.status is ReplyStatus.REJECTED
    assert (reply.quantity, reply.requested, reply.available) == (0, 9, 8)
    assert "8 available to marketplace" in reply.reason
    assert "9 requested" in reply.reason
    assert stock(result.row, "dc-1").reserved == 0
    assert result.row.holds == {}
    assert result.effects == ()
    # and 8 can be held
    assert reply_of(run(row, reserve(8, channel="marketplace"))).status is ReplyStatus.HELD


def test_channel_cap_limits_what_can_be_held() -> None:
    # given 100 units: marketplace would see 89 but is capped at 50
    row = stocked(("dc-1", 100))
    rejected = reply_of(run(row, reserve(51, channel="marketplace")))
    assert (rejected.status, rejected.available) == (ReplyStatus.REJECTED, 50)
    assert reply_of(run(row, reserve(50, channel="marketplace"))).status is ReplyStatus.HELD


def test_a_hold_spans_locations_when_one_cannot_cover_it() -> None:
    # given web sees 6 units, split 3 + 3 over two locations
    row = stocked(("dc-1", 3), ("store-1", 3))
    assert channel_atp(row, TOPOLOGY, "web") == 6
    # when it asks for all 6
    result = run(row, reserve(6))
    # then both locations give theirs, in one hold of two lines
    reply = reply_of(result)
    assert reply.status is ReplyStatus.HELD
    assert (reply.quantity, reply.lines) == (6, {"dc-1": 3, "store-1": 3})
    assert (stock(result.row, "dc-1").reserved, stock(result.row, "store-1").reserved) == (3, 3)
    assert result.row.holds["res-1"].allocation() == {"dc-1": 3, "store-1": 3}
    # and one more unit is refused, naming what the channel has
    refused = reply_of(apply_command(result.row, reserve(1, "res-2"), TOPOLOGY))
    assert refused.status is ReplyStatus.REJECTED
    assert refused.reason == "0 available to web, 1 requested"


def test_a_location_asked_for_must_cover_the_hold_alone() -> None:
    row = stocked(("dc-1", 3), ("store-1", 3))
    result = run(row, reserve(5, loc="store-1"))
    assert reply_of(result).status is ReplyStatus.REJECTED
    assert reply_of(result).available == 3
    assert reply_of(result).reason == "3 available to web at store-1, 5 requested"


def test_a_reservation_for_a_sku_never_stocked_is_refused_as_unknown() -> None:
    result = apply_command(None, reserve(1), TOPOLOGY)
    assert reply_of(result).status is ReplyStatus.REJECTED
    assert reply_of(result).reason == "unknown SKU 'SKU-1': no event has stocked it"
    assert result.row.locations == {}


def test_explicit_location_without_enough_atp_is_rejected() -> None:
    row = stocked(("dc-1", 10), ("store-1", 2))
    result = run(row, reserve(3, loc="store-1"))
    assert reply_of(result).status is ReplyStatus.REJECTED
    assert (reply_of(result).location, reply_of(result).available) == ("store-1", 2)
    assert stock(result.row, "dc-1").reserved == 0


def test_location_that_does_not_serve_the_channel_is_rejected() -> None:
    # given stock at dc-1, which POS of store-1 cannot sell
    row = stocked(("dc-1", 10), ("store-1", 5))
    for loc in ("dc-1", OUTSIDE, "nowhere"):
        # when POS asks for a hold there
        result = run(row, reserve(1, channel="pos-store-1", loc=loc))
        # then it is rejected and names the location
        reply = reply_of(result)
        assert reply.status is ReplyStatus.REJECTED, loc
        assert reply.location is None
        assert reply.available == 0
        assert f"location {loc!r} does not serve pos-store-1" == reply.reason
        assert result.row.locations == row.locations


def test_reserve_without_stock_is_rejected_with_zero_available() -> None:
    result = run(None, reserve(1))
    assert reply_of(result).status is ReplyStatus.REJECTED
    assert reply_of(result).available == 0
    assert result.row.sku == SKU
    assert result.row.holds == {}


def test_partial_hold_is_rejected_when_nothing_is_available() -> None:
    # given dc-2's 2 units are all safety stock
    row = stocked(("dc-2", 2))
    result = run(row, reserve(5, partial=True))
    reply = reply_of(result)
    assert reply.status is ReplyStatus.REJECTED
    assert (reply.quantity, reply.requested, reply.available) == (0, 5, 0)
    assert result.row.holds == {}


def test_held_units_are_not_available_to_the_next_request() -> None:
    row = stocked(("dc-1", 5))
    result = run(row, reserve(4, "a"), reserve(2, "b"))
    assert reply_of(result).status is ReplyStatus.REJECTED
    assert reply_of(result).available == 1
    assert stock(result.row).reserved == 4


# --- RESERVE: invalid ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "qty", "ttl", "reason"),
    [
        ("ebay", 1, 1000, "unknown channel 'ebay'"),
        ("", 1, 1000, "unknown channel ''"),
        ("web", 0, 1000, "quantity and ttl must be > 0"),
        ("web", -3, 1000, "quantity and ttl must be > 0"),
        ("web", 1, 0, "quantity and ttl must be > 0"),
        ("web", 1, -5, "quantity and ttl must be > 0"),
    ],
)
def test_invalid_reserve_is_answered_invalid_and_holds_nothing(
    channel: str, qty: int, ttl: int, reason: str
) -> None:
    row = stocked(("dc-1", 10))
    result = run(row, reserve(qty, channel=channel, ttl=ttl))
    assert reply_of(result).status is ReplyStatus.INVALID
    assert reply_of(result).reason == reason
    assert result.row.locations == row.locations
    assert result.row.holds == {}
    assert result.effects == ()


# --- retries ------------------------------------------------------------------------------


def test_retried_request_gets_the_same_reply_and_no_second_hold() -> None:
    # given a hold of 4
    first = run(stocked(("dc-1", 10)), reserve(4))
    # when the same request arrives again
    again = apply_command(first.row, reserve(4), TOPOLOGY)
    # then the recorded reply is given, nothing is applied, nothing is published
    assert again.reply == first.reply
    assert again.applied is False
    assert again.effects == ()
    assert again.row is first.row
    assert stock(again.row).reserved == 4


def test_retry_is_recognised_after_the_row_was_stored_and_read_back() -> None:
    first = run(stocked(("dc-1", 10)), reserve(4))
    stored = row_to_bytes(first.row)
    again = apply_command(row_from_bytes(stored), reserve(4), TOPOLOGY)
    assert again.reply == first.reply
    assert again.applied is False
    assert row_to_bytes(again.row) == stored


def test_retried_rejection_stays_rejected_after_units_were_freed() -> None:
    # given b was rejected while a held 4 of 5 units
    row = stocked(("dc-1", 5))
    first = run(row, reserve(4, "a"), reserve(4, "b"))
    assert reply_of(first).status is ReplyStatus.REJECTED
    # when a is released and b's request is retried
    freed = apply_command(first.row, command("RELEASE", "a"), TOPOLOGY)
    again = apply_command(freed.row, reserve(4, "b"), TOPOLOGY)
    # then the recorded decision is given again: a retry never decides anew
    assert again.reply == first.reply
    assert again.applied is False
    assert "b" not in again.row.holds


def test_a_request_id_used_again_with_another_body_is_key_reused_and_holds_nothing() -> None:
    first = run(stocked(("dc-1", 10)), reserve(4))
    again = apply_command(first.row, reserve(9, partial=True), TOPOLOGY)
    reply = reply_of(again)
    assert reply.status is ReplyStatus.KEY_REUSED
    assert reply.fingerprint == reply_of(first).fingerprint
    assert (reply.channel, reply.requested) == ("web", 4)  # the first request, named
    assert "used for another request (RESERVE 4 of SKU-1 for web, answered HELD)" in reply.reason
    assert again.applied is False
    assert again.row == first.row
    # and the very same request is still answered as it was first
    assert apply_command(again.row, reserve(4), TOPOLOGY).reply == first.reply


def test_new_request_for_an_existing_reservation_reports_the_hold() -> None:
    # given reservation res-1 holds 4
    first = run(stocked(("dc-1", 10)), reserve(4))
    # when another request (new request id) asks for res-1 again, with another quantity
    result = apply_command(first.row, reserve(6, request_id="other-request"), TOPOLOGY)
    # then the existing hold is reported and no second hold is made
    reply = reply_of(result)
    assert reply.status is ReplyStatus.HELD
    assert (reply.request_id, reply.reservation_id) == ("other-request", "res-1")
    assert (reply.location, reply.quantity, reply.requested) == ("dc-1", 4, 6)
    assert reply.expires_at == reply_of(first).expires_at
    assert stock(result.row).reserved == 4
    assert result.row.holds == first.row.holds
    assert projections(result) == {}


# --- CONFIRM / RELEASE / EXPIRE / EXTEND --------------------------------------------------


def test_confirm_turns_the_hold_into_an_order_line_that_keeps_its_units() -> None:
    held = run(stocked(("dc-1", 10)), reserve(4))
    result = apply_command(held.row, command("CONFIRM", "res-1", at=1_000), TOPOLOGY)
    reply = reply_of(result)
    assert reply.status is ReplyStatus.CONFIRMED
    assert (reply.channel, reply.location, reply.quantity) == ("web", "dc-1", 4)
    # the hold is now an order line: it stays, never expires, its units stay reserved, so
    # no channel quantity moves
    assert result.row.holds["res-1"].status is HoldStatus.CONFIRMED
    assert expired_holds(result.row, 10**12) == []
    assert stock(result.row).reserved == 4
    assert projections(result) == {}
    assert channel_atp(result.row, TOPOLOGY, "web") == 6


def test_fulfilling_a_confirmed_order_ships_its_reserved_units() -> None:
    # given a confirmed order line of 4 at dc-1
    row = run(stocked(("dc-1", 10)), reserve(4), command("CONFIRM", "res-1")).row
    # when the warehouse reports it FULFILLED
    shipped = apply_event(row, ev(K.FULFILLED, 4, loc="dc-1", source="web"), TOPOLOGY)
    # then reserved and on hand both drop by 4 and channels see the same ATP as before
    assert (stock(shipped.row).on_hand, stock(shipped.row).reserved) == (6, 0)
    assert stock(shipped.row).oversold == 0
    assert channel_atp(shipped.row, TOPOLOGY, "web") == 6
    assert of_type(shipped.effects, ChannelQuantityChanged) == []


def test_a_fulfilled_event_naming_the_order_line_closes_its_lines_then_ends_it() -> None:
    # given a confirmed order line of 8: 6 at dc-1 and 2 at store-1
    row = run(stocked(("dc-1", 6), ("store-1", 3)), reserve(8), command("CONFIRM", "res-1")).row
    # when dc-1 ships its 6, naming the reservation
    first = apply_event(row, ev(K.FULFILLED, 6, loc="dc-1", reservation="res-1"), TOPOLOGY)
    # then the line at dc-1 is closed, the one at store-1 stays open
    assert first.row.holds["res-1"].allocation() == {"store-1": 2}
    assert first.row.holds["res-1"].quantity == 8  # the reservation's size
    assert (stock(first.row, "dc-1").on_hand, stock(first.row, "dc-1").reserved) == (0, 0)
    assert of_type(first.effects, ReservationFulfilled) == []
    # when store-1 ships its 2
    last = apply_event(first.row, ev(K.FULFILLED, 2, loc="store-1", reservation="res-1"), TOPOLOGY)
    # then the reservation has ended, fulfilled, and cannot be cancelled any more
    assert last.row.holds == {}
    ended = of_type(last.effects, ReservationFulfilled)
    assert [(e.reservation_id, e.quantity) for e in ended] == [("res-1", 8)]
    assert fulfilled_reply(ended[0]).status is ReplyStatus.FULFILLED
    cancel = apply_command(last.row, command("CANCEL", "res-1"), TOPOLOGY)
    assert reply_of(cancel).status is ReplyStatus.NOT_FOUND
    assert stock(cancel.row, "store-1").reserved == 0


def test_a_fulfilled_event_naming_no_reservation_closes_the_oldest_order_lines_it_shipped() -> None:
    # given two confirmed order lines at dc-1: res-1 of 4, then res-2 of 3
    row = run(
        stocked(("dc-1", 10)),
        reserve(4, "res-1"),
        reserve(3, "res-2"),
        command("CONFIRM", "res-1"),
        command("CONFIRM", "res-2"),
    ).row
    # when the warehouse ships 5 without saying for which order
    shipped = apply_event(row, ev(K.FULFILLED, 5, loc="dc-1", source="web"), TOPOLOGY)
    # then the oldest line is closed (it ended fulfilled) and the next one holds what is left,
    # so the lines still add up to the reserved units
    assert stock(shipped.row).reserved == 2
    assert list(shipped.row.holds) == ["res-2"]
    assert shipped.row.holds["res-2"].allocation() == {"dc-1": 2}
    assert [e.reservation_id for e in of_type(shipped.effects, ReservationFulfilled)] == ["res-1"]
    # and cancelling the rest gives back exactly its 2 units, not the 3 it was confirmed with
    cancel = apply_command(shipped.row, command("CANCEL", "res-2"), TOPOLOGY)
    assert reply_of(cancel).status is ReplyStatus.CANCELLED
    assert stock(cancel.row).reserved == 0


def test_a_fulfilled_event_naming_an_unknown_reservation_still_ships_its_units() -> None:
    row = stocked(("dc-1", 6))
    shipped = apply_event(row, ev(K.FULFILLED, 2, loc="dc-1", reservation="nope"), TOPOLOGY)
    assert stock(shipped.row).on_hand == 4
    assert shipped.row.holds == {}


def test_release_frees_the_units() -> None:
    held = run(stocked(("dc-1", 10)), reserve(4))
    result = apply_command(held.row, command("RELEASE", "res-1"), TOPOLOGY)
    reply = reply_of(result)
    assert reply.status is ReplyStatus.RELEASED
    assert (reply.location, reply.quantity) == ("dc-1", 4)
    assert result.row.holds == {}
    assert stock(result.row).reserved == 0
    assert projections(result) == {"web": 10, "marketplace": 8}


def test_expire_when_the_time_ran_out_frees_the_units() -> None:
    held = run(stocked(("dc-1", 10)), reserve(4, at=0, ttl=1_000))
    result = apply_command(held.row, command("EXPIRE", "res-1", at=1_000), TOPOLOGY)
    assert reply_of(result).status is ReplyStatus.EXPIRED
    assert reply_of(result).quantity == 4
    assert result.row.holds == {}
    assert stock(result.row).reserved == 0
    assert projections(result) == {"web": 10, "marketplace": 8}


def test_expire_written_before_an_extension_took_effect_keeps_the_hold() -> None:
    # given a hold until 1000, extended at 500 to 2500
    held = run(
        stocked(("dc-1", 10)),
        reserve(4, at=0, ttl=1_000),
        command("EXTEND", "res-1", at=500, ttl=2_000),
    )
    assert reply_of(held).status is ReplyStatus.EXTENDED
    assert reply_of(held).expires_at == 2_500
    # when the expiry the worker wrote for 1000 is decided
    result = apply_command(held.row, command("EXPIRE", "res-1", at=1_000), TOPOLOGY)
    # then the hold lives on
    assert reply_of(result).status is ReplyStatus.HELD
    assert (reply_of(result).reason, reply_of(result).expires_at) == ("extended", 2_500)
    assert result.row.holds["res-1"] == Hold("web", "dc-1", 4, 2_500, {"dc-1": 4})
    assert stock(result.row).reserved == 4
    assert projections(result) == {}


def test_extend_moves_the_expiry_later() -> None:
    held = run(stocked(("dc-1", 10)), reserve(4, at=0, ttl=1_000))
    result = apply_command(held.row, command("EXTEND", "res-1", at=800, ttl=5_000), TOPOLOGY)
    reply = reply_of(result)
    assert (reply.status, reply.expires_at) == (ReplyStatus.EXTENDED, 5_800)
    assert (reply.channel, reply.location, reply.quantity) == ("web", "dc-1", 4)
    assert result.row.holds["res-1"].expires_at == 5_800
    assert stock(result.row).reserved == 4
    assert result.effects == ()


def test_extend_never_shortens_a_hold() -> None:
    held = run(stocked(("dc-1", 10)), reserve(4, at=0, ttl=10_000))
    for ttl in (1_000, 0, -50_000):
        result = apply_command(
            held.row, command("EXTEND", "res-1", request_id=f"x{ttl}", at=100, ttl=ttl), TOPOLOGY
        )
        assert reply_of(result).status is ReplyStatus.EXTENDED
        assert reply_of(result).expires_at == 10_000
        assert result.row.holds["res-1"].expires_at == 10_000


@pytest.mark.parametrize("kind", ["CONFIRM", "RELEASE", "EXTEND", "EXPIRE"])
def test_command_on_an_unknown_reservation_is_not_found(kind: str) -> None:
    row = run(stocked(("dc-1", 10)), reserve(4, "res-1")).row
    result = apply_command(row, command(kind, "res-404", at=10**9, ttl=1_000), TOPOLOGY)
    assert reply_of(result).status is ReplyStatus.NOT_FOUND
    assert reply_of(result).reason == "no active hold 'res-404'"
    assert result.row.holds == row.holds
    assert result.row.locations == row.locations
    assert result.effects == ()


@pytest.mark.parametrize("kind", ["CONFIRM", "RELEASE", "EXTEND", "EXPIRE"])
def test_command_on_an_ended_reservation_is_not_found(kind: str) -> None:
    row = run(stocked(("dc-1", 10)), reserve(4), command("RELEASE", "res-1")).row
    result = apply_command(row, command(kind, "res-1", request_id="late", ttl=1_000), TOPOLOGY)
    assert reply_of(result).status is ReplyStatus.NOT_FOUND
    assert stock(result.row).reserved == 0


@pytest.mark.parametrize(
    ("kind", "fix"),
    [
        ("RELEASE", "it is a confirmed order line: cancel it instead"),
        ("EXTEND", "it is a confirmed order line, which does not expire"),
    ],
)
def test_release_or_extend_of_a_confirmed_order_line_is_the_wrong_state(
    kind: str, fix: str
) -> None:
    row = run(stocked(("dc-1", 10)), reserve(4), command("CONFIRM", "res-1")).row
    result = apply_command(row, command(kind, "res-1", ttl=1_000), TOPOLOGY)
    assert reply_of(result).status is ReplyStatus.WRONG_STATE
    assert reply_of(result).reason == f"cannot {kind.lower()} reservation 'res-1': {fix}"
    assert result.row.holds == row.holds
    assert stock(result.row).reserved == 4


def test_cancel_of_a_held_reservation_is_the_wrong_state() -> None:
    row = run(stocked(("dc-1", 10)), reserve(4)).row
    result = apply_command(row, command("CANCEL", "res-1"), TOPOLOGY)
    assert reply_of(result).status is ReplyStatus.WRONG_STATE
    assert "release it instead" in reply_of(result).reason
    assert stock(result.row).reserved == 4


def test_cancel_of_a_confirmed_order_line_gives_its_units_back() -> None:
    row = run(stocked(("dc-1", 6), ("store-1", 3)), reserve(8), command("CONFIRM", "res-1")).row
    result = apply_command(row, command("CANCEL", "res-1"), TOPOLOGY)
    reply = reply_of(result)
    assert reply.status is ReplyStatus.CANCELLED
    assert (reply.quantity, reply.lines) == (8, {"dc-1": 6, "store-1": 2})
    assert result.row.holds == {}
    assert (stock(result.row, "dc-1").reserved, stock(result.row, "store-1").reserved) == (0, 0)
    assert projections(result) == {"web": 9, "marketplace": 5, "pos-store-1": 3}
    # and a second cancel (a new request) finds nothing to cancel
    again = apply_command(result.row, command("CANCEL", "res-1", request_id="c2"), TOPOLOGY)
    assert reply_of(again).status is ReplyStatus.NOT_FOUND


def test_confirm_and_expire_of_a_confirmed_order_line_change_nothing() -> None:
    row = run(stocked(("dc-1", 10)), reserve(4, ttl=1_000), command("CONFIRM", "res-1")).row
    for kind in ("CONFIRM", "EXPIRE"):
        result = apply_command(row, command(kind, "res-1", request_id=kind, at=5_000), TOPOLOGY)
        assert reply_of(result).status is ReplyStatus.CONFIRMED
        assert result.row.holds == row.holds
        assert stock(result.row).reserved == 4


# --- bookkeeping --------------------------------------------------------------------------


def test_each_decided_command_bumps_the_revision() -> None:
    row = stocked(("dc-1", 10))
    first = apply_command(row, reserve(4), TOPOLOGY)
    assert first.row.revision == row.revision + 1
    assert apply_command(first.row, reserve(4), TOPOLOGY).row.revision == first.row.revision


def test_remembered_answers_are_bounded_oldest_first() -> None:
    # given MAX_ANSWERS + 1 answered requests
    row = stocked(("dc-1", 10))
    for i in range(MAX_ANSWERS + 1):
        row = apply_command(row, command("RELEASE", "nope", request_id=f"q{i}"), TOPOLOGY).row
    # then only the newest MAX_ANSWERS are remembered
    assert len(row.answers) == MAX_ANSWERS
    assert list(row.answers) == [f"q{i}" for i in range(1, MAX_ANSWERS + 1)]
    # and the forgotten request is decided again while a remembered one is not
    assert apply_command(row, command("RELEASE", "nope", request_id="q0"), TOPOLOGY).applied
    assert not apply_command(row, command("RELEASE", "nope", request_id="q1"), TOPOLOGY).applied


def test_remembered_answers_drop_the_oldest_also_when_stored_after_every_command() -> None:
    # given the worker stores the row after each of MAX_ANSWERS + 8 requests
    row = stocked(("dc-1", 10))
    for i in range(MAX_ANSWERS + 8):
        cmd = command("RELEASE", "nope", request_id=f"q{i}")
        row = row_from_bytes(row_to_bytes(apply_command(row, cmd, TOPOLOGY).row))
    # then the newest MAX_ANSWERS are the ones remembered, in the order they came
    assert list(row.answers) == [f"q{i}" for i in range(8, MAX_ANSWERS + 8)]


def test_expired_holds_lists_the_holds_whose_time_ran_out() -> None:
    row = run(
        stocked(("dc-1", 10)),
        reserve(1, "a", at=0, ttl=1_000),
        reserve(1, "b", at=0, ttl=2_000),
        reserve(1, "c", at=0, ttl=3_000),
    ).row
    assert expired_holds(row, 999) == []
    assert sorted(expired_holds(row, 2_000)) == ["a", "b"]
    assert sorted(expired_holds(row, 10**12)) == ["a", "b", "c"]
    assert sorted(expired_holds(row_from_bytes(row_to_bytes(row)), 2_000)) == ["a", "b"]


def test_row_with_holds_and_answers_survives_storage() -> None:
    row = run(
        stocked(("dc-1", 10), ("store-1", 4)),
        reserve(2, "a", loc="store-1"),
        reserve(3, "b"),
        command("CONFIRM", "b"),
        command("RELEASE", "zzz"),
    ).row
    again = row_from_bytes(row_to_bytes(row))
    assert again.holds == row.holds
    assert dict(again.answers) == dict(row.answers)
    assert again.locations == row.locations
    assert row_to_bytes(again) == row_to_bytes(row)


def test_inventory_event_keeps_active_holds_and_remembered_answers() -> None:
    # given a hold of 4 at dc-1
    held = run(stocked(("dc-1", 10)), reserve(4))
    # when unrelated stock arrives
    after = apply_event(held.row, ev(K.RECEIVED, 5, loc="store-1"), TOPOLOGY).row
    # then the hold is still there, and releasing it frees its units
    assert after.holds == held.row.holds
    assert dict(after.answers) == dict(held.row.answers)
    released = apply_command(after, command("RELEASE", "res-1"), TOPOLOGY)
    assert reply_of(released).status is ReplyStatus.RELEASED
    assert stock(released.row).reserved == 0


# --- codec --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cmd",
    [
        reserve(3, "r-1", at=1_700_000_000_000, ttl=900_000),
        reserve(3, "r-2", loc="store-1", partial=True, channel="pos-store-1"),
        command("CONFIRM", "r-1", request_id="confirm:r-1:", at=5),
        command("EXTEND", "r-1", request_id="extend:r-1:k", ttl=60_000),
        command("RELEASE", "r-1"),
        command("EXPIRE", "r-1", at=2**53),
    ],
)
def test_command_survives_the_avro_round_trip(cmd: ReservationCommand) -> None:
    subject, record = decode(encode_command(cmd))
    assert subject == COMMAND_SUBJECT
    assert command_from_record(record) == cmd


def test_reply_survives_the_avro_round_trip() -> None:
    row = stocked(("dc-1", 10))
    replies: list[ReservationReply] = [
        reply_of(run(row, reserve(4))),
        reply_of(run(row, reserve(40))),
        reply_of(run(row, reserve(1, channel="pos-store-1", loc="dc-1"))),
        reply_of(run(row, reserve(1, channel="ebay"))),
        reply_of(run(row, command("RELEASE", "nope"))),
        reply_of(run(row, reserve(4), command("CONFIRM", "res-1"))),
    ]
    assert {r.status for r in replies} == {
        ReplyStatus.HELD,
        ReplyStatus.REJECTED,
        ReplyStatus.INVALID,
        ReplyStatus.NOT_FOUND,
        ReplyStatus.CONFIRMED,
    }
    for reply in replies:
        subject, record = decode(encode_reply(reply))
        assert subject == REPLY_SUBJECT
        assert reply_from_record(record) == reply


def test_reply_survives_the_answer_kept_in_the_row() -> None:
    result = run(stocked(("dc-1", 10)), reserve(4))
    reply = result.reply
    assert reply is not None
    kept = row_from_bytes(row_to_bytes(result.row)).answers[reply.request_id]
    assert kept == reply.answer()
    assert ReservationReply.of(kept, reply.request_id, SKU) == reply


# --- size limits (BRIEF §3: a field over its length limit is dead-lettered) ----------------

COMMAND_STRING_LIMITS = [
    ("request_id", REQUEST_ID_MAX),
    ("sku", SKU_MAX),
    ("reservation_id", RESERVATION_ID_MAX),
    ("channel", CHANNEL_MAX),
    ("location", LOCATION_MAX),
]


def decoded(cmd: ReservationCommand) -> ReservationCommand:
    """The command as the worker reads it from the log."""
    subject, record = decode(encode_command(cmd))
    assert subject == COMMAND_SUBJECT
    return command_from_record(record)


def with_field(field: str, value: object) -> ReservationCommand:
    changes: dict[str, Any] = {field: value}  # any field, so any of the fields' types
    return replace(reserve(1, "res-1", at=1_700_000_000_000), **changes)


@pytest.mark.parametrize(("field", "limit"), COMMAND_STRING_LIMITS)
def test_a_command_string_at_its_limit_is_read(field: str, limit: int) -> None:
    cmd = with_field(field, "x" * limit)
    assert decoded(cmd) == cmd


@pytest.mark.parametrize(("field", "limit"), COMMAND_STRING_LIMITS)
def test_a_command_string_one_over_its_limit_is_invalid_naming_the_field_and_limit(
    field: str, limit: int
) -> None:
    with pytest.raises(InvalidCommand) as caught:
        decoded(with_field(field, "x" * (limit + 1)))
    assert str(caught.value) == f"{field} is {limit + 1} characters, the limit is {limit}"


def test_an_invalid_command_is_a_value_error_so_the_worker_dead_letters_it_as_invalid() -> None:
    # the worker and the replay tool send every ValueError of decoding to the dead letter
    assert issubclass(InvalidCommand, ValueError)


@pytest.mark.parametrize("field", ["issued_at", "ttl_ms"])
@pytest.mark.parametrize("value", [TIME_MS_MAX, -TIME_MS_MAX])
def test_a_command_time_at_its_limit_is_read(field: str, value: int) -> None:
    cmd = with_field(field, value)
    assert decoded(cmd) == cmd


@pytest.mark.parametrize("field", ["issued_at", "ttl_ms"])
@pytest.mark.parametrize("value", [TIME_MS_MAX + 1, -TIME_MS_MAX - 1, 2**63 - 1])
def test_a_command_time_beyond_its_limit_is_invalid_naming_the_field(
    field: str, value: int
) -> None:
    # issued_at + ttl_ms is a hold's expires_at: it must fit the reply's Avro long
    with pytest.raises(InvalidCommand) as caught:
        decoded(with_field(field, value))
    assert str(caught.value) == f"{field} {value} is beyond the limit of ±{TIME_MS_MAX}"


def test_a_hold_at_the_time_limits_is_answered_and_its_reply_encodes() -> None:
    cmd = decoded(reserve(1, "res-1", at=TIME_MS_MAX, ttl=TIME_MS_MAX))
    reply = reply_of(run(stocked(("dc-1", 10)), cmd))
    assert reply.expires_at == 2 * TIME_MS_MAX
    assert reply_from_record(decode(encode_reply(reply))[1]) == reply


def test_request_ids_the_worker_and_the_http_api_compose_from_the_longest_ids_fit() -> None:
    rid = "r" * RESERVATION_ID_MAX
    longest_key = "k" * RESERVATION_ID_MAX  # the HTTP API's Idempotency-Key limit
    for request_id in (
        f"expire:{rid}:{-(2**63)}",  # the worker's EXPIRE
        f"confirm:{rid}:{longest_key}",  # the HTTP API's CONFIRM, RELEASE, EXTEND
        f"release:{rid}:{longest_key}",
        f"extend:{rid}:{longest_key}",
    ):
        validate_command(command("EXPIRE", rid, request_id=request_id))


# --- the HTTP API refuses up front what the worker would dead-letter -----------------------


@pytest.mark.parametrize(
    ("field", "limit"), [("sku", SKU_MAX), ("channel", CHANNEL_MAX), ("location", LOCATION_MAX)]
)
def test_a_reservation_request_over_a_limit_is_400_naming_the_field_and_nothing_is_sent(
    field: str, limit: int
) -> None:
    service = stocked_service()
    status, body = post_reserve(service, **{field: "x" * (limit + 1)})
    assert (status, body["error"]) == (400, "invalid_request")
    assert body["message"].startswith(f"{field}:")
    assert str(limit) in body["message"]
    assert service.commands == []


def test_an_idempotency_key_at_the_limit_holds_and_the_worker_would_read_its_command() -> None:
    service = stocked_service()
    status, _ = post_reserve(service, "k" * RESERVATION_ID_MAX, quantity=1)
    assert status == 201
    assert decoded(service.commands[-1]) == service.commands[-1]


@pytest.mark.parametrize("action", ["confirm", "release", "extend"])
def test_an_action_with_the_longest_key_sends_a_command_the_worker_reads(action: str) -> None:
    # given a hold whose reservation id is as long as allowed
    service = stocked_service()
    rid = "r" * RESERVATION_ID_MAX
    assert post_reserve(service, rid, quantity=1)[0] == 201
    # when an action names it with the longest Idempotency-Key
    method, path = ("DELETE", "") if action == "release" else ("POST", f"/{action}")
    kwargs: dict[str, object] = {"json": {"ttl_seconds": 60}} if action == "extend" else {}
    status, _ = call(
        service,
        method,
        f"/v1/reservations/{rid}{path}",
        headers={"Idempotency-Key": "k" * RESERVATION_ID_MAX},
        **kwargs,
    )
    # then it is decided, and its composed request id is within the worker's limit
    assert status == 200
    assert decoded(service.commands[-1]) == service.commands[-1]


@pytest.mark.parametrize("method", ["DELETE", "POST"])
def test_an_action_with_a_key_over_the_limit_is_400_and_nothing_is_sent(method: str) -> None:
    service = stocked_service()
    assert post_reserve(service, "order-1", quantity=1)[0] == 201
    sent = len(service.commands)
    path = "/v1/reservations/order-1" + ("/confirm" if method == "POST" else "")
    status, body = call(
        service, method, path, headers={"Idempotency-Key": "k" * (RESERVATION_ID_MAX + 1)}
    )
    assert (status, body["error"]) == (400, "invalid_request")
    assert f"at most {RESERVATION_ID_MAX} characters" in body["message"]
    assert len(service.commands) == sent
