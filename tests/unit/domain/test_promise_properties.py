"""The promise a published quantity makes, over generated topologies, stock and reservation
sequences: whatever stocksync last told a channel, a reservation of up to that many units
succeeds, its lines never take a location beyond its stock, and reserved units are exactly
the lines of the holds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from builders import SKU, ev
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.domain.events import EventKind
from stocksync.domain.fold import apply_event
from stocksync.domain.reservations import (
    CommandKind,
    ReplyStatus,
    ReservationCommand,
    apply_command,
)
from stocksync.domain.state import EMPTY_LOCATION, SkuRow, location_atp
from stocksync.domain.topology import Topology, parse_topology

PROPERTY = settings(max_examples=300, deadline=None)
LOCATIONS = ("l0", "l1", "l2", "l3", "l4")
STRANGER = "not-in-topology"
HELD_LINES: Counter[int] = Counter()  # holds by number of lines (see the last test)


@st.composite
def topologies(draw: st.DrawFn) -> Topology:
    """2-5 locations with safety stock, a group, 1-3 channels over random subsets of them with
    random buffers, caps and sourcing orders."""
    count = draw(st.integers(2, len(LOCATIONS)))
    locations = LOCATIONS[:count]
    grouped = draw(st.lists(st.sampled_from(locations), unique=True, max_size=count))
    data: dict[str, Any] = {
        "version": 1,
        "locations": {
            loc: {
                "safety_stock": draw(st.integers(0, 3)),
                "groups": ["grp"] if loc in grouped else [],
            }
            for loc in locations
        },
        "channels": {},
    }
    for i in range(draw(st.integers(1, 3))):
        sources = draw(st.lists(st.sampled_from(locations), unique=True, min_size=1))
        channel: dict[str, Any] = {
            "sources": sources,
            "policy": {
                "buffer_percent": draw(st.integers(0, 50)),
                "buffer_units": draw(st.integers(0, 3)),
                "cap": draw(st.one_of(st.none(), st.integers(0, 40))),
            },
        }
        if draw(st.booleans()):
            channel["sourcing"] = draw(st.permutations(sources))[
                : draw(st.integers(1, len(sources)))
            ]
        data["channels"][f"c{i}"] = channel
    return parse_topology(data)


@dataclass(frozen=True)
class Stock:
    kind: EventKind
    location: str
    quantity: int


@dataclass(frozen=True)
class Reserve:
    channel: int  # index into the topology's channels
    share: float  # of the published quantity: 1.0 is all of it
    partial: bool


@dataclass(frozen=True)
class Act:
    kind: CommandKind
    which: int  # index into the holds taken so far


STOCK_KINDS = (EventKind.RECEIVED, EventKind.RECEIVED, EventKind.SOLD, EventKind.ADJUSTED)
stock_steps = st.builds(
    Stock,
    st.sampled_from(STOCK_KINDS),
    st.sampled_from((*LOCATIONS, STRANGER)),
    st.integers(1, 30),
)
steps = st.one_of(
    stock_steps,
    st.builds(
        Reserve,
        st.integers(0, 2),
        st.one_of(st.just(1.0), st.floats(0.0, 1.0)),  # often all of it
        st.booleans(),
    ),
    st.builds(
        Act,
        st.sampled_from(
            (CommandKind.RELEASE, CommandKind.CONFIRM, CommandKind.CANCEL, CommandKind.EXPIRE)
        ),
        st.integers(0, 50),
    ),
)


def atp(row: SkuRow, topology: Topology, location: str) -> int:
    stock = row.locations.get(location, EMPTY_LOCATION)
    return location_atp(stock, topology.default_safety_stock(location))


def assert_lines_are_the_reserved_units(row: SkuRow, step: int) -> None:
    held: Counter[str] = Counter()
    for hold in row.holds.values():
        assert sum(hold.allocation().values()) == hold.quantity, step
        assert all(units > 0 for units in hold.allocation().values()), step
        held.update(hold.allocation())
    for loc, stock in row.locations.items():
        assert stock.reserved == held[loc], (step, loc)


@PROPERTY
@given(
    topologies(),
    st.lists(stock_steps, min_size=1, max_size=8),  # the stock to start from
    st.lists(steps, min_size=1, max_size=40),
)
def test_every_published_quantity_can_be_reserved_and_nothing_is_oversold(
    topology: Topology, start: list[Stock], plan: list[Stock | Reserve | Act]
) -> None:
    plan = [*start, *plan]
    row: SkuRow | None = None
    holds: list[str] = []
    channels = sorted(topology.channels)
    for step, action in enumerate(plan):
        at = (step + 1) * 1_000
        if isinstance(action, Stock):
            qty = action.quantity if action.kind is not EventKind.ADJUSTED else -action.quantity
            event = ev(action.kind, qty, loc=action.location, seq=step + 1, at=at)
            row = apply_event(row, event, topology).row
        elif isinstance(action, Reserve) and row is not None:
            channel = channels[action.channel % len(channels)]
            published = row.published.get(channel)
            if published is None:
                continue
            # nothing changed since it was published: the row's last word to the channel
            quantity = max(1, round(published.quantity * action.share))
            before = row
            rid = f"r{step}"
            result = apply_command(
                row,
                ReservationCommand(
                    rid,
                    CommandKind.RESERVE,
                    SKU,
                    rid,
                    at,
                    channel,
                    quantity,
                    None,
                    60_000,
                    action.partial,
                ),
                topology,
            )
            reply = result.reply
            assert reply is not None
            if quantity <= published.quantity:
                # the promise: what was published can be had, in one hold
                assert reply.status is ReplyStatus.HELD, (reply.reason, published)
                assert reply.quantity == quantity
                assert sum(reply.lines.values()) == quantity
                for loc, units in reply.lines.items():
                    assert loc in topology.channels[channel].locations
                    # no line takes more than the location could give, so no hold makes
                    # reserved exceed on hand less safety stock
                    assert units <= atp(before, topology, loc), (loc, units)
                    HELD_LINES[len(reply.lines)] += 1
                holds.append(rid)
            else:  # only when the published quantity is 0 (quantity is at least 1)
                assert published.quantity == 0
                if action.partial:
                    assert reply.status is ReplyStatus.REJECTED
            row = result.row
        elif isinstance(action, Act) and row is not None and holds:
            rid = holds[action.which % len(holds)]
            command = ReservationCommand(f"{action.kind}-{step}", action.kind, SKU, rid, at)
            row = apply_command(row, command, topology).row
        if row is not None:
            assert_lines_are_the_reserved_units(row, step)


def test_the_promise_was_tried_with_holds_of_one_and_of_several_lines() -> None:
    # (runs after the property in this module: it proves the property exercised both)
    if not HELD_LINES:
        test_every_published_quantity_can_be_reserved_and_nothing_is_oversold()
    assert HELD_LINES[1] > 0
    assert sum(count for lines, count in HELD_LINES.items() if lines > 1) > 0
