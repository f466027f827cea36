"""Reservation round trip: POST /v1/reservations -> 201 as the client sees it, and DELETE.

Stocks --skus SKUs with --units units at every location that serves the web channel in the
worker's topology (tests/integration/topology.yaml: dc-1, dc-2, store-1), waits until every
SKU's web ATP answers over HTTP, then sends one-unit web reservations, each with a fresh
Idempotency-Key, to a real worker:

1. sequential: one client on one kept-alive connection, one request at a time (--warmup first,
   not counted), --reservations of them;
2. their release, `DELETE /v1/reservations/{id}`, one at a time on the same connection;
3. concurrent: --concurrency clients, each sending its next request when its answer came
   (closed loop; a warm-up of --warmup first), --reservations of them.

Latency counts from just before the request is sent to its whole answer read. A reservation
is decided by the worker owning the SKU through Kafka (command to reservation-commands, folded,
reply from reservation-replies), so each round trip includes the broker twice. The client,
worker and broker share the machine (2 cores here): the 1-min load average at the start and
end of each run is kept with the figures.

    .venv/bin/python -m bench.reservation_latency [--reservations 2000 --concurrency 8]
    .venv/bin/python -m bench.reservation_latency --label before  # reservation_latency.before.json

Worker CPU per request is the worker's user+sys CPU over a run divided by its requests, so it
includes the worker's idle polling (measured alone before the runs: worker_idle_cpu_share).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import percentile, progress, write_result
from bench.harness import broker, cpu_seconds, delete_topics, new_worker, produce_all
from stocksync.bootstrap import file_topology
from stocksync.domain.events import EventKind, InventoryEvent
from stocksync.provision import ensure_topics
from tests.integration.support import WorkerProcess, http_json

CHANNEL = "web"
TTL_SECONDS = 3600  # no hold expires during a run
REQUEST_TIMEOUT_S = 30.0
VISIBLE_TIMEOUT_S = 120.0
BATCH_MAX = 1000  # SKUs per POST /v1/atp/batch
IDLE_SECONDS = 3.0  # the worker's CPU while nothing is asked, measured before the runs
CLIENT_ERROR = 599  # no HTTP answer (connection refused or reset, client timeout)


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None
    key: str | None = None  # Idempotency-Key


@dataclass
class Timed:
    """What a run of calls got: per call, ms from send to answer read, status and body."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    seconds: float = 0.0


def stock_events(skus: Sequence[str], locations: Sequence[str], units: int) -> list[InventoryEvent]:
    now = int(time.time() * 1000)
    return [
        InventoryEvent(
            event_id=f"rl-{sku}-{location}",
            source="bench-stock",
            source_seq=i + 1,
            sku=sku,
            location=location,
            quantity=units,
            occurred_at=now + i,
            kind=EventKind.RECEIVED,
        )
        for i, (sku, location) in enumerate((s, loc) for s in skus for loc in locations)
    ]


def wait_visible(worker: WorkerProcess, skus: Sequence[str], locations: int) -> int:
    """Until every SKU's web ATP answers over HTTP with all its receipts folded (revision >=
    one per location) and is positive; the smallest web ATP seen."""
    deadline = time.monotonic() + VISIBLE_TIMEOUT_S
    while True:
        views: dict[str, Any] = {}
        for start in range(0, len(skus), BATCH_MAX):
            part = list(skus[start : start + BATCH_MAX])
            status, body = http_json(
                f"{worker.url}/v1/atp/batch", {"skus": part, "channel": CHANNEL}
            )
            if status == 200:
                views.update(body["items"])
        ready = [
            int(view["atp"])
            for view in views.values()
            if view["revision"] >= locations and view["atp"] > 0
        ]
        progress("ATP visible", len(ready), len(skus))
        if len(ready) == len(skus):
            return min(ready)
        if time.monotonic() > deadline:
            raise SystemExit(
                f"\nonly {len(ready)} of {len(skus)} SKUs visible after {VISIBLE_TIMEOUT_S} s"
                f"\n--- worker log ---\n{worker.tail()}"
            )
        time.sleep(0.25)


async def timed_calls(
    url: str, calls: Sequence[Call], concurrency: int, label: str, keep_bodies: bool = False
) -> Timed:
    """Send `calls` from `concurrency` clients, each sending its next call when its answer came
    (one kept-alive connection each); time every call at the client."""
    out = Timed()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=concurrency)
    results: list[tuple[float, int, Any]] = [(0.0, 0, None)] * len(calls)
    next_index = 0
    done = 0
    step = max(len(calls) // 20, 1)

    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:

        async def client() -> None:
            nonlocal next_index, done
            while next_index < len(calls):
                index = next_index
                next_index += 1
                call = calls[index]
                headers = {"Idempotency-Key": call.key} if call.key else None
                started = time.perf_counter()
                try:
                    async with session.request(
                        call.method, call.path, json=call.body, headers=headers
                    ) as resp:
                        raw = await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError):
                    raw, status = b"", CLIENT_ERROR
                elapsed = time.perf_counter() - started
                results[index] = (elapsed * 1000, status, raw if keep_bodies else None)
                done += 1
                if done % step == 0 and done < len(calls):
                    progress(label, done, len(calls))

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        out.seconds = time.perf_counter() - start
    progress(label, len(calls), len(calls))
    for latency, status, raw in results:
        out.latencies_ms.append(latency)
        out.statuses.append(status)
        out.bodies.append(raw)
    return out


def reserve_calls(skus: Sequence[str], rng: random.Random, count: int, tag: str) -> list[Call]:
    """`count` one-unit web reservations of random SKUs, each with a fresh Idempotency-Key."""
    return [
        Call(
            "POST",
            "/v1/reservations",
            {"channel": CHANNEL, "sku": sku, "quantity": 1, "ttl_seconds": TTL_SECONDS},
            f"bench-{tag}-{i}",
        )
        for i, sku in enumerate(rng.choices(list(skus), k=count))
    ]


def figures(timed: Timed, expected: int, cpu_s: float) -> dict[str, Any]:
    ms = sorted(timed.latencies_ms)
    statuses = Counter(timed.statuses)
    return {
        "requests": len(ms),
        "expected_status": expected,
        "statuses": {str(status): n for status, n in sorted(statuses.items())},
        "unexpected": len(ms) - statuses[expected],
        "min_ms": round(ms[0], 2) if ms else float("nan"),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(ms[-1], 2) if ms else float("nan"),
        "mean_ms": round(sum(ms) / len(ms), 2) if ms else float("nan"),
        "seconds": round(timed.seconds, 3),
        "requests_per_s": round(len(ms) / timed.seconds, 1) if timed.seconds else 0.0,
        # the worker's CPU (user+sys) over the run, idle polling included
        "worker_cpu_ms_per_request": round(cpu_s * 1000 / len(ms), 3) if ms else float("nan"),
        "worker_cpu_share": round(cpu_s / timed.seconds, 3) if timed.seconds else 0.0,
    }


def show(name: str, result: dict[str, Any]) -> None:
    odd = f"  UNEXPECTED {result['unexpected']:,}: {result['statuses']}"
    print(
        f"{name:<24} n {result['requests']:>6,}  min {result['min_ms']:>6.2f}  "
        f"p50 {result['p50_ms']:>7.2f}  "
        f"p90 {result['p90_ms']:>7.2f}  p99 {result['p99_ms']:>7.2f}  "
        f"max {result['max_ms']:>8.2f} ms  {result['requests_per_s']:>7,.1f}/s  "
        f"worker CPU {result['worker_cpu_ms_per_request']:.2f} ms/req  "
        f"load {result['load_1m'][0]:.2f}->{result['load_1m'][1]:.2f}"
        + (odd if result["unexpected"] else "")
    )


def measure(
    worker: WorkerProcess,
    name: str,
    calls: Sequence[Call],
    concurrency: int,
    expected: int,
    keep_bodies: bool = False,
) -> tuple[dict[str, Any], Timed]:
    assert worker.process is not None
    pid = worker.process.pid
    load_start = os.getloadavg()[0]
    cpu = cpu_seconds(pid)
    timed = asyncio.run(timed_calls(worker.url, calls, concurrency, name, keep_bodies))
    result = figures(timed, expected, cpu_seconds(pid) - cpu)
    result["concurrency"] = concurrency
    result["load_1m"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    show(name, result)
    return result, timed


def held_ids(timed: Timed) -> list[str]:
    ids = []
    for status, raw in zip(timed.statuses, timed.bodies, strict=True):
        if status == 201 and raw:
            ids.append(str(json.loads(raw)["reservation_id"]))
    return ids


def run(args: argparse.Namespace, worker: WorkerProcess) -> dict[str, Any]:
    topology = file_topology(worker.settings)
    locations = list(topology.channels[CHANNEL].locations)
    skus = [f"RL-{i:05d}" for i in range(args.skus)]
    ensure_topics(worker.settings)
    produce_all(worker.settings, stock_events(skus, locations, args.units), "stocking")
    worker.start()
    least_atp = wait_visible(worker, skus, len(locations))
    print(
        f"{len(skus)} SKUs x {len(locations)} locations ({', '.join(locations)}) visible, "
        f"web ATP >= {least_atp:,}"
    )

    assert worker.process is not None
    cpu = cpu_seconds(worker.process.pid)
    time.sleep(IDLE_SECONDS)
    idle_share = (cpu_seconds(worker.process.pid) - cpu) / IDLE_SECONDS
    print(f"worker idle: {idle_share:.3f} of a core")

    rng = random.Random(args.seed)
    tag = uuid.uuid4().hex[:8]
    measure(
        worker, "warm-up (sequential)", reserve_calls(skus, rng, args.warmup, f"{tag}-w1"), 1, 201
    )
    sequential, timed = measure(
        worker,
        "reserve, sequential",
        reserve_calls(skus, rng, args.reservations, f"{tag}-s"),
        1,
        201,
        keep_bodies=True,
    )
    releases = [Call("DELETE", f"/v1/reservations/{rid}") for rid in held_ids(timed)]
    release, _ = measure(worker, "release, sequential", releases, 1, 200)
    measure(
        worker,
        f"warm-up (concurrency {args.concurrency})",
        reserve_calls(skus, rng, args.warmup, f"{tag}-w2"),
        args.concurrency,
        201,
    )
    concurrent, _ = measure(
        worker,
        f"reserve, concurrency {args.concurrency}",
        reserve_calls(skus, rng, args.reservations, f"{tag}-c"),
        args.concurrency,
        201,
    )
    return {
        "skus": len(skus),
        "locations": locations,
        "web_atp_at_least": least_atp,
        "worker_idle_cpu_share": round(idle_share, 3),
        "sequential": sequential,
        "release_sequential": release,
        "concurrent": concurrent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reservations", type=int, default=2000, help="measured, per run")
    parser.add_argument("--concurrency", type=int, default=8, help="clients of the second run")
    parser.add_argument("--warmup", type=int, default=100, help="requests sent, not counted")
    parser.add_argument("--skus", type=int, default=200)
    parser.add_argument("--units", type=int, default=100_000, help="per SKU and location")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--label", default="", help="result file suffix: reservation_latency.<label>.json"
    )
    parser.add_argument("--bootstrap", default=None, help="default: bench.harness.broker()")
    args = parser.parse_args()
    bootstrap = args.bootstrap or broker()
    home = Path(tempfile.mkdtemp(prefix="stocksync-resv-"))
    worker = new_worker(bootstrap, home)
    load_start = os.getloadavg()
    try:
        result = run(args, worker)
    except BaseException:
        print(f"\n(worker home kept: {home})")
        raise
    finally:
        if worker.process is not None and worker.process.poll() is None:
            worker.stop(signal.SIGTERM)
    delete_topics(worker.settings)
    shutil.rmtree(home, ignore_errors=True)
    result["loadavg"] = {"start": list(load_start), "end": list(os.getloadavg())}
    name = f"reservation_latency.{args.label}" if args.label else "reservation_latency"
    write_result(name, result, {**vars(args), "bootstrap": bootstrap})


if __name__ == "__main__":
    main()
