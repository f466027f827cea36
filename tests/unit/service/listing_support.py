"""What the listing tests share: tables with SKUs and reservations folded in by the real batch
fold over the memory adapters, and a reader over them as the worker's (TableQueries)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from builders import command, ev, reserve

from stocksync.domain.events import EventKind as K
from stocksync.domain.topology import Topology
from stocksync.service.history import HistoryPage
from stocksync.service.queries import TableQueries

from .support import PARTITIONS, InputLog, Tables

# what happens to a reservation after it is held, and the commands that do it
FATES: dict[str, tuple[str, ...]] = {
    "held": (),
    "confirmed": ("CONFIRM",),
    "released": ("RELEASE",),
    "cancelled": ("CONFIRM", "CANCEL"),
    "expired": ("EXPIRE",),
}
EXPIRED_AT = 10**9  # after every test hold's expiry


@dataclass
class ListingTables:
    """The worker's tables with an input log to fold more into."""

    tables: Tables
    log: InputLog

    @classmethod
    def stocked(cls, skus: dict[str, int], location: str = "dc-1") -> ListingTables:
        """Each SKU received `units` at `location`, in one batch."""
        built = cls(Tables(), InputLog())
        built.tables.fold(
            *(
                built.log.event(ev(K.RECEIVED, units, loc=location, sku=sku))
                for sku, units in skus.items()
            )
        )
        return built

    def reservation(
        self, sku: str, rid: str, fate: str, channel: str = "web", qty: int = 1
    ) -> None:
        """A reservation held on `sku` and taken to `fate` (FATES)."""
        records = [self.log.command(reserve(qty, rid, channel=channel, sku=sku))]
        for kind in FATES[fate]:
            at = EXPIRED_AT if kind == "EXPIRE" else 0
            records.append(self.log.command(command(kind, rid, sku=sku, at=at)))
        self.tables.fold(*records)

    def reader(self, served: Sequence[int] | None = None) -> MemoryReader:
        return MemoryReader(self.tables, served)


class MemoryReader:
    """The AtpReader and ListingReader the worker's HTTP service builds (WorkerReader), over
    the memory tables; `served`: the partitions this worker serves (None: all); `moving`: they
    are being assigned, so none is served."""

    def __init__(
        self, tables: Tables, served: Sequence[int] | None = None, moving: bool = False
    ) -> None:
        self.tables = tables
        queries = TableQueries(
            tables.store, PARTITIONS, tables.ctx.retention, lambda: tables.ctx.topology
        )
        self.queries = queries
        self.row = queries.row
        self.partition_count = queries.partition_count
        self.partition_of = queries.partition_of
        self.sku_slice = queries.sku_slice
        self.reservation_slice = queries.reservation_slice
        self.channel_history = queries.channel_history
        self.served: list[int] | None = list(range(PARTITIONS) if served is None else served)
        if moving:
            self.served = None

    def topology(self) -> Topology:
        return self.tables.ctx.topology

    def history_of(
        self, sku: str, limit: int = 20, before: int | None = None
    ) -> HistoryPage | None:
        return self.queries.history_of(sku, limit, before)

    def health(self) -> dict[str, Any]:
        return {"ready": True}

    def served_partitions(self) -> list[int] | None:
        return self.served

    def serves(self, sku: str) -> bool:
        return self.served is not None and self.partition_of(sku) in self.served


def split(partitions: Iterable[int], workers: int) -> list[list[int]]:
    """The partitions dealt round-robin to `workers` workers."""
    hands: list[list[int]] = [[] for _ in range(workers)]
    for i, partition in enumerate(partitions):
        hands[i % workers].append(partition)
    return hands
