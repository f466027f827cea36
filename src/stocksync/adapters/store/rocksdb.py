"""The RowStore port over RocksDB (rocksdict): one database per table and partition, opened,
recovered and closed by faust's table store as partitions are assigned and revoked; reads are
point gets, writes are one write batch. Also writes a replay's rows into a new database
(`stocksync replay --store`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from rocksdict import Rdict, WriteBatch

from stocksync.service.ports import Table


class RocksRowStore:
    def __init__(self, databases: Mapping[Table, Mapping[int, Rdict]]) -> None:
        # table -> {partition: its open database}, kept current by whoever opens them
        self._databases = databases

    def get(self, table: Table, partition: int, key: bytes) -> bytes | None:
        db = self._databases[table].get(partition)
        if db is None:  # not a partition of this worker: nothing is opened for a read
            return None
        value = db.get(key)
        return None if value is None else bytes(value)

    def find(self, table: Table, key: bytes) -> bytes | None:
        for db in list(self._databases[table].values()):
            value = db.get(key)
            if value is not None:
                return bytes(value)
        return None

    def write(self, table: Table, partition: int, items: Iterable[tuple[bytes, bytes]]) -> None:
        try:
            db = self._databases[table][partition]
        except KeyError:
            raise RuntimeError(
                f"a write to partition {partition} of the {table} table, which this worker has "
                f"not opened"
            ) from None
        batch = WriteBatch(raw_mode=True)
        for key, value in items:
            batch.put(key, value)
        db.write(batch)

    def scan(
        self, table: Table, partition: int, start: bytes = b""
    ) -> Iterator[tuple[bytes, bytes]]:
        db = self._databases[table].get(partition)
        if db is None:  # not a partition of this worker
            return
        # a RocksDB iterator reads a consistent view while the fold goes on writing
        for key, value in db.items(from_key=start):
            if isinstance(key, bytes) and isinstance(value, bytes):  # raw mode: always
                yield key, value


def write_rows(path: Path, rows: Mapping[str, bytes]) -> None:
    """Rows (SKU -> row bytes) into a new RocksDB database at `path`, in one write batch."""
    db = Rdict(str(path))
    try:
        batch = WriteBatch()
        for sku, value in rows.items():
            batch.put(sku.encode(), value)
        db.write(batch)
    finally:
        db.close()
