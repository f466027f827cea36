"""Sustained fold throughput of one real worker process on a real broker.

Pre-produces N events (Zipf SKUs, retail mix), starts a worker on them, and measures how fast it
folds them: events/s of wall time and events per CPU-second of the worker process.

    .venv/bin/python -m bench.worker_throughput [--events 300000 --skus 20000]
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from pathlib import Path

from bench.common import progress, write_result
from bench.harness import broker, cpu_seconds, new_worker, produce_all, retail_events
from stocksync.provision import ensure_topics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    bootstrap = broker()
    home = Path(tempfile.mkdtemp(prefix="stocksync-bench-"))
    worker = new_worker(bootstrap, home, args.partitions)
    ensure_topics(worker.settings)
    locations = sorted(worker.settings.load_topology().locations)
    events = retail_events(args.events, args.skus, locations, args.seed)
    produce_all(worker.settings, events)

    worker.start()
    assert worker.process is not None
    pid = worker.process.pid
    cpu_start, wall_start = cpu_seconds(pid), time.monotonic()
    done = 0
    while done < args.events:
        time.sleep(0.5)
        health = worker.health() or {}
        done = int(health.get("applied", 0)) + int(health.get("duplicates", 0))
        progress("folding", min(done, args.events), args.events)
    wall = time.monotonic() - wall_start
    cpu = cpu_seconds(pid) - cpu_start
    worker.stop(signal.SIGTERM)

    figures = {
        "events": args.events,
        "wall_seconds": round(wall, 2),
        "worker_cpu_seconds": round(cpu, 2),
        "events_per_second": round(args.events / wall),
        "events_per_cpu_second": round(args.events / cpu),
    }
    for key, value in figures.items():
        print(f"{key:24} {value:>12,}")
    write_result("worker_throughput", figures, vars(args))


if __name__ == "__main__":
    main()
