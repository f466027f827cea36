"""Stock snapshot import rate: `stocksync import` of a generated 1M-row CSV against a real broker.

Generates a CSV of `--rows` rows (SKUs x 4 locations, `sku,location,on_hand,safety_stock`, so
every row is a COUNTED and a SAFETY_STOCK_SET: two events a row), creates the topics of a fresh
prefix, and runs the command exactly as a user does, in a process of its own:

1. `stocksync import FILE --dry-run --json`: reading and checking only (no Kafka);
2. `stocksync import FILE --json`: checking, encoding, sending, and waiting until Kafka has
   acknowledged every event.

Reported: wall seconds of each command (process start to exit, Python's start-up included),
rows/s and events/s over that wall time, the command's CPU seconds (user+sys), and the
import's own timing from its report (reading to the last acknowledgement). The budget: 1M rows
in under a minute on the 2-core development machine.

    .venv/bin/python -m bench.import_rate [--rows 1000000] [--keep-topics]

Without STOCKSYNC_BENCH_BOOTSTRAP it starts the project's broker on port 29192.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import progress, write_result
from bench.harness import broker, delete_topics
from stocksync.config import Settings
from stocksync.provision import ensure_topics
from tests.integration.support import REPO, settings_env, unique_settings

LOCATIONS = ("dc-1", "dc-2", "store-1", "store-2")  # tests/integration/topology.yaml
WRITE_EVERY = 50_000


def write_snapshot(path: Path, rows: int, seed: int) -> int:
    """A CSV of `rows` rows, each SKU at every location in turn; its size in bytes."""
    rng = random.Random(seed)
    with path.open("w", newline="") as out:
        out.write("sku,location,on_hand,safety_stock\n")
        chunk: list[str] = []
        for i in range(rows):
            sku = f"SKU-{i // len(LOCATIONS):07d}"
            location = LOCATIONS[i % len(LOCATIONS)]
            chunk.append(f"{sku},{location},{rng.randrange(500)},{rng.randrange(5)}\n")
            if len(chunk) == WRITE_EVERY:
                out.writelines(chunk)
                chunk.clear()
                progress("writing the snapshot", i + 1, rows)
        out.writelines(chunk)
    progress("writing the snapshot", rows, rows)
    return path.stat().st_size


def run_import(settings: Settings, path: Path, *extra: str) -> tuple[dict[str, Any], float, float]:
    """`stocksync import PATH --json EXTRA...` in its own process: (its report, wall seconds,
    CPU seconds). Its progress line goes to this terminal."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "stocksync.cli", "import", str(path), "--json", *extra],
        env={**settings_env(settings), "STOCKSYNC_LOG_LEVEL": "warning"},
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"stocksync import exited {done.returncode}:\n{done.stdout}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report, wall, cpu


def figures_of(report: dict[str, Any], wall: float, cpu: float) -> dict[str, Any]:
    events = sum(report["events"].values())
    return {
        "rows": report["rows"],
        "events": events,
        "wall_s": round(wall, 2),
        "rows_per_s": round(report["rows"] / wall),
        "events_per_s": round(events / wall),
        "cpu_s": round(cpu, 2),
        "import_s": report["seconds"],  # the report's own: reading to the last acknowledgement
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--keep-topics", action="store_true", help="leave the run's topics")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="stocksync-import-rate-") as home:
        settings = unique_settings(broker(), Path(home) / "state", partitions=args.partitions)
        path = Path(home) / "snapshot.csv"
        size = write_snapshot(path, args.rows, args.seed)
        ensure_topics(settings)
        print(f"topic prefix {settings.topic_prefix!r} on {settings.bootstrap_servers}")
        try:
            checked, check_wall, check_cpu = run_import(settings, path, "--dry-run")
            imported, wall, cpu = run_import(settings, path)
        finally:
            if not args.keep_topics:
                delete_topics(settings)
    if imported["imported"] != args.rows or imported["not_delivered"]:
        raise SystemExit(f"not every row was imported: {imported}")
    figures: dict[str, Any] = {
        "file_mb": round(size / 1e6, 1),
        "import": figures_of(imported, wall, cpu),
        "check_only": figures_of(checked, check_wall, check_cpu),
    }
    for phase in ("import", "check_only"):
        shown = figures[phase]
        print(
            f"{phase:10} {shown['rows']:>9,} rows in {shown['wall_s']:6.2f}s wall: "
            f"{shown['rows_per_s']:>7,} rows/s, {shown['events_per_s']:>7,} events/s, "
            f"{shown['cpu_s']:.1f} CPU-s"
        )
    write_result("import_rate", figures, vars(args))


if __name__ == "__main__":
    main()
