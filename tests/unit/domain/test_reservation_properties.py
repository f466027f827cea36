"""Properties of reservation commands over generated command logs (BRIEF §3 "Reservations that
cannot oversell"): no oversell, idempotency, determinism through storage, conservation."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from builders import OUTSIDE, SKU, TOPOLOGY, command, ev, fold, reply_of
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.domain.events import EventKind
from stocksync.domain.fold import apply_event
from stocksync.domain.reservations import (
    MAX_ANSWERS,
    ReplyStatus,
    ReservationCommand,
    ReservationReply,
    apply_command,
)
from stocksync.domain.state import LocationStock, SkuRow

PROPERTY = settings(max_examples=200, deadline=None)

STOCKED = ("dc-1", "dc-2", "store-1", OUTSIDE)
KINDS = ("RESERVE", "RESERVE", "RESERVE", "RELEASE", "CONFIRM", "EXTEND", "EXPIRE", "CANCEL")
RESERVATION_IDS = ("r0", "r1", "r2", "r3", "r4")  # some never reserved
CHANNELS = ("web", "web", "pos-store-1", "marketplace", "ebay")
LOCATIONS = (None, None, None, "dc-1", "dc-2", "store-1", OUTSIDE)


@st.composite
def stocked_rows(draw: st.DrawFn) -> SkuRow | None:
    """A row with 0-15 units received at each location, maybe a safety stock override."""
    events = [
        ev(EventKind.RECEIVED, qty, loc=loc)
        for loc in STOCKED
        if (qty := draw(st.integers(0, 15))) > 0
    ]
    if draw(st.booleans()):
        loc = draw(st.sampled_from(STOCKED))
        events.append(ev(EventKind.SAFETY_STOCK_SET, draw(st.integers(0, 5)), loc=loc))
    return fold(*events)[0] if events else None


@st.composite
def command_logs(
    draw: st.DrawFn, min_size: int = 0, max_size: int = 40
) -> list[ReservationCommand]:
    """Commands of every kind; some are retries (the very same command, same request id)."""
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(KINDS),
                st.sampled_from(RESERVATION_IDS),
                st.sampled_from(CHANNELS),
                st.integers(0, 8),  # quantity (0 is invalid)
                st.sampled_from(LOCATIONS),
                st.sampled_from((0, 500, 1_000, 5_000)),  # ttl (0 is invalid for RESERVE)
                st.booleans(),  # allow_partial
                st.integers(0, 8_000),  # issued_at, not in log order
                st.one_of(st.none(), st.integers(0, 1_000)),  # retry of an earlier command
            ),
            min_size=min_size,
            max_size=max_size,
        )
    )
    log: list[ReservationCommand] = []
    for i, (kind, rid, channel, qty, loc, ttl, partial, at, retry) in enumerate(steps):
        if retry is not None and log:
            log.append(log[retry % len(log)])
            continue
        log.append(
            command(
                kind,
                rid,
                request_id=f"q{i}",
                at=at,
                channel=channel,
                qty=qty,
                loc=loc,
                ttl=ttl,
                partial=partial,
            )
        )
    return log


@dataclass
class Run:
    rows: list[SkuRow]  # the row after each command
    replies: list[ReservationReply]
    applied: list[bool]


def run(row: SkuRow | None, log: list[ReservationCommand], store: bool = False) -> Run:
    """Apply the log; with store, every row goes through row_to_bytes/row_from_bytes, as the
    worker keeps it."""
    out = Run([], [], [])
    for cmd in log:
        result = apply_command(row, cmd, TOPOLOGY)
        row = row_from_bytes(row_to_bytes(result.row)) if store else result.row
        out.rows.append(row)
        out.replies.append(reply_of(result))
        out.applied.append(result.applied)
    return out


def safety(loc: str, stock: LocationStock) -> int:
    return TOPOLOGY.default_safety_stock(loc) if stock.safety_stock is None else stock.safety_stock


# --- (a) no oversell ----------------------------------------------------------------------


@PROPERTY
@given(stocked_rows(), command_logs())
def test_holds_never_take_more_than_the_stock_that_was_available(
    start: SkuRow | None, log: list[ReservationCommand]
) -> None:
    result = run(start, log)
    for step, row in enumerate(result.rows):
        for loc, stock in row.locations.items():
            # reserved is only raised by accepted holds, each checked against the ATP
            assert stock.reserved <= max(stock.on_hand - safety(loc, stock), 0), (step, loc)
            assert stock.reserved >= 0
        # and nothing but a hold or a confirmation ever moves stock
        assert {loc: s.on_hand for loc, s in row.locations.items() if s.on_hand} == {
            loc: s.on_hand for loc, s in (start.locations if start else {}).items() if s.on_hand
        }


@PROPERTY
@given(stocked_rows(), command_logs())
def test_every_held_reply_fits_in_what_it_says_was_available(
    start: SkuRow | None, log: list[ReservationCommand]
) -> None:
    result = run(start, log)
    befores = [start, *result.rows][: len(log)]
    for cmd, reply, applied, before in zip(
        log, result.replies, result.applied, befores, strict=True
    ):
        if not applied or cmd.kind.value != "RESERVE":
            continue
        if before is not None and cmd.reservation_id in before.holds:
            # an existing hold reported to a new request: nothing decided, nothing added
            assert reply.status in (ReplyStatus.HELD, ReplyStatus.INVALID)
            assert reply.quantity in (0, before.holds[cmd.reservation_id].quantity)
            continue
        if reply.status is ReplyStatus.HELD:
            assert 0 < reply.quantity <= reply.available
            assert reply.quantity == (
                min(cmd.quantity, reply.available) if cmd.allow_partial else cmd.quantity
            )
            if cmd.location is not None and reply.quantity:
                assert reply.location == cmd.location
        if reply.status is ReplyStatus.REJECTED:
            assert reply.quantity == 0
            assert reply.available < cmd.quantity or reply.available == 0


# --- (b) idempotency ----------------------------------------------------------------------


@PROPERTY
@given(stocked_rows(), command_logs())
def test_reapplying_an_answered_command_changes_nothing(
    start: SkuRow | None, log: list[ReservationCommand]
) -> None:
    row = start
    first_reply: dict[str, ReservationReply] = {}
    for cmd in log:
        remembered = row is not None and cmd.request_id in row.answers
        result = apply_command(row, cmd, TOPOLOGY)
        if remembered:
            # a retry inside the sequence: the recorded answer, the row untouched
            assert row is not None
            assert result.applied is False
            assert result.effects == ()
            assert row_to_bytes(result.row) == row_to_bytes(row)
            assert result.reply == first_reply[cmd.request_id]
        else:
            assert result.applied is True
            first_reply[cmd.request_id] = reply_of(result)
        row = result.row
        # the same command again, at once and after storage
        before = row_to_bytes(row)
        for again_row in (row, row_from_bytes(before)):
            again = apply_command(again_row, cmd, TOPOLOGY)
            assert again.applied is False
            assert again.reply == result.reply
            assert row_to_bytes(again.row) == before
    # and at the end, every command whose answer the row still remembers
    if row is not None:
        end = row_to_bytes(row)
        for cmd in log:
            if cmd.request_id in row.answers:
                assert row_to_bytes(apply_command(row, cmd, TOPOLOGY).row) == end


@PROPERTY
@given(
    stocked_rows(),
    command_logs(min_size=MAX_ANSWERS + 20, max_size=MAX_ANSWERS + 60),
    st.data(),
)
def test_redelivery_after_a_crash_leaves_the_row_a_function_of_the_log(
    start: SkuRow | None, log: list[ReservationCommand], data: st.DataObject
) -> None:
    """A crash can leave the stored row ahead of the committed offset: every command since the
    commit is read again, however many came since (more than the answers the row remembers).
    Folding with offsets, the row ends byte for byte where a crash-free fold ends."""
    # every record its own request id, so the row's memory of answers runs out
    log = [replace(cmd, request_id=f"{cmd.request_id}@{i}") for i, cmd in enumerate(log)]
    stored_at = data.draw(st.integers(1, len(log)), label="row stored after")
    committed = data.draw(st.integers(0, stored_at), label="offset committed")
    row = start
    for offset, cmd in enumerate(log):
        row = apply_command(row, cmd, TOPOLOGY, offset).row
    crash_free = row_to_bytes(row) if row is not None else None

    row = start
    for offset, cmd in enumerate(log[:stored_at]):
        row = apply_command(row, cmd, TOPOLOGY, offset).row
    assert row is not None
    row = row_from_bytes(row_to_bytes(row))  # restored from the changelog
    for offset in range(committed, len(log)):
        result = apply_command(row, log[offset], TOPOLOGY, offset)
        if offset < stored_at:
            assert result.applied is False  # a redelivery: nothing decided twice
        row = result.row
    assert row_to_bytes(row) == crash_free


@PROPERTY
@given(stocked_rows(), command_logs())
def test_a_reservation_id_is_held_at_most_once(
    start: SkuRow | None, log: list[ReservationCommand]
) -> None:
    result = run(start, log)
    for row in result.rows:
        held = sum(h.quantity for h in row.holds.values())
        assert held <= sum(s.reserved for s in row.locations.values())
    # a HELD reply for an existing hold never adds units
    for i, (cmd, reply) in enumerate(zip(log, result.replies, strict=True)):
        before = result.rows[i - 1] if i else start
        existing = before is not None and cmd.reservation_id in before.holds
        if reply.status is ReplyStatus.HELD and existing:
            assert before is not None
            assert result.rows[i].locations == before.locations


# --- (c) determinism ----------------------------------------------------------------------


@PROPERTY
@given(stocked_rows(), command_logs(max_size=MAX_ANSWERS), st.integers(0, MAX_ANSWERS))
def test_storing_the_row_mid_way_gives_the_same_bytes_as_folding_straight_through(
    start: SkuRow | None, log: list[ReservationCommand], cut: int
) -> None:
    # given the same log folded straight through, and stored and read back after `cut` commands
    cut = min(cut, len(log))
    straight = run(start, log)
    head = run(start, log[:cut])
    middle = head.rows[-1] if head.rows else start
    if middle is not None:
        middle = row_from_bytes(row_to_bytes(middle))
    tail = run(middle, log[cut:])
    # then the rows and the replies are the same
    if straight.rows:
        assert row_to_bytes(tail.rows[-1] if tail.rows else head.rows[-1]) == row_to_bytes(
            straight.rows[-1]
        )
    assert head.replies + tail.replies == straight.replies
    assert head.applied + tail.applied == straight.applied


@PROPERTY
@given(stocked_rows(), command_logs(max_size=MAX_ANSWERS))
def test_storing_after_every_command_gives_the_same_bytes_as_folding_straight_through(
    start: SkuRow | None, log: list[ReservationCommand]
) -> None:
    straight = run(start, log)
    stored = run(start, log, store=True)
    assert [row_to_bytes(r) for r in stored.rows] == [row_to_bytes(r) for r in straight.rows]
    assert stored.replies == straight.replies


@PROPERTY
@given(
    stocked_rows(),
    command_logs(min_size=MAX_ANSWERS + 12, max_size=MAX_ANSWERS + 24),
)
def test_storing_the_row_gives_the_same_bytes_past_the_answer_window(
    start: SkuRow | None, log: list[ReservationCommand]
) -> None:
    straight = run(start, log)
    stored = run(start, log, store=True)
    assert [row_to_bytes(r) for r in stored.rows] == [row_to_bytes(r) for r in straight.rows]
    assert stored.replies == straight.replies


# --- (d) conservation ---------------------------------------------------------------------


def assert_conserved(row: SkuRow, context: object) -> None:
    """Reserved units are exactly the holds' and order lines' lines; a hold is its lines."""
    held: Counter[str] = Counter()
    for hold in row.holds.values():
        assert sum(hold.allocation().values()) == hold.quantity, context
        held.update(hold.allocation())
    for loc in set(row.locations) | set(held):
        reserved = row.locations[loc].reserved if loc in row.locations else 0
        assert reserved == held[loc], (context, loc)


@PROPERTY
@given(stocked_rows(), command_logs())
def test_reserved_units_are_the_active_holds_plus_confirmed_order_lines(
    start: SkuRow | None, log: list[ReservationCommand]
) -> None:
    result = run(start, log)
    for step, row in enumerate(result.rows):
        assert_conserved(row, step)
        # and every line of a hold sits at a location of its channel
        for hold in row.holds.values():
            assert set(hold.allocation()) <= set(TOPOLOGY.channels[hold.channel].locations)
            assert hold.quantity > 0


@PROPERTY
@given(stocked_rows(), command_logs(min_size=4), st.lists(st.integers(0, 40), min_size=1))
def test_stock_arriving_between_commands_keeps_the_holds(
    start: SkuRow | None, log: list[ReservationCommand], arrivals: list[int]
) -> None:
    row = start
    for i, cmd in enumerate(log):
        row = apply_command(row, cmd, TOPOLOGY).row
        if i in arrivals:
            row = apply_event(row, ev(EventKind.RECEIVED, 1, loc="dc-1", sku=SKU), TOPOLOGY).row
        assert_conserved(row, i)
