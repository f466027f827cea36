"""A broker and a worker process for the benchmarks (the same harness the integration tests
use), plus a fast bulk producer of pre-encoded events."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer

from bench.common import progress
from stocksync.channels.producer import REQUIRED_CONFIG
from stocksync.codec.events import encode_event
from stocksync.config import Settings
from stocksync.domain.events import STOCK_KINDS, EventKind, InventoryEvent
from stocksync.provision import admin_client
from tests.integration.support import WorkerProcess, unique_settings

REPO = Path(__file__).resolve().parents[1]
SALE_MIX = [EventKind.SOLD, EventKind.RESERVED, EventKind.FULFILLED, EventKind.RELEASED]
# BRIEF §4's reference input: the share of each kind, in percent.
REFERENCE_MIX: tuple[tuple[EventKind, int], ...] = (
    (EventKind.RECEIVED, 20),
    (EventKind.ADJUSTED, 10),
    (EventKind.SOLD, 45),
    (EventKind.RESERVED, 25),
)
ADJUSTMENTS = (-3, -2, -1, 1, 2, 3)  # ADJUSTED is a signed, non-zero delta


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
    """The old skewed input (`--input skewed`): Pareto(1.05)-popular SKUs, so about half of all
    events hit SKU-000000; receipts, POS sales, web orders and their fulfilment."""
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


def zipf_cum_weights(n: int, exponent: float) -> list[float]:
    """Cumulative weights of ranks 1..n with P(rank r) proportional to 1 / r**exponent."""
    return list(itertools.accumulate(1.0 / rank**exponent for rank in range(1, n + 1)))


def exact_mix(count: int, mix: Sequence[tuple[EventKind, int]]) -> list[EventKind]:
    """`count` kinds in exactly the given percentages (largest remainder), in log order."""
    total = sum(share for _, share in mix)
    counts = [count * share // total for _, share in mix]
    by_remainder = sorted(range(len(mix)), key=lambda i: count * mix[i][1] % total, reverse=True)
    for i in by_remainder[: count - sum(counts)]:
        counts[i] += 1
    return [kind for (kind, _), n in zip(mix, counts, strict=True) for _ in range(n)]


def reference_events(
    count: int,
    skus: int,
    locations: Sequence[str],
    seed: int,
    exponent: float = 1.0,
    mix: Sequence[tuple[EventKind, int]] = REFERENCE_MIX,
) -> list[InventoryEvent]:
    """BRIEF §4's reference input: SKU popularity Zipf(`exponent`) over `skus` SKUs (which SKU
    gets which rank is a seeded shuffle), locations uniform, kinds in exactly `mix`'s shares in
    a seeded random order. RECEIVED brings 100 units, ADJUSTED a small signed delta, SOLD and
    RESERVED one unit. Stock and sale events come from separate sources (one per topic), each
    with its own sequence 1, 2, 3, ..., so the fold applies every event: none is a duplicate."""
    rng = random.Random(seed)
    names = [f"SKU-{i:06d}" for i in range(skus)]
    rng.shuffle(names)  # names[rank - 1] is the SKU of popularity rank `rank`
    picked = rng.choices(names, cum_weights=zipf_cum_weights(skus, exponent), k=count)
    where = rng.choices(list(locations), k=count)
    kinds = exact_mix(count, mix)
    rng.shuffle(kinds)
    sources = {True: "bench-stock", False: "bench-sale"}
    seqs = {True: 0, False: 0}
    now = int(time.time() * 1000)
    out = []
    for i, (kind, sku, location) in enumerate(zip(kinds, picked, where, strict=True)):
        stock = kind in STOCK_KINDS
        seqs[stock] += 1
        if kind is EventKind.RECEIVED:
            quantity = 100
        elif kind is EventKind.ADJUSTED:
            quantity = rng.choice(ADJUSTMENTS)
        else:
            quantity = 1
        out.append(
            InventoryEvent(
                event_id=f"r{seed}-{i}",
                source=sources[stock],
                source_seq=seqs[stock],
                sku=sku,
                location=location,
                quantity=quantity,
                occurred_at=now + i,
                kind=kind,
            )
        )
    return out


def distinct_skus_per_window(events: Sequence[InventoryEvent], window: int = 1000) -> float:
    """Mean number of distinct SKUs in each run of `window` consecutive events (whole runs only;
    the one partial run if there are fewer events than `window`)."""
    starts = range(0, max(len(events) - window, 0) + 1, window)
    counts = [len({e.sku for e in events[start : start + window]}) for start in starts]
    return sum(counts) / len(counts) if counts else 0.0


def delete_topics(settings: Settings, timeout: float = 30.0) -> None:
    """Best effort: drop a finished run's topics (its own prefix and app id only) so the broker
    does not keep compacting them under the next run."""
    admin = admin_client(settings)
    try:
        names = [
            name
            for name in admin.list_topics(timeout=timeout).topics
            if name.startswith((settings.topic_prefix, settings.app_id))
        ]
        if names:
            for future in admin.delete_topics(names, operation_timeout=timeout).values():
                future.result()
    except Exception as exc:  # the figures are measured already; a leftover topic is harmless
        print(f"(could not delete the run's topics: {exc})")


def produce_all(settings: Settings, events: list[InventoryEvent], label: str = "producing") -> None:
    """Produce every event to its topic (stock or sale), keyed by SKU; raise unless the broker
    acknowledged all of them."""
    producer = Producer(
        {"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20, **REQUIRED_CONFIG}
    )
    failed: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failed.append(str(err))

    topics = settings.topics
    for i, event in enumerate(events, 1):
        topic = topics.stock_events if event.kind in STOCK_KINDS else topics.sale_events
        while True:
            try:
                producer.produce(
                    topic, key=event.sku.encode(), value=encode_event(event), on_delivery=delivered
                )
                break
            except BufferError:
                producer.poll(0.05)
        if i % 20_000 == 0:
            producer.poll(0)
            if i < len(events):
                progress(label, i, len(events))
    unsent = producer.flush(120)
    if failed or unsent:
        raise RuntimeError(
            f"{len(failed):,} events not delivered ({failed[0] if failed else ''}), "
            f"{unsent:,} still queued after 120 s"
        )
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
