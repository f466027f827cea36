"""Pages of the alerts topic, newest first, read on demand: the topic is the store.

A page is a merge of the topic's partitions from their ends down, by record timestamp (then
partition, then offset), a chunk of each partition read at a time. The cursor holds, per
partition, the range not yet gone through, [floor, end): `end` moves down past every record the
page went through, matching or not, so paging through yields each alert once whatever the
timestamps (a partition is always gone through in offset order). Work per page is bounded: it
stops once the page is full or `budget` records were gone through, and says where it is.

Alerts are keyed by SKU, so asking for one SKU reads its partition only.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from stocksync.codec.outputs import decode_alert
from stocksync.service.admission import murmur2_partition

log = structlog.get_logger("stocksync.alerts")

Ranges = dict[int, tuple[int, int]]  # partition -> [floor, end) still to go through
NO_OFFSET = -1  # offsets_at: no record at or after the time


@dataclass(frozen=True, slots=True)
class LoggedAlert:
    partition: int
    offset: int
    timestamp: int  # epoch ms (Kafka's record time)
    key: bytes | None
    type: str | None  # from the record's type header; None: decode to know
    value: bytes


class AlertLog(Protocol):
    """The alerts topic as a page needs it (adapters/kafka/alert_log.py)."""

    def bounds(self) -> dict[int, tuple[int, int]]:
        """partition -> (low, high) watermarks now."""
        ...

    def offsets_at(self, at_ms: int) -> dict[int, int]:
        """partition -> the first offset whose timestamp is at or after `at_ms` (NO_OFFSET:
        none is)."""
        ...

    def read(self, ranges: Mapping[int, tuple[int, int]]) -> dict[int, list[LoggedAlert]]:
        """The records of each partition's [start, end), in offset order."""
        ...


@dataclass(frozen=True, slots=True)
class AlertFilter:
    type: str | None = None
    sku: str | None = None
    channel: str | None = None  # only alerts about this channel (a channel key's scope)
    since: int | None = None  # epoch ms: records written at or after it


def first_ranges(alert_log: AlertLog, wanted: AlertFilter) -> Ranges:
    """What the first page goes through: every partition (the SKU's alone when one is asked
    for), from `since` (or the start) to the end now. Later pages take it from the cursor, so
    alerts written meanwhile do not shift them."""
    bounds = alert_log.bounds()
    if wanted.sku is not None and bounds:
        partition = murmur2_partition(wanted.sku.encode(), len(bounds))
        bounds = {partition: bounds[partition]} if partition in bounds else {}
    floors = alert_log.offsets_at(wanted.since) if wanted.since is not None else {}
    ranges: Ranges = {}
    for partition, (low, high) in bounds.items():
        floor = floors.get(partition, low)
        ranges[partition] = (high if floor == NO_OFFSET else max(low, floor), high)
    return ranges


def _matches(record: LoggedAlert, wanted: AlertFilter) -> dict[str, Any] | None:
    """The alert as the API shows it, if it is one the filter wants."""
    if wanted.type is not None and record.type is not None and record.type != wanted.type:
        return None  # told by its header: not even decoded
    if wanted.sku is not None and record.key is not None and record.key != wanted.sku.encode():
        return None
    try:
        alert = decode_alert(record.value)
    except Exception as exc:  # a record another writer got wrong is skipped, not fatal
        log.warning(
            "alert_undecodable", partition=record.partition, offset=record.offset, error=str(exc)
        )
        return None
    if (
        (wanted.type is not None and alert.get("type") != wanted.type)
        or (wanted.sku is not None and alert.get("sku") != wanted.sku)
        or (wanted.channel is not None and alert.get("channel") != wanted.channel)
    ):
        return None
    return {
        **alert,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
    }


@dataclass(slots=True)
class _Walk:
    """Partitions read downwards a chunk at a time, merged newest first."""

    alert_log: AlertLog
    ranges: Ranges
    chunk: int
    buffers: dict[int, list[LoggedAlert]] = field(default_factory=dict)  # offset order
    chunk_start: dict[int, int] = field(default_factory=dict)
    heap: list[tuple[int, int, int]] = field(default_factory=list)  # (-time, partition, -offset)
    to_read: set[int] = field(default_factory=set)
    reads: int = 0

    def __post_init__(self) -> None:
        self.to_read = {p for p, (floor, end) in self.ranges.items() if floor < end}

    def _push(self, partition: int) -> None:
        newest = self.buffers[partition][-1]
        heapq.heappush(self.heap, (-newest.timestamp, partition, -newest.offset))

    def fill(self) -> None:
        """Read the next chunk down of every partition whose read records are all gone
        through (one read for all of them), so the heap holds each partition's newest."""
        while self.to_read:
            wanted: dict[int, tuple[int, int]] = {}
            for partition in self.to_read:
                floor, end = self.ranges[partition]
                if floor < end:
                    wanted[partition] = (max(floor, end - self.chunk), end)
            self.to_read = set()
            if not wanted:
                return
            got = self.alert_log.read(wanted)
            self.reads += 1
            for partition, (start, end) in wanted.items():
                records = [r for r in got.get(partition, ()) if start <= r.offset < end]
                self.chunk_start[partition] = start
                if records:
                    self.buffers[partition] = records
                    self._push(partition)
                else:  # nothing kept there (or it was never written): further down
                    self.ranges[partition] = (self.ranges[partition][0], start)
                    self.to_read.add(partition)

    def take(self) -> LoggedAlert | None:
        """The newest record not gone through yet, now gone through; None at the end."""
        self.fill()
        if not self.heap:
            return None
        _, partition, _ = heapq.heappop(self.heap)
        buffer = self.buffers[partition]
        record = buffer.pop()
        floor = self.ranges[partition][0]
        if buffer:
            self.ranges[partition] = (floor, record.offset)
            self._push(partition)
        else:  # the whole chunk gone through, gaps included
            self.ranges[partition] = (floor, self.chunk_start[partition])
            self.to_read.add(partition)
        return record


@dataclass(frozen=True, slots=True)
class AlertPage:
    items: list[dict[str, Any]]
    remaining: Ranges | None  # the cursor's ranges; None: every record has been gone through
    scanned: int


def alert_page(
    alert_log: AlertLog,
    ranges: Ranges,
    wanted: AlertFilter,
    limit: int,
    chunk: int,
    budget: int,
) -> AlertPage:
    """The next page, newest first, from what `ranges` leaves to go through."""
    walk = _Walk(alert_log, dict(ranges), chunk)
    items: list[dict[str, Any]] = []
    scanned = 0
    while len(items) < limit and scanned < budget:
        record = walk.take()
        if record is None:
            break
        scanned += 1
        if (item := _matches(record, wanted)) is not None:
            items.append(item)
    left = {p: (floor, end) for p, (floor, end) in walk.ranges.items() if floor < end}
    return AlertPage(items, left or None, scanned)
