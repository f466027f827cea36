"""The RowStore port over RocksDB (rocksdict): one database per table and partition, opened
and recovered by faust's table store; reads are point gets, writes are one write batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from rocksdict import Rdict, WriteBatch

from stocksync.service.ports import Table


class RocksRowStore:
    def __init__(self, databases: Mapping[Table, Callable[[int], Rdict]]) -> None:
        # (table) -> the database of a partition
        self._databases = databases

    def get(self, table: Table, partition: int, key: bytes) -> bytes | None:
        value = self._databases[table](partition).get(key)
        return None if value is None else bytes(value)

    def write(self, table: Table, partition: int, items: Iterable[tuple[bytes, bytes]]) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, value in items:
            batch.put(key, value)
        self._databases[table](partition).write(batch)
