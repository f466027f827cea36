"""Recovery time per 1M SKU-locations from the changelog, warm restart, memory per SKU-location.

Writes --skus rows of --locations stocked locations each (the rows the fold makes: receipts,
a sale, a count window journal) straight into the ATP table's changelog topic, then:

  cold   a worker with an empty state folder rebuilds RocksDB from the changelog;
  warm   the same worker restarted on its own RocksDB files (only the changelog tail is read);
  empty  the baseline: a worker on an empty changelog (process start, imports, group join).

Recovery is cold minus warm (the same process start; the difference is rebuilding the
table), scaled to 1M SKU-locations. --faust-restore turns the worker's librdkafka bulk
restore off (STOCKSYNC_BULK_RESTORE=false) to measure faust's own restore. Memory: the
worker's RSS after the cold recovery minus the empty worker's RSS, and the RocksDB folder
on disk, per SKU-location.

    .venv/bin/python -m bench.recovery [--skus 250000 --locations 4]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import tempfile
import time
from pathlib import Path

from confluent_kafka import Producer

import tests.integration.support as support
from bench.common import progress, write_result
from bench.harness import broker, new_worker, rss_bytes
from stocksync.bootstrap import file_topology
from stocksync.channels.producer import REQUIRED_CONFIG
from stocksync.codec.rows import row_to_bytes
from stocksync.domain.events import EventKind, InventoryEvent
from stocksync.domain.fold import apply_event
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology
from stocksync.provision import ensure_topics


def sku_row(topology: Topology, sku: str, locations: list[str], rng: random.Random) -> SkuRow:
    """A typical row: stock received at each location, then POS or web sales there."""
    row: SkuRow | None = None
    now = int(time.time() * 1000) - rng.randrange(86_400_000)
    for i, loc in enumerate(locations):
        steps = ((EventKind.RECEIVED, rng.randrange(1, 500)), (EventKind.SOLD, rng.randrange(1, 5)))
        for j, (kind, qty) in enumerate(steps):
            event = InventoryEvent(
                event_id=f"{sku}-{i}-{j}",
                source="warehouse" if kind is EventKind.RECEIVED else "pos",
                source_seq=now + 2 * i + j,
                sku=sku,
                location=loc,
                quantity=qty,
                occurred_at=now + i,
                kind=kind,
            )
            row = apply_event(row, event, topology).row
    assert row is not None
    return row


def fill_changelog(
    bootstrap: str, topic: str, topology: Topology, locations: list[str], skus: int
) -> int:
    """Produce one row per SKU, partitioned exactly as the worker's table is (murmur2)."""
    rng = random.Random(7)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            **REQUIRED_CONFIG,
        }
    )
    size = 0
    for i in range(skus):
        sku = f"SKU-{i:07d}"
        value = row_to_bytes(sku_row(topology, sku, locations, rng))
        size += len(value)
        while True:
            try:
                producer.produce(topic, key=sku.encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 50_000 == 0:
            producer.poll(0)
            progress("changelog rows", i, skus)
    producer.flush(300)
    progress("changelog rows", skus, skus)
    return size


def timed_start(worker: support.WorkerProcess) -> float:
    started = time.monotonic()
    worker.start()
    return time.monotonic() - started


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skus", type=int, default=250_000)
    parser.add_argument("--locations", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--faust-restore", action="store_true", help="no bulk restore")
    args = parser.parse_args()
    if args.faust_restore:
        os.environ["STOCKSYNC_BULK_RESTORE"] = "false"
    support.READY_TIMEOUT = 900.0

    bootstrap = broker()
    home = Path(tempfile.mkdtemp(prefix="stocksync-recovery-"))

    empty = new_worker(bootstrap, home / "empty", args.partitions)
    empty_seconds = timed_start(empty)
    assert empty.process is not None
    empty_rss = rss_bytes(empty.process.pid)
    empty.stop(signal.SIGTERM)
    print(f"empty worker ready in {empty_seconds:.2f} s, RSS {empty_rss / 2**20:.0f} MiB")

    worker = new_worker(bootstrap, home / "full", args.partitions)
    settings = worker.settings
    ensure_topics(settings)
    topology = file_topology(settings)
    locations = sorted(topology.locations)[: args.locations]
    sku_locations = args.skus * len(locations)
    row_bytes = fill_changelog(
        bootstrap, settings.topics.atp_changelog, topology, locations, args.skus
    )

    cold_seconds = timed_start(worker)
    assert worker.process is not None
    rss = rss_bytes(worker.process.pid)
    worker.stop(signal.SIGTERM)
    disk = folder_bytes(settings.data_dir)
    print(f"cold recovery: ready in {cold_seconds:.2f} s")

    warm_seconds = timed_start(worker)
    worker.stop(signal.SIGTERM)
    print(f"warm restart: ready in {warm_seconds:.2f} s")

    recovery = max(0.0, cold_seconds - warm_seconds)
    figures = {
        "sku_locations": sku_locations,
        "rows": args.skus,
        "empty_start_seconds": round(empty_seconds, 2),
        "cold_start_seconds": round(cold_seconds, 2),
        "recovery_seconds": round(recovery, 2),
        "recovery_seconds_per_1m_sku_locations": round(recovery * 1_000_000 / sku_locations, 2),
        "warm_restart_seconds": round(warm_seconds, 2),
        "warm_restart_over_empty_seconds": round(max(0.0, warm_seconds - empty_seconds), 2),
        "row_bytes_per_sku_location": round(row_bytes / sku_locations, 1),
        "rss_bytes_per_sku_location": round((rss - empty_rss) / sku_locations, 1),
        "rocksdb_disk_bytes_per_sku_location": round(disk / sku_locations, 1),
    }
    for key, value in figures.items():
        print(f"{key:40} {value:>12,}")
    write_result("recovery.faust" if args.faust_restore else "recovery", figures, vars(args))


if __name__ == "__main__":
    main()
