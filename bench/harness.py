"""A broker and a worker process for the benchmarks (the same harness the integration tests
use), plus a fast bulk producer of pre-encoded events."""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

from confluent_kafka import Producer

from bench.common import progress
from stocksync.channels.producer import REQUIRED_CONFIG
from stocksync.codec.events import encode_event
from stocksync.config import Settings
from stocksync.domain.events import STOCK_KINDS, EventKind, InventoryEvent
from tests.integration.support import WorkerProcess, unique_settings

REPO = Path(__file__).resolve().parents[1]
SALE_MIX = [EventKind.SOLD, EventKind.RESERVED, EventKind.FULFILLED, EventKind.RELEASED]


def broker() -> str:
    """STOCKSYNC_BENCH_BOOTSTRAP, else the project's launcher on port 29192."""
    given = os.environ.get("STOCKSYNC_BENCH_BOOTSTRAP")
    if given:
        return given
    port = os.environ.get("STOCKSYNC_BENCH_KAFKA_PORT", "29192")
    env = {**os.environ, "STOCKSYNC_KAFKA_PORT": port}
    subprocess.run(["bash", str(REPO / "deploy/kafka/kafka.sh"), "start"], check=True, env=env)
    return f"127.0.0.1:{port}"


def new_worker(bootstrap: str, home: Path, partitions: int = 4) -> WorkerProcess:
    home.mkdir(parents=True, exist_ok=True)
    settings = unique_settings(bootstrap, home / "state", partitions=partitions)
    return WorkerProcess(settings, home / "worker.log")


def retail_events(count: int, skus: int, locations: list[str], seed: int) -> list[InventoryEvent]:
    """A Zipf-popular mix: receipts, POS sales, web orders and their fulfilment."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    out = []
    for i in range(count):
        kind = EventKind.RECEIVED if i % 10 == 0 else rng.choice(SALE_MIX)
        out.append(
            InventoryEvent(
                event_id=f"b{seed}-{i}",
                source=f"bench-{kind in STOCK_KINDS}",
                source_seq=i + 1,
                sku=f"SKU-{min(int(rng.paretovariate(1.05)), skus) - 1:06d}",
                location=rng.choice(locations),
                quantity=100 if kind is EventKind.RECEIVED else 1,
                occurred_at=now + i,
                kind=kind,
            )
        )
    return out


def produce_all(settings: Settings, events: list[InventoryEvent], label: str = "producing") -> None:
    producer = Producer(
        {"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20, **REQUIRED_CONFIG}
    )
    topics = settings.topics
    for i, event in enumerate(events, 1):
        topic = topics.stock_events if event.kind in STOCK_KINDS else topics.sale_events
        while True:
            try:
                producer.produce(topic, key=event.sku.encode(), value=encode_event(event))
                break
            except BufferError:
                producer.poll(0.05)
        if i % 20_000 == 0:
            producer.poll(0)
            progress(label, i, len(events))
    producer.flush(120)
    progress(label, len(events), len(events))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0
