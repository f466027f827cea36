"""Pure-fold microbenchmark: nanoseconds per event for each step the worker does per event
(Avro decode, row decode, fold, row encode), on one core, no Kafka.

    .venv/bin/python -m bench.fold_micro [--events 200000]
"""

from __future__ import annotations

import argparse
import gc
import random
import time

from bench.common import write_result
from stocksync.codec.events import decode_event, encode_event
from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.config import DEFAULT_TOPOLOGY, load_topology
from stocksync.domain.events import EventKind, InventoryEvent
from stocksync.domain.fold import apply_event
from stocksync.domain.state import SkuRow

KINDS = [EventKind.SOLD, EventKind.RESERVED, EventKind.FULFILLED, EventKind.RECEIVED]


def make_events(count: int, skus: int, seed: int) -> list[InventoryEvent]:
    rng = random.Random(seed)
    topology = load_topology(DEFAULT_TOPOLOGY)
    locations = sorted(topology.locations)
    events = []
    for i in range(count):
        kind = rng.choice(KINDS)
        events.append(
            InventoryEvent(
                event_id=f"e{i}",
                source=f"src-{i % 7}",
                source_seq=i,
                sku=f"SKU-{int(rng.paretovariate(1.1)) % skus}",
                location=rng.choice(locations),
                quantity=50 if kind is EventKind.RECEIVED else 1,
                occurred_at=1_700_000_000_000 + i,
                kind=kind,
            )
        )
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    topology = load_topology(DEFAULT_TOPOLOGY)
    events = make_events(args.events, args.skus, args.seed)
    payloads = [encode_event(e) for e in events]
    gc.collect()
    gc.freeze()

    started = time.perf_counter_ns()
    decoded = [decode_event(p) for p in payloads]
    decode_ns = (time.perf_counter_ns() - started) / len(payloads)

    # the worker's per-event path: row bytes -> row -> fold -> row bytes
    table: dict[str, bytes] = {}
    fold_ns = row_in_ns = row_out_ns = 0
    for event in decoded:
        t0 = time.perf_counter_ns()
        stored = table.get(event.sku)
        row: SkuRow | None = row_from_bytes(stored) if stored is not None else None
        t1 = time.perf_counter_ns()
        result = apply_event(row, event, topology)
        t2 = time.perf_counter_ns()
        table[event.sku] = row_to_bytes(result.row)
        t3 = time.perf_counter_ns()
        row_in_ns += t1 - t0
        fold_ns += t2 - t1
        row_out_ns += t3 - t2
    n = len(decoded)
    figures = {
        "avro_decode_ns": round(decode_ns),
        "row_decode_ns": round(row_in_ns / n),
        "fold_ns": round(fold_ns / n),
        "row_encode_ns": round(row_out_ns / n),
    }
    figures["total_ns"] = sum(figures.values())
    figures["ceiling_events_per_s"] = round(1e9 / figures["total_ns"])
    for key, value in figures.items():
        print(f"{key:24} {value:>12,}")
    write_result("fold_micro", figures, vars(args))


if __name__ == "__main__":
    main()
