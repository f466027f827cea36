"""What the HTTP API reads from the tables: a SKU's row, a page of its history, the answer to
a reservation request. Over the RowStore port, so it reads the worker's RocksDB and the memory
store alike."""

from __future__ import annotations

from collections.abc import Callable

from stocksync.codec.avro import decode
from stocksync.codec.reservations import reply_from_record
from stocksync.codec.rows import row_from_bytes
from stocksync.domain.reservations import ReservationReply
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology
from stocksync.service.admission import murmur2_partition
from stocksync.service.batch_fold import ANSWER_PREFIX, ENDED_PREFIX
from stocksync.service.history import DEFAULT_PAGE, HistoryPage, HistoryRetention, read_history
from stocksync.service.ports import RowStore, Table


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
