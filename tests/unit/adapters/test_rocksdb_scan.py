"""The RowStore's scan, over RocksDB (as faust opens the tables: raw mode) and the memory store
alike: one partition's keys from a start key on, in byte order, with their values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rocksdict import Options, Rdict

from stocksync.adapters.store.rocksdb import RocksRowStore
from stocksync.service.memory import MemoryRowStore
from stocksync.service.ports import RowStore, Table

ITEMS = [(b"SKU-B", b"b"), (b"SKU-A", b"a"), (b"SKU-\xc3\xa9", b"e"), (b"SKU-AA", b"aa")]


@pytest.fixture(params=["rocksdb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RowStore]:
    if request.param == "memory":
        memory = MemoryRowStore()
        memory.write(Table.ROWS, 0, ITEMS)
        yield memory
        return
    db = Rdict(str(tmp_path / "rows-0"), Options(raw_mode=True))
    try:
        rocks = RocksRowStore({Table.ROWS: {0: db}, Table.HISTORY: {}, Table.INDEX: {}})
        rocks.write(Table.ROWS, 0, ITEMS)
        yield rocks
    finally:
        db.close()


def test_a_scan_reads_every_key_in_byte_order(store: RowStore) -> None:
    assert list(store.scan(Table.ROWS, 0)) == sorted(ITEMS)


def test_a_scan_starts_at_its_start_key_or_the_next_one(store: RowStore) -> None:
    assert [k for k, _ in store.scan(Table.ROWS, 0, b"SKU-AA")] == [
        b"SKU-AA",
        b"SKU-B",
        b"SKU-\xc3\xa9",
    ]
    assert [k for k, _ in store.scan(Table.ROWS, 0, b"SKU-AB")] == [b"SKU-B", b"SKU-\xc3\xa9"]
    assert list(store.scan(Table.ROWS, 0, b"TZ")) == []


def test_a_partition_not_opened_here_scans_as_empty(store: RowStore) -> None:
    assert list(store.scan(Table.ROWS, 5)) == []
