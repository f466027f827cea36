"""The pure per-event path on one core, no Kafka, no RocksDB: BRIEF §4's reference input folded
by the worker's own `fold_batch` over the memory row store, in per-partition batches.

Input: `bench.harness.reference_events` over the locations of the worker topology
bench.worker_throughput's worker folds with, encoded to the wire bytes producers send and put on
their SKU's murmur2 partition. A batch holds records of one partition, `--batch` at most (what
one fetch of one partition gives the worker); the partitions take turns. The sink only counts
records, so the figure is the fold's CPU and nothing downstream of it: admission (Avro decode,
validation), the fold, the history record, the row codec, output encoding and fold_batch's own
bookkeeping.

The garbage collector runs with the worker's thresholds, everything built before the first
batch frozen (as the worker freezes its start-up).

Clock: process CPU time (user+sys, time.process_time) over fold_batch of every batch; each of
`--runs` runs folds the whole input into a fresh store and the median is the headline. A
breakdown pass then times each step alone, batch by batch, making the calls fold_batch makes
(bulk-timed, so timer overhead stays out); what the steps do not cover is fold_batch's own
bookkeeping, reported as the difference.

    .venv/bin/python -m bench.fold_micro [--events 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import RESULTS, write_result
from bench.harness import REFERENCE_MIX, reference_events
from bench.worker_throughput import describe_input
from stocksync.bootstrap import load_topology
from stocksync.codec.events import encode_event
from stocksync.codec.outputs import Headers, encode_alert, encode_projection
from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.domain.audit import audit_record
from stocksync.domain.effects import (
    Alert,
    ChannelQuantityChanged,
    CountNotMerged,
    OversellDetected,
    StockLevelCrossed,
)
from stocksync.domain.events import STOCK_KINDS, InventoryEvent
from stocksync.domain.fold import FoldResult, apply_event
from stocksync.domain.state import Published, SkuRow
from stocksync.domain.topology import Topology
from stocksync.service.admission import (
    AdmissionRules,
    admission_rules,
    admit,
    murmur2_partition,
)
from stocksync.service.batch_fold import FoldContext, fold_batch
from stocksync.service.history import encode_record
from stocksync.service.memory import MemoryRowStore
from stocksync.service.ports import Table
from stocksync.streams.worker import GC_THRESHOLDS
from stocksync.topics import TopicNames
from tests.integration.support import TOPOLOGY

NAME = "fold_micro"
CLOCK = (
    "process CPU time (user+sys) over fold_batch of every batch, one core, memory row store, "
    "a sink that only counts"
)
# The breakdown's steps, in the order fold_batch meets them.
STEPS = (
    "admit",  # Avro decode, record -> event, validation, key and partition checks
    "row_decode",  # stored bytes -> SkuRow, once per SKU and batch
    "fold",  # apply_event
    "audit_record",  # the history record of an applied event
    "history_encode",  # its msgpack bytes
    "projection_encode",  # Avro of each channel quantity published (once per batch)
    "alert_encode",  # Avro of each alert
    "row_encode",  # SkuRow -> bytes, once per SKU and batch
)
ALERTS = (OversellDetected, StockLevelCrossed, CountNotMerged)


@dataclass(frozen=True, slots=True)
class Record:
    """An input message as the worker reads it (the InputRecord port)."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes
    value: bytes


class CountingSink:
    """The OutputSink port, keeping nothing but counts."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.changelog: Counter[Table] = Counter()

    def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> None:
        self.sent[topic] += 1

    def send_changelog(self, table: Table, partition: int, key: bytes, value: bytes) -> None:
        self.changelog[table] += 1


@dataclass(frozen=True, slots=True)
class Run:
    run: int
    cpu_seconds: float
    wall_seconds: float
    events_per_cpu_second: int
    us_per_event: float


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--zipf-exponent", type=float, default=1.0, help="SKU popularity")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1_250, help="records per batch at most")
    parser.add_argument("--runs", type=int, default=3, help="each folds into a fresh store")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--no-breakdown", action="store_true", help="skip the per-step pass")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help=f"where {NAME}.json goes")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if min(args.events, args.skus, args.partitions, args.batch, args.runs) < 1:
        parser.error("--events, --skus, --partitions, --batch and --runs must be positive")
    return args


def fold_context(topology: Topology, partitions: int) -> FoldContext:
    """The fold's context as the worker builds it (streams/app.py)."""
    topics = TopicNames()
    return FoldContext(topology=topology, rules=admission_rules(topics, partitions), topics=topics)


def make_batches(
    events: Sequence[InventoryEvent], partitions: int, batch: int
) -> list[list[Record]]:
    """Wire records on their SKU's partition, cut into per-partition batches taking turns."""
    topics = TopicNames()
    logs: list[list[Record]] = [[] for _ in range(partitions)]
    for event in events:
        key = event.sku.encode()
        partition = murmur2_partition(key, partitions)
        log = logs[partition]
        topic = topics.stock_events if event.kind in STOCK_KINDS else topics.sale_events
        log.append(Record(topic, partition, len(log), event.occurred_at, key, encode_event(event)))
    turns = sorted(
        (start, partition, log[start : start + batch])
        for partition, log in enumerate(logs)
        for start in range(0, len(log), batch)
    )
    return [chunk for _start, _partition, chunk in turns]


def timed_run(
    index: int, batches: Sequence[Sequence[Record]], topology: Topology, partitions: int
) -> tuple[Run, FoldContext, CountingSink]:
    ctx = fold_context(topology, partitions)
    store = MemoryRowStore()
    sink = CountingSink()
    events = sum(len(batch) for batch in batches)
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        fold_batch(batch, ctx, store, sink)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    run = Run(
        run=index,
        cpu_seconds=round(cpu, 3),
        wall_seconds=round(wall, 3),
        events_per_cpu_second=round(events / cpu),
        us_per_event=round(cpu / events * 1e6, 2),
    )
    return run, ctx, sink


def breakdown(
    batches: Sequence[Sequence[Record]], topology: Topology, rules: AdmissionRules
) -> dict[str, float]:
    """Nanoseconds per input event of each step, timed alone batch by batch, with the calls
    and the coalescing fold_batch makes (each SKU's row read and written once per batch, a
    channel's quantity published once per batch unless it came back to where it was)."""
    spent = dict.fromkeys(STEPS, 0)
    clock = time.process_time_ns  # CPU, as the runs: other processes share this machine
    stored: dict[str, bytes] = {}
    total = 0
    for batch in batches:
        total += len(batch)
        t0 = clock()
        events = [admit(r.topic, r.partition, r.key, r.value, rules) for r in batch]
        t1 = clock()
        spent["admit"] += t1 - t0
        skus = list(dict.fromkeys(e.sku for e in events if isinstance(e, InventoryEvent)))
        known = [(sku, stored[sku]) for sku in skus if sku in stored]
        t0 = clock()
        rows: dict[str, SkuRow | None] = {sku: row_from_bytes(data) for sku, data in known}
        t1 = clock()
        spent["row_decode"] += t1 - t0
        initial = {sku: dict(row.published) for sku, row in rows.items() if row is not None}
        folded: list[tuple[SkuRow | None, InventoryEvent, FoldResult]] = []
        t0 = clock()
        for event in events:
            assert isinstance(event, InventoryEvent)  # the reference input has no commands
            before = rows.get(event.sku)
            result = apply_event(before, event, topology)
            rows[event.sku] = result.row
            folded.append((before, event, result))
        t1 = clock()
        spent["fold"] += t1 - t0
        applied = [(b, e, r) for b, e, r in folded if r.applied]
        t0 = clock()
        records = [audit_record(b, e, r.row, r.effects, topology) for b, e, r in applied]
        t1 = clock()
        for record in records:
            encode_record(record)
        t2 = clock()
        spent["audit_record"] += t1 - t0
        spent["history_encode"] += t2 - t1
        projections: dict[tuple[str, str], ChannelQuantityChanged] = {}
        alerts: list[tuple[Alert, int]] = []
        for _before, event, result in applied:
            for effect in result.effects:
                if isinstance(effect, ChannelQuantityChanged):
                    projections[(event.sku, effect.channel)] = effect
                elif isinstance(effect, ALERTS):
                    alerts.append((effect, result.row.revision))
        published = [
            change
            for (sku, channel), change in projections.items()
            if initial.get(sku, {}).get(channel)
            != Published(change.quantity, change.policy_version)
        ]
        t0 = clock()
        for change in published:
            encode_projection(change)
        t1 = clock()
        for alert, revision in alerts:
            encode_alert(alert, revision)
        t2 = clock()
        spent["projection_encode"] += t1 - t0
        spent["alert_encode"] += t2 - t1
        final = [(sku, row) for sku, row in rows.items() if row is not None]
        t0 = clock()
        written = [(sku, row_to_bytes(row)) for sku, row in final]
        t1 = clock()
        spent["row_encode"] += t1 - t0
        stored.update(written)
    return {step: spent[step] / total for step in STEPS}


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    topology = load_topology(TOPOLOGY)
    locations = sorted(topology.locations)
    events = reference_events(args.events, args.skus, locations, args.seed, args.zipf_exponent)
    shape = describe_input(events)
    batches = make_batches(events, args.partitions, args.batch)
    del events
    # The collector as the worker runs it (streams/worker.py): its thresholds, and everything
    # from start-up frozen. Here that includes the input, which the worker never holds whole:
    # left unfrozen, full collections walking it cost a third of the measured CPU.
    gc.set_threshold(*GC_THRESHOLDS)
    gc.collect()
    gc.freeze()
    mix = ", ".join(f"{n * 100:.0f}% {kind}" for kind, n in shape["mix"].items())
    print(
        f"input: {args.events:,} events, {args.skus:,} SKUs x {len(locations)} locations, "
        f"Zipf {args.zipf_exponent}; {mix}; {shape['distinct_skus_per_1000_events']} distinct "
        f"SKUs per 1,000 events; {len(batches)} batches of one of {args.partitions} partitions, "
        f"<= {args.batch:,} records each"
    )
    runs: list[Run] = []
    for index in range(1, args.runs + 1):
        run, ctx, sink = timed_run(index, batches, topology, args.partitions)
        runs.append(run)
        print(
            f"run {index}/{args.runs}: {run.us_per_event:.2f} µs per event, "
            f"{run.events_per_cpu_second:,} events per CPU-second ({run.cpu_seconds} s CPU, "
            f"{run.wall_seconds} s wall)"
        )
    if ctx.counters["applied"] != args.events:  # every reference event is new and valid
        raise SystemExit(f"the reference input was not all applied: {dict(ctx.counters)}")
    per_cpu = [r.events_per_cpu_second for r in runs]
    us = statistics.median(r.us_per_event for r in runs)
    outputs = {
        **{topic: round(n / args.events, 3) for topic, n in sorted(sink.sent.items())},
        **{
            f"changelog:{table.value}": round(n / args.events, 3)
            for table, n in sorted(sink.changelog.items())
        },
    }
    print(
        f"\nclock: {CLOCK}\nmedian {us:.2f} µs per event, {statistics.median(per_cpu):,.0f} "
        f"events per CPU-second (min-max {min(per_cpu):,}-{max(per_cpu):,} over {len(runs)} "
        f"run(s))\nrecords per event: {outputs}"
    )
    figures: dict[str, Any] = {
        "events": args.events,
        "input": {"name": "reference", **shape},
        "clock": CLOCK,
        "us_per_event": us,
        "events_per_cpu_second": round(statistics.median(per_cpu)),
        "events_per_cpu_second_min": min(per_cpu),
        "events_per_cpu_second_max": max(per_cpu),
        "records_per_event": outputs,
        "runs": [asdict(r) for r in runs],
    }
    if not args.no_breakdown:
        steps = breakdown(batches, topology, fold_context(topology, args.partitions).rules)
        steps["fold_batch_other"] = us * 1000 - sum(steps.values())
        figures["steps_ns"] = {step: round(ns) for step, ns in steps.items()}
        print("\nper event, each step timed alone (ns):")
        for step, ns in figures["steps_ns"].items():
            print(f"  {step:20} {ns:>8,}")
    if args.no_write:
        return
    params: dict[str, Any] = {
        "input": "reference",
        "events": args.events,
        "skus": args.skus,
        "locations": len(locations),
        "partitions": args.partitions,
        "batch": args.batch,
        "runs": args.runs,
        "seed": args.seed,
        "zipf_exponent": args.zipf_exponent,
        "mix_percent": {kind.value: share for kind, share in REFERENCE_MIX},
    }
    write_result(NAME, figures, params, args.results_dir)


if __name__ == "__main__":
    main()
