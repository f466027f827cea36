"""Sustained fold throughput of one real worker process on a real broker.

Pre-produces the input, starts a worker on it, and measures how fast it folds it: events per
CPU-second of the worker process (user+sys) and events/s of wall time, both over the folding
window only: from the first folded event (the worker's health shows applied+duplicates > 0) to
the last, so the worker's start-up, group join and recovery are not counted.

The default input is BRIEF §4's reference: 200k events, 10k SKUs x the topology's locations,
SKU popularity Zipf with exponent 1.0, 20% RECEIVED / 10% ADJUSTED / 45% SOLD / 25% RESERVED,
4 partitions. `--input skewed` is the older input where about half of all events hit one SKU
(it flatters a per-SKU batch; not the headline figure). Each of `--runs` runs gets a fresh worker
and fresh topics; the result file holds the median and every run.

    .venv/bin/python -m bench.worker_throughput --runs 3
    .venv/bin/python -m bench.worker_throughput --input skewed --events 20000
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import RESULTS, progress, write_result
from bench.harness import (
    REFERENCE_MIX,
    broker,
    cpu_seconds,
    delete_topics,
    distinct_skus_per_window,
    new_worker,
    produce_all,
    reference_events,
    retail_events,
)
from stocksync.bootstrap import file_topology
from stocksync.domain.events import InventoryEvent
from stocksync.provision import ensure_topics
from tests.integration.support import WorkerProcess

NAME = "worker_throughput"
INPUTS = ("reference", "skewed")
CLOCK = (
    "worker CPU (user+sys, /proc/<pid>/stat) and wall time from the first folded event "
    "(health applied+duplicates > 0) to the last; worker start-up, group join and recovery "
    "are not counted"
)
POLL_SECONDS = 0.1  # the folding window's ends are known to within this
FIRST_POLL_SECONDS = 0.02
STALL_SECONDS = 120.0  # no progress for this long: the worker is stuck, stop with its log


@dataclass(frozen=True, slots=True)
class Run:
    run: int
    events_timed: int  # folded inside the window
    events_before_clock: int  # already folded when the first progress was seen
    worker_ready_seconds: float  # process start to /readyz, not counted
    wall_seconds: float
    worker_cpu_seconds: float
    events_per_second: int
    events_per_cpu_second: int
    duplicates: int
    dead_lettered: int


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", choices=INPUTS, default="reference")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument(
        "--zipf-exponent", type=float, default=1.0, help="SKU popularity (reference input)"
    )
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1, help="fresh worker and topics each")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help=f"where {NAME}.json goes")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.events < 1 or args.skus < 1 or args.runs < 1 or args.partitions < 1:
        parser.error("--events, --skus, --runs and --partitions must be positive")
    return args


def make_input(args: argparse.Namespace, locations: list[str]) -> list[InventoryEvent]:
    if args.input == "skewed":
        return retail_events(args.events, args.skus, locations, args.seed)
    return reference_events(args.events, args.skus, locations, args.seed, args.zipf_exponent)


def describe_input(events: Sequence[InventoryEvent]) -> dict[str, Any]:
    total = len(events)
    kinds = Counter(e.kind.value for e in events)
    skus = Counter(e.sku for e in events)
    return {
        "distinct_skus_per_1000_events": round(distinct_skus_per_window(events, 1000), 1),
        "skus_touched": len(skus),
        "sku_locations_touched": len({(e.sku, e.location) for e in events}),
        "top_sku_share": round(skus.most_common(1)[0][1] / total, 4),
        "mix": {kind: round(n / total, 4) for kind, n in kinds.most_common()},
    }


def counters(health: dict[str, Any]) -> tuple[int, int, int]:
    """(folded, duplicates, dead-lettered): folded counts every event the worker is done with."""
    applied = int(health.get("applied", 0))
    duplicates = int(health.get("duplicates", 0))
    dead = int(health.get("dead_lettered", 0))
    return applied + duplicates + dead, duplicates, dead


def fold_window(worker: WorkerProcess, total: int, index: int, runs: int) -> Run:
    """Start the worker on the pre-produced input; time it from first progress to the end."""
    started = time.monotonic()
    worker.start()
    ready = time.monotonic() - started
    process = worker.process
    assert process is not None
    pid = process.pid

    def alive() -> None:
        if process.poll() is not None:
            raise RuntimeError(
                f"worker exited with {process.returncode}:\n{worker.tail()}\n"
                f"(log: {worker.log_path})"
            )

    label = f"run {index}/{runs} folding"
    done = 0
    last_change = time.monotonic()
    while True:  # wait for the first folded event, then start the clocks
        health = worker.health() or {}
        done, duplicates, dead = counters(health)
        if done > 0:
            cpu_start, wall_start = cpu_seconds(pid), time.monotonic()
            break
        alive()
        if time.monotonic() - last_change > STALL_SECONDS:
            raise RuntimeError(f"no event folded in {STALL_SECONDS:.0f} s:\n{worker.tail()}")
        time.sleep(FIRST_POLL_SECONDS)
    before_clock = done
    while done < total:
        time.sleep(POLL_SECONDS)
        health = worker.health() or {}
        now_done, duplicates, dead = counters(health)
        if now_done != done:
            last_change = time.monotonic()
        done = max(done, now_done)
        progress(label, min(done, total), total)
        alive()
        if time.monotonic() - last_change > STALL_SECONDS:
            raise RuntimeError(
                f"stuck at {done:,}/{total:,} folded for {STALL_SECONDS:.0f} s:\n{worker.tail()}"
            )
    cpu = cpu_seconds(pid) - cpu_start
    wall = time.monotonic() - wall_start
    if before_clock >= total:
        progress(label, total, total)
    timed = total - before_clock
    return Run(
        run=index,
        events_timed=timed,
        events_before_clock=before_clock,
        worker_ready_seconds=round(ready, 2),
        wall_seconds=round(wall, 3),
        worker_cpu_seconds=round(cpu, 2),
        events_per_second=round(timed / wall) if wall > 0 else 0,
        events_per_cpu_second=round(timed / cpu) if cpu > 0 else 0,
        duplicates=duplicates,
        dead_lettered=dead,
    )


def one_run(
    bootstrap: str,
    events: list[InventoryEvent],
    partitions: int,
    index: int,
    runs: int,
) -> Run:
    home = Path(tempfile.mkdtemp(prefix="stocksync-bench-"))
    worker = new_worker(bootstrap, home, partitions)
    ensure_topics(worker.settings)  # before producing: the broker does not auto-create topics
    produce_all(worker.settings, events, f"run {index}/{runs} producing")
    try:
        run = fold_window(worker, len(events), index, runs)
    finally:
        if worker.process is not None and worker.process.poll() is None:
            worker.stop(signal.SIGTERM)
    delete_topics(worker.settings)
    shutil.rmtree(home, ignore_errors=True)  # kept (with the worker log) when the run failed
    return run


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values)), "min": min(values), "max": max(values)}


def print_runs(runs: Sequence[Run]) -> None:
    head = (
        f"{'run':>3}  {'events timed':>12}  {'before clock':>12}  {'ready s':>7}  "
        f"{'wall s':>7}  {'worker CPU s':>12}  {'events/s':>9}  {'events/CPU-s':>12}"
    )
    print(head)
    print("-" * len(head))
    for r in runs:
        print(
            f"{r.run:>3}  {r.events_timed:>12,}  {r.events_before_clock:>12,}  "
            f"{r.worker_ready_seconds:>7.2f}  {r.wall_seconds:>7.2f}  "
            f"{r.worker_cpu_seconds:>12.2f}  {r.events_per_second:>9,}  "
            f"{r.events_per_cpu_second:>12,}"
        )
        if r.duplicates or r.dead_lettered:
            print(f"     warning: {r.duplicates:,} duplicates, {r.dead_lettered:,} dead-lettered")


def print_before(results_dir: Path) -> None:
    path = results_dir / f"{NAME}.before.json"
    if not path.exists():
        return
    before = json.loads(path.read_text())
    params = before.get("params", {})
    print(
        f"before optimising ({path.name}): {before['events_per_cpu_second']:,} events per "
        f"worker CPU-second, {before['events_per_second']:,} events/s wall "
        f"(input {params.get('input', 'skewed')}, {params.get('events', '?'):,} events; "
        "its clocks started when the worker was ready, not at the first folded event)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    bootstrap = broker()

    probe = new_worker(bootstrap, Path(tempfile.mkdtemp(prefix="stocksync-bench-")))
    locations = sorted(file_topology(probe.settings).locations)
    shutil.rmtree(probe.log_path.parent, ignore_errors=True)
    events = make_input(args, locations)
    shape = describe_input(events)
    mix = ", ".join(f"{n * 100:.0f}% {kind}" for kind, n in shape["mix"].items())
    zipf = f"Zipf {args.zipf_exponent}" if args.input == "reference" else "Pareto 1.05 (skewed)"
    print(
        f"input {args.input}: {args.events:,} events, {args.skus:,} SKUs x {len(locations)} "
        f"locations ({', '.join(locations)}), {zipf}; {mix}; {args.partitions} partitions"
    )
    print(
        f"  {shape['distinct_skus_per_1000_events']} distinct SKUs per 1,000 consecutive events; "
        f"top SKU {shape['top_sku_share']:.1%} of events; {shape['skus_touched']:,} SKUs, "
        f"{shape['sku_locations_touched']:,} SKU-locations touched"
    )

    runs = [
        one_run(bootstrap, events, args.partitions, index, args.runs)
        for index in range(1, args.runs + 1)
    ]

    print(f"\nclock: {CLOCK}\n")
    print_runs(runs)
    per_cpu = spread([r.events_per_cpu_second for r in runs])
    per_wall = spread([r.events_per_second for r in runs])
    print()
    for label, stats in (
        ("events per worker CPU-second", per_cpu),
        ("wall events/s", per_wall),
    ):
        print(
            f"{label:29} median {stats['median']:>9,.0f}   "
            f"min-max {stats['min']:,.0f}-{stats['max']:,.0f} over {len(runs)} run(s)"
        )
    print_before(args.results_dir)
    if args.no_write:
        return
    params: dict[str, Any] = {
        "input": args.input,
        "events": args.events,
        "skus": args.skus,
        "locations": len(locations),
        "partitions": args.partitions,
        "runs": args.runs,
        "seed": args.seed,
    }
    if args.input == "reference":
        params["zipf_exponent"] = args.zipf_exponent
        params["mix_percent"] = {kind.value: share for kind, share in REFERENCE_MIX}
    figures: dict[str, Any] = {
        "events": args.events,
        "input": {"name": args.input, **shape},
        "clock": CLOCK,
        "events_per_cpu_second": per_cpu["median"],
        "events_per_cpu_second_min": per_cpu["min"],
        "events_per_cpu_second_max": per_cpu["max"],
        "events_per_second": per_wall["median"],
        "events_per_second_min": per_wall["min"],
        "events_per_second_max": per_wall["max"],
        "runs": [asdict(r) for r in runs],
    }
    write_result(NAME, figures, params, args.results_dir)


if __name__ == "__main__":
    main()
