"""Listings over the tables, a page at a time, merged across workers.

Each worker holds some partitions of every table. A listing asks each worker for a slice: its
next `limit` matching items after the cursor's position, in one total order, and how far it
looked (`covered`). Pages are exact because the merge keeps only items up to the lowest
`covered` of all slices: nothing a worker has not looked at yet can fall between two items of
the page. A worker also stops after a scan budget (rows read), so a filter that matches
little cannot make one request read a whole table: its slice then covers what it read, and the
page may hold fewer than `limit` items with a cursor to go on from.

Positions are tuples of strings compared as Python compares them, which for SKUs is the
stores' byte order of their UTF-8 keys.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

from stocksync.codec.rows import row_from_bytes
from stocksync.domain.state import SkuRow, channel_atp
from stocksync.domain.topology import Topology
from stocksync.service.ports import RowStore, Table

log = structlog.get_logger("stocksync.listings")

T = TypeVar("T")
Position = tuple[str, ...]

# faust keeps its own keys (the offset of each changelog partition) in the tables' stores
FAUST_INTERNAL_KEY_PREFIX = b"__faust"


@dataclass(frozen=True, slots=True)
class Slice(Generic[T]):
    """One worker's part of a page: its matching items after the position asked for, in
    order, at most `limit`; every match it holds up to `covered` is among them (None: up to
    the end). `partitions`: what it looked through."""

    items: list[tuple[Position, T]]
    covered: Position | None
    partitions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next: Position | None  # where the next page starts (after it); None: nothing more


def merge_slices(slices: Iterable[Slice[T]], limit: int) -> Page[T]:
    """The page the slices of every worker make together (see the module's docstring)."""
    slices = list(slices)
    bounds = [s.covered for s in slices if s.covered is not None]
    horizon = min(bounds) if bounds else None
    found = sorted(
        (item for s in slices for item in s.items if horizon is None or item[0] <= horizon),
        key=lambda item: item[0],
    )
    if len(found) >= limit:
        taken = found[:limit]
        return Page([value for _, value in taken], taken[-1][0])
    return Page([value for _, value in found], horizon)


def _tagged(
    items: Iterator[tuple[bytes, bytes]], partition: int
) -> Iterator[tuple[bytes, int, bytes]]:
    for key, value in items:
        yield key, partition, value


def scan_partitions(
    store: RowStore, table: Table, partitions: Sequence[int], start: bytes
) -> Iterator[tuple[bytes, int, bytes]]:
    """(key, partition, value) from `start` on over the partitions, in one key order; faust's
    internal keys left out."""
    merged = heapq.merge(
        *(_tagged(store.scan(table, p, start), p) for p in partitions), key=lambda t: t[0]
    )
    for key, partition, value in merged:
        if not key.startswith(FAUST_INTERNAL_KEY_PREFIX):
            yield key, partition, value


def read_row(key: bytes, value: bytes) -> SkuRow | None:
    """A stored row; None (and logged) for one that cannot be read, which a listing skips
    rather than failing every page that reaches it."""
    try:
        return row_from_bytes(value)
    except ValueError as exc:
        log.error("row_unreadable", key=key.decode(errors="replace"), error=str(exc))
        return None


@dataclass(frozen=True, slots=True)
class SkuFilter:
    prefix: str = ""
    below_atp: int | None = None  # only SKUs whose quantity for `channel` is below this
    channel: str | None = None


def sku_slice(
    store: RowStore,
    partitions: Sequence[int],
    topology: Topology,
    wanted: SkuFilter,
    after: Position | None,
    limit: int,
    budget: int,
) -> Slice[SkuRow]:
    """The known SKUs of these partitions after `after`, in key order, that match."""
    prefix = wanted.prefix.encode()
    after_key = after[0].encode() if after is not None else None
    start = max(prefix, after_key) if after_key is not None else prefix
    items: list[tuple[Position, SkuRow]] = []
    covered: Position | None = after
    scanned = 0
    done = tuple(partitions)
    for key, _partition, value in scan_partitions(store, Table.ROWS, partitions, start):
        if not key.startswith(prefix):
            return Slice(items, None, done)  # past the prefix: every match has been seen
        if key == after_key:
            continue
        if scanned >= budget:
            return Slice(items, covered, done)
        scanned += 1
        sku = key.decode()
        covered = (sku,)
        row = read_row(key, value)
        # a refused reservation alone leaves a bare row: the SKU is still unknown
        if row is None or not row.locations:
            continue
        if (
            wanted.below_atp is not None
            and wanted.channel is not None
            and channel_atp(row, topology, wanted.channel) >= wanted.below_atp
        ):
            continue
        items.append((covered, row))
        if len(items) >= limit:
            return Slice(items, covered, done)
    return Slice(items, None, done)
