"""Reservations listed from the tables: held and confirmed ones from the rows' holds, ended
ones (released, expired, cancelled, fulfilled) from the reservation index's `ended:` entries.

One order over both, so pages can be merged across workers (service/listings.py): first the
live reservations by SKU, then reservation id; then the ended ones by reservation id.
Positions are ("0", sku, reservation id) and ("1", reservation id, "").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from stocksync.codec.avro import decode
from stocksync.codec.reservations import reply_from_record
from stocksync.domain.reservations import ReplyStatus, ReservationReply
from stocksync.domain.state import Hold, HoldStatus
from stocksync.service.batch_fold import ENDED_PREFIX
from stocksync.service.listings import Position, Slice, read_row, scan_partitions
from stocksync.service.ports import RowStore, Table

LIVE, ENDED = "0", "1"
# after every reservation id of a row: the position of a row read to its end
AFTER_EVERY_ID = "\U0010ffff"
LIVE_STATUSES = {"held": HoldStatus.HELD, "confirmed": HoldStatus.CONFIRMED}
ENDED_STATUSES = {
    "confirmed": ReplyStatus.CONFIRMED,  # a confirmed hold a row written before kept no more
    "released": ReplyStatus.RELEASED,
    "expired": ReplyStatus.EXPIRED,
    "cancelled": ReplyStatus.CANCELLED,
    "fulfilled": ReplyStatus.FULFILLED,
}
STATUSES = ("held", "confirmed", "released", "expired", "cancelled", "fulfilled")


@dataclass(frozen=True, slots=True)
class LiveReservation:
    reservation_id: str
    sku: str
    hold: Hold


Reservation = LiveReservation | ReservationReply


@dataclass(frozen=True, slots=True)
class ReservationFilter:
    channel: str | None = None
    sku: str | None = None
    status: str | None = None  # one of STATUSES


@dataclass(slots=True)
class _Gathered:
    limit: int
    budget: int
    items: list[tuple[Position, Reservation]] = field(default_factory=list)
    scanned: int = 0

    @property
    def full(self) -> bool:
        return len(self.items) >= self.limit


def reservation_slice(
    store: RowStore,
    partitions: Sequence[int],
    wanted: ReservationFilter,
    after: Position | None,
    limit: int,
    budget: int,
) -> Slice[Reservation]:
    gathered = _Gathered(limit, budget)
    done = tuple(partitions)
    if after is None or after[0] == LIVE:
        if wanted.status is None or wanted.status in LIVE_STATUSES:
            stop = _live(store, partitions, wanted, after, gathered)
            if stop is not None:
                return Slice(gathered.items, stop, done)
        after = None  # every live one seen: the ended ones from their start
    if wanted.status is None or wanted.status in ENDED_STATUSES:
        stop = _ended(store, partitions, wanted, after, gathered)
        return Slice(gathered.items, stop, done)
    return Slice(gathered.items, None, done)


def _live(
    store: RowStore,
    partitions: Sequence[int],
    wanted: ReservationFilter,
    after: Position | None,
    gathered: _Gathered,
) -> Position | None:
    """Holds from the rows after `after`; the position where it stopped (page full or budget
    spent), None when every row was read."""
    after_sku, after_id = (after[1], after[2]) if after is not None else ("", "")
    start = max(after_sku, wanted.sku or "")
    status = LIVE_STATUSES.get(wanted.status or "")
    last: Position | None = after
    for key, _partition, value in scan_partitions(store, Table.ROWS, partitions, start.encode()):
        sku = key.decode()
        if wanted.sku is not None and sku != wanted.sku:
            return None
        if sku == after_sku and after_id == AFTER_EVERY_ID:
            continue  # read to its end by the page before
        if gathered.scanned >= gathered.budget and last is not None:
            return last
        gathered.scanned += 1
        row = read_row(key, value)
        holds = row.holds if row is not None else {}
        for reservation_id in sorted(holds):
            if sku == after_sku and reservation_id <= after_id:
                continue
            hold = holds[reservation_id]
            if (status is not None and hold.status is not status) or (
                wanted.channel is not None and hold.channel != wanted.channel
            ):
                continue
            gathered.items.append(
                ((LIVE, sku, reservation_id), LiveReservation(reservation_id, sku, hold))
            )
            if gathered.full:
                return (LIVE, sku, reservation_id)
        last = (LIVE, sku, AFTER_EVERY_ID)
    return None


def _ended(
    store: RowStore,
    partitions: Sequence[int],
    wanted: ReservationFilter,
    after: Position | None,
    gathered: _Gathered,
) -> Position | None:
    """Ended reservations from the index after `after`; where it stopped, None at the end."""
    after_id = after[1] if after is not None else ""
    status = ENDED_STATUSES.get(wanted.status or "")
    # where the live ones ended: a budget spent on them covers them all, and nothing ended
    last: Position = after if after is not None else (ENDED, "", "")
    start = ENDED_PREFIX + after_id.encode()
    for key, partition, value in scan_partitions(store, Table.INDEX, partitions, start):
        if not key.startswith(ENDED_PREFIX):
            return None
        reservation_id = key[len(ENDED_PREFIX) :].decode()
        if reservation_id == after_id:
            continue
        if gathered.scanned >= gathered.budget:
            return last
        gathered.scanned += 1
        last = (ENDED, reservation_id, "")
        reply = reply_from_record(decode(value)[1])
        if (
            (status is not None and reply.status is not status)
            or (wanted.channel is not None and reply.channel != wanted.channel)
            or (wanted.sku is not None and reply.sku != wanted.sku)
            or (reply.status is ReplyStatus.CONFIRMED and _still_held(store, partition, reply))
        ):
            continue
        gathered.items.append((last, reply))
        if gathered.full:
            return last
    return None


def _still_held(store: RowStore, partition: int, reply: ReservationReply) -> bool:
    """A confirmed reservation the row still holds is live, and listed from the row (the index
    marks every confirmation; its row's partition is the index entry's)."""
    key = reply.sku.encode()
    stored = store.get(Table.ROWS, partition, key)
    row = read_row(key, stored) if stored is not None else None
    return row is not None and reply.reservation_id in row.holds
