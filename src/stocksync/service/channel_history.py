"""Every quantity published to one channel for one SKU, newest first, each with what caused it,
read from the SKU's audit trail (service/history.py): a record lists the channels its event
moved, from what to what, under which policy version.

Reservation commands also move channel quantities but leave no audit record. Where the
quantity a change started from is not the one the change before it ended at, a command moved it
in between; that change is listed too, as what it was (from, to, after which revision), with no
event. So the entries always chain. (A topology publish re-publishes every quantity without
touching the rows: the next event's entry says "policy version a -> b".)

Positions, newest first: (revision, 0) for the change an event made, (revision, 1) for an
unrecorded change after that revision. A SKU keeps a bounded number of records
(STOCKSYNC_HISTORY_PER_SKU), so a page reads at most that many.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from stocksync.domain.audit import AuditRecord, ChannelMove, audit_view
from stocksync.domain.state import Published, SkuRow
from stocksync.domain.topology import Topology
from stocksync.service.history import DAY_MS, HistoryRetention, decode_record, history_key

HistoryPosition = tuple[int, int]
EVENT, UNRECORDED = 0, 1


@dataclass(frozen=True, slots=True)
class ChannelHistoryPage:
    entries: list[dict[str, Any]]  # newest first
    next: HistoryPosition | None  # the last entry's position when older ones are kept


def kept_records(
    get: Callable[[bytes], bytes | None],
    sku_key: bytes,
    row: SkuRow,
    retention: HistoryRetention,
) -> Iterator[AuditRecord]:
    """The SKU's audit records newest first, as read_history walks them: a slot holding an
    older revision's record, or a record past the age limit, is not one."""
    oldest = max(1, row.revision - retention.per_sku + 1)
    horizon = row.last_event_at - retention.max_age_days * DAY_MS
    for revision in range(row.revision, oldest - 1, -1):
        stored = get(history_key(sku_key, revision, retention))
        record = decode_record(stored) if stored is not None else None
        if record is not None and record.revision == revision and record.occurred_at >= horizon:
            yield record


def _event_entry(
    record: AuditRecord, move: ChannelMove, channel: str, topology: Topology
) -> dict[str, Any]:
    return {
        "revision": record.revision,
        "quantity": move.after,
        "previous": move.before,
        "policy_version": move.version,
        "at": record.occurred_at,
        "event": {
            "event_id": record.event_id,
            "type": record.type,
            "source": record.source,
            "location": record.location,
            "counterpart_location": record.counterpart_location,
            "quantity": record.quantity,
            "reason": record.reason,
        },
        "why": audit_view(record, topology)["channels"][channel]["why"],
    }


def _unrecorded_entry(after_revision: int, previous: int, now: Published) -> dict[str, Any]:
    return {
        "revision": None,
        "quantity": now.quantity,
        "previous": previous,
        "policy_version": now.version,
        "at": None,
        "event": None,
        "after_revision": after_revision,
        "why": f"changed after revision {after_revision} by a reservation command (the audit "
        f"trail records stock and sale events only)",
    }


def channel_changes(
    records: Iterator[AuditRecord], row: SkuRow, channel: str, topology: Topology
) -> Iterator[tuple[HistoryPosition, dict[str, Any]]]:
    """(position, entry) of every change of the channel's quantity the records show, newest
    first, unrecorded changes between them included."""
    newer: Published | None = row.published.get(channel)  # what the next newer change left
    for record in records:
        move = next((m for m in record.channels if m.channel == channel), None)
        if move is None:
            continue
        if newer is not None and newer != Published(move.after, move.version):
            unrecorded = _unrecorded_entry(record.revision, move.after, newer)
            yield (record.revision, UNRECORDED), unrecorded
        yield (record.revision, EVENT), _event_entry(record, move, channel, topology)
        newer = (
            None
            if move.before is None or move.version_before is None
            else Published(move.before, move.version_before)
        )


def channel_history(
    get: Callable[[bytes], bytes | None],
    row: SkuRow,
    retention: HistoryRetention,
    topology: Topology,
    channel: str,
    limit: int,
    after: HistoryPosition | None,
) -> ChannelHistoryPage:
    """A page of the channel's quantities for the row's SKU after position `after`."""
    changes = channel_changes(
        kept_records(get, row.sku.encode(), row, retention), row, channel, topology
    )
    entries: list[dict[str, Any]] = []
    last: HistoryPosition | None = None
    for position, entry in changes:
        if after is not None and position >= after:
            continue
        if len(entries) == limit:
            return ChannelHistoryPage(entries, last)
        entries.append(entry)
        last = position
    return ChannelHistoryPage(entries, None)
