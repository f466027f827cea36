"""What the HTTP API reads from the tables: a SKU's row, a page of its history, the answer to
a reservation request. Over the RowStore port, so it reads the worker's RocksDB and the memory
store alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from stocksync.codec.avro import decode
from stocksync.codec.reservations import reply_from_record
from stocksync.codec.rows import row_from_bytes
from stocksync.domain.reservations import ReservationReply
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology
from stocksync.service.admission import murmur2_partition
from stocksync.service.batch_fold import ANSWER_PREFIX, ENDED_PREFIX
from stocksync.service.channel_history import (
    ChannelHistoryPage,
    HistoryPosition,
    channel_history,
)
from stocksync.service.history import DEFAULT_PAGE, HistoryPage, HistoryRetention, read_history
from stocksync.service.listings import Position, SkuFilter, Slice, sku_slice
from stocksync.service.ports import RowStore, Table
from stocksync.service.reservation_listing import (
    Reservation,
    ReservationFilter,
    reservation_slice,
)


class TableQueries:
    def __init__(
        self,
        store: RowStore,
        partitions: int,
        retention: HistoryRetention,
        topology: Callable[[], Topology],
    ) -> None:
        self._store = store
        self._partitions = partitions
        self._retention = retention
        self.topology = topology

    def row(self, sku: str) -> SkuRow | None:
        key = sku.encode()
        stored = self._store.get(Table.ROWS, murmur2_partition(key, self._partitions), key)
        return row_from_bytes(stored) if stored is not None else None

    def history_of(
        self, sku: str, limit: int = DEFAULT_PAGE, before: int | None = None
    ) -> HistoryPage | None:
        """A page of the SKU's audit trail, newest first; None for an unknown SKU."""
        row = self.row(sku)
        if row is None:
            return None
        key = sku.encode()
        partition = murmur2_partition(key, self._partitions)
        return read_history(
            lambda k: self._store.get(Table.HISTORY, partition, k),
            key,
            row.revision,
            row.last_event_at,
            self._retention,
            self.topology(),
            limit,
            before,
        )

    def reservation_reply(self, request_id: str) -> ReservationReply | None:
        """The recorded answer to a request (a RESERVE's request id is its reservation id)."""
        return self._indexed(ANSWER_PREFIX + request_id.encode())

    def reservation_end(self, reservation_id: str) -> ReservationReply | None:
        """How a hold ended: confirmed, released or expired."""
        return self._indexed(ENDED_PREFIX + reservation_id.encode())

    def _indexed(self, key: bytes) -> ReservationReply | None:
        # index keys are request or reservation ids, not SKUs: any partition may hold one
        stored = self._store.find(Table.INDEX, key)
        return None if stored is None else reply_from_record(decode(stored)[1])

    # -- listings (api/listings.py): pages over the partitions this worker serves ------------

    def partition_count(self) -> int:
        return self._partitions

    def partition_of(self, sku: str) -> int:
        return murmur2_partition(sku.encode(), self._partitions)

    def sku_slice(
        self,
        partitions: Sequence[int],
        wanted: SkuFilter,
        after: Position | None,
        limit: int,
        budget: int,
    ) -> Slice[SkuRow]:
        return sku_slice(self._store, partitions, self.topology(), wanted, after, limit, budget)

    def reservation_slice(
        self,
        partitions: Sequence[int],
        wanted: ReservationFilter,
        after: Position | None,
        limit: int,
        budget: int,
    ) -> Slice[Reservation]:
        return reservation_slice(self._store, partitions, wanted, after, limit, budget)

    def channel_history(
        self, sku: str, channel: str, limit: int, after: HistoryPosition | None
    ) -> ChannelHistoryPage | None:
        """A page of what the channel was told for the SKU; None for an unknown SKU."""
        row = self.row(sku)
        if row is None or not row.locations:  # a refused reservation alone leaves a bare row
            return None
        partition = self.partition_of(sku)
        return channel_history(
            lambda k: self._store.get(Table.HISTORY, partition, k),
            row,
            self._retention,
            self.topology(),
            channel,
            limit,
            after,
        )
