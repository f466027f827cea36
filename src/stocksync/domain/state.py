"""The ATP table's value: one row per SKU holding every location, so checks across locations
are atomic and single-writer. The dedupe state lives in the row it protects."""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct, field
from msgspec.structs import replace

from stocksync.domain.topology import Topology


# The row's pairs were plain tuples; both kinds below are stored as the same two-element arrays,
# so rows written before decode unchanged.
#
# A journal entry is a Struct, not a NamedTuple: a row holds up to MAX_JOURNAL of them per
# location, and the garbage collector never stops tracking a tuple subclass (it untracks plain
# tuples of ints), which made the fold measurably slower; gc=False keeps them out of its scans.
# order=True: the journal is sorted by time (then delta), as the tuples were.
class Movement(Struct, frozen=True, array_like=True, gc=False, order=True):
    """An on-hand movement remembered in a location's journal."""

    occurred_at: int  # event time, epoch ms
    delta: int  # signed change of on_hand


class Published(Struct, frozen=True, array_like=True, gc=False):
    """What a channel was last told: its quantity and the topology version it came from.
    (A Struct rather than a NamedTuple: the collector stops tracking it, as it does plain
    tuples of ints; stored as the same two-element array.)"""

    quantity: int
    version: int


# msgspec Structs: immutable values that are cheap to build and to encode, since one is read,
# replaced and written for every event. array_like keeps the stored rows small.
class LocationStock(Struct, frozen=True, array_like=True):
    on_hand: int = 0  # sellable units physically there; negative when more was sold than we knew of
    reserved: int = 0  # soft holds and open orders not yet shipped
    damaged: int = 0  # non-sellable units still on the books
    in_transit: int = 0  # units shipped out of here by a transfer and not yet received
    safety_stock: int | None = None  # None: the location's default from the topology
    oversold: int = 0  # units committed beyond stock, cumulative (the recorded shortfall)
    counted_at: int = -1  # event time of the last cycle count merged here (-1: none), epoch ms
    # on-hand movements newer than counted_at, oldest first: what a late-arriving count must add
    # on top of its absolute number
    journal: tuple[Movement, ...] = ()
    journal_floor: int = 0  # newest event time dropped from the journal; older counts can't merge

    def shortfall(self) -> int:
        """Units promised that the location does not have."""
        short = self.reserved - self.on_hand
        return short if short > 0 else 0  # (not max(): a call, twice per event folded)


EMPTY_LOCATION = LocationStock()


class HoldStatus(StrEnum):
    """Where a reservation is in its life (the state machine of domain/reservations.py)."""

    HELD = "HELD"  # a soft hold that expires unless confirmed
    CONFIRMED = "CONFIRMED"  # an open order line: never expires, ends fulfilled or cancelled


class Hold(Struct, frozen=True, array_like=True):
    """An accepted reservation, counted in its locations' reserved units while it is held and
    then, once confirmed, as an open order line until it is fulfilled or cancelled.

    A hold may span locations: `lines` maps each location to the units taken there, in the
    order the channel's sourcing rule chose them. Holds written before lines existed have
    none: all their units are at `location` (see `allocation`)."""

    channel: str
    location: str  # the first line's location
    quantity: int  # units reserved, all lines together (what was shipped included)
    expires_at: int  # epoch ms, from the requester's clock
    # units still held at each location (a line shrinks as a FULFILLED naming it ships)
    lines: dict[str, int] = field(default_factory=dict)
    status: HoldStatus = HoldStatus.HELD

    def allocation(self) -> dict[str, int]:
        """Units still held at each location."""
        return self.lines or {self.location: self.quantity}

    def shipped(self, location: str, units: int) -> Hold | None:
        """The hold after `units` of it left `location` (a FULFILLED naming it); None once
        every line has shipped. Units beyond the line's close the line and no more."""
        lines = self.allocation()
        if location not in lines:
            return self
        left = lines[location] - units
        if left > 0:
            lines[location] = left
        else:
            del lines[location]
        if not lines:
            return None
        return replace(self, lines=lines)


class CommandKind(StrEnum):
    RESERVE = "RESERVE"
    CONFIRM = "CONFIRM"
    RELEASE = "RELEASE"
    EXTEND = "EXTEND"
    EXPIRE = "EXPIRE"
    CANCEL = "CANCEL"  # a confirmed order line, before it is fulfilled


class ReplyStatus(StrEnum):
    HELD = "HELD"
    REJECTED = "REJECTED"
    CONFIRMED = "CONFIRMED"
    RELEASED = "RELEASED"
    EXTENDED = "EXTENDED"
    EXPIRED = "EXPIRED"
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    CANCELLED = "CANCELLED"
    FULFILLED = "FULFILLED"
    # the action is not one the reservation's state allows (release of a confirmed order line)
    WRONG_STATE = "WRONG_STATE"
    # the request id was first used for another request: nothing was decided
    KEY_REUSED = "KEY_REUSED"


class Answer(Struct, frozen=True, array_like=True):
    """The answer to a reservation command, as the row remembers it: a ReservationReply
    (domain/reservations.py) without its request id and SKU, which are the answer's key and
    the row's own. The reply's fields are declared here, so the row keeps every one of them.

    Stored as an array in field order: a field is only ever added at the end, with a default,
    so rows written before it still decode (and older code ignores the extra element)."""

    reservation_id: str
    kind: CommandKind
    status: ReplyStatus
    channel: str = ""
    location: str | None = None
    quantity: int = 0  # units held (RESERVE) or affected
    requested: int = 0
    available: int = 0  # what the channel could have had when the request was decided
    expires_at: int = 0
    reason: str = ""
    lines: dict[str, int] = field(default_factory=dict)  # units held at each location
    # the request this answers (domain/reservations.request_fingerprint): a request id used
    # again with another request is told so, never decided as a new one
    fingerprint: str = ""


class SkuRow(Struct, frozen=True, array_like=True):
    sku: str
    locations: dict[str, LocationStock] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)  # source -> highest seq applied
    published: dict[str, Published] = field(default_factory=dict)  # channel -> last told
    revision: int = 0  # events applied; orders the projections of this SKU
    last_event_at: int = 0  # highest occurred_at applied, epoch ms
    holds: dict[str, Hold] = field(default_factory=dict)  # reservation id -> active hold
    # request id -> the reply given, so a retried request gets the same answer (bounded)
    answers: dict[str, Answer] = field(default_factory=dict)
    # Log offset of the last command applied (a SKU's commands all live on one partition), so
    # a redelivery after a crash is recognised however many requests came since.
    command_offset: int = -1


def location_atp(stock: LocationStock, default_safety_stock: int) -> int:
    safety = default_safety_stock if stock.safety_stock is None else stock.safety_stock
    atp = stock.on_hand - stock.reserved - safety
    return atp if atp > 0 else 0  # (not max(): a call, for each location of each channel)


def location_atps(row: SkuRow, topology: Topology) -> dict[str, int]:
    return {
        loc: location_atp(stock, topology.default_safety_stock(loc))
        for loc, stock in row.locations.items()
    }


def channel_raw_atp(row: SkuRow, topology: Topology, channel: str) -> int:
    """Summed location ATP over the locations that may fulfil the channel, before its policy."""
    total = 0
    for loc in topology.channels[channel].locations:
        stock = row.locations.get(loc)
        if stock is not None:
            total += location_atp(stock, topology.default_safety_stock(loc))
    return total


def channel_atp(row: SkuRow, topology: Topology, channel: str) -> int:
    return topology.channels[channel].policy.apply(channel_raw_atp(row, topology, channel))
