"""A replay's rows written to a new RocksDB database (`stocksync replay --store`)."""

from __future__ import annotations

from pathlib import Path

from rocksdict import Rdict

from stocksync.adapters.store.rocksdb import write_rows


def test_the_rows_written_are_the_rows_read_back(tmp_path: Path) -> None:
    rows = {"SKU-1": b"\x01row-one", "SKU-\u00e9": b"", "SKU-3": bytes(range(256))}
    write_rows(tmp_path / "store", rows)
    db = Rdict(str(tmp_path / "store"))
    try:
        read = {
            key.decode(): value
            for key, value in db.items()
            if isinstance(key, bytes) and isinstance(value, bytes)
        }
    finally:
        db.close()
    # rocksdict keeps the type of what it stored: bytes keys and values come back as bytes
    assert read == rows
