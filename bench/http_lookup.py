"""HTTP ATP lookup latency and the highest rate held, single SKUs and batches of 100.

Folds a day of events for --skus SKUs into a real worker, then drives `GET /v1/atp/{sku}` and
`POST /v1/atp/batch` (100 SKUs) open-loop at rising target rates: requests are sent on a fixed
schedule whatever the answers do, and latency counts from the scheduled time, so a stalled
server shows up as latency instead of hiding as a lower rate (no coordinated omission).

    .venv/bin/python -m bench.http_lookup [--rates 500,1000,2000,3000,5000 --seconds 5]

"Held" means the server answered at least 97% of the target rate with every answer a 200 and
p99 under one second. The client runs on the same machine (2 cores here), so it takes CPU
from the worker: the figures are a floor for a worker with a core of its own. Each step also
reads the worker's own request-latency histogram (/metrics) and reports the bucket holding its
p99: the time in the handler, without the client or the machine's scheduling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import percentile, progress, write_result
from bench.harness import broker, cpu_seconds, new_worker, produce_all, retail_events
from stocksync.bootstrap import file_topology
from stocksync.provision import ensure_topics
from tests.integration.support import scrape


async def drive(
    url: str, rate: float, seconds: float, make: Any, connections: int
) -> dict[str, float]:
    """Send requests at `rate`/s for `seconds`; `make(session)` returns one request's coroutine."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(url, connector=connector) as session:
        total = int(rate * seconds)
        start = time.perf_counter()
        pending: set[asyncio.Task[None]] = set()

        async def one(scheduled: float) -> None:
            nonlocal errors
            try:
                async with make(session) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - scheduled)

        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(scheduled))
            pending.add(task)
            task.add_done_callback(pending.discard)
        sent_in = time.perf_counter() - start
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - start
    latencies.sort()
    ms = [v * 1000 for v in latencies]
    return {
        "target_rate": rate,
        "answered_rate": round(len(ms) / elapsed),
        "send_seconds": round(sent_in, 2),
        "errors": errors,
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "p999_ms": round(percentile(ms, 99.9), 2),
        "max_ms": round(ms[-1], 2) if ms else float("nan"),
    }


def handler_buckets(url: str, route: str) -> dict[float, float]:
    """Cumulative counts of the worker's own HTTP latency histogram for one route (seconds)."""
    return {
        float(sample.labels["le"]): sample.value
        for sample in scrape(url)
        if sample.name == "stocksync_http_request_duration_seconds_bucket"
        and sample.labels.get("route") == route
        and sample.labels.get("status") == "200"
    }


def handler_p99_ms(before: dict[float, float], after: dict[float, float]) -> float:
    """Upper bound of the bucket holding the 99th percentile of the requests in between."""
    counts = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = counts[-1][1] if counts else 0.0
    for le, cumulative in counts:
        if total and cumulative >= 0.99 * total:
            return le * 1000
    return float("nan")


def held(result: dict[str, float]) -> bool:
    return (
        result["errors"] == 0
        and result["answered_rate"] >= 0.97 * result["target_rate"]
        and result["p99_ms"] < 1000
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--rates", default="500,1000,2000,3000,4000,5000")
    parser.add_argument("--batch-rates", default="50,100,200,400,800")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="stocksync-http-"))
    worker = new_worker(broker(), home)
    ensure_topics(worker.settings)
    locations = sorted(file_topology(worker.settings).locations)
    events = retail_events(args.skus * 3, args.skus, locations, args.seed)
    produce_all(worker.settings, events)
    worker.start()
    while True:
        health = worker.health() or {}
        done = int(health.get("applied", 0)) + int(health.get("duplicates", 0))
        progress("folding", min(done, len(events)), len(events))
        if done >= len(events):
            break
        time.sleep(0.5)
    skus = sorted({event.sku for event in events})
    rng = random.Random(args.seed)
    assert worker.process is not None
    pid = worker.process.pid

    def single(session: aiohttp.ClientSession) -> Any:
        return session.get(f"/v1/atp/{rng.choice(skus)}")

    def batch(session: aiohttp.ClientSession) -> Any:
        body = json.dumps({"skus": rng.sample(skus, 100)})
        return session.post(
            "/v1/atp/batch", data=body, headers={"Content-Type": "application/json"}
        )

    figures: dict[str, Any] = {}
    try:
        for name, rates, make, route in (
            ("single", args.rates, single, "/v1/atp/{sku}"),
            ("batch100", args.batch_rates, batch, "/v1/atp/batch"),
        ):
            steps = []
            for rate in (float(r) for r in rates.split(",")):
                cpu = cpu_seconds(pid)
                buckets = handler_buckets(worker.url, route)
                result = asyncio.run(drive(worker.url, rate, args.seconds, make, args.connections))
                result["worker_cpu_share"] = round((cpu_seconds(pid) - cpu) / args.seconds, 2)
                # the worker's own measure: handler time, without the client's share of the CPU
                result["handler_p99_ms_at_most"] = handler_p99_ms(
                    buckets, handler_buckets(worker.url, route)
                )
                result["held"] = held(result)
                steps.append(result)
                print(
                    f"{name:9} {rate:>7,.0f}/s answered {result['answered_rate']:>7,}/s "
                    f"p50 {result['p50_ms']:>7.2f} ms  p99 {result['p99_ms']:>8.2f} ms  "
                    f"p99.9 {result['p999_ms']:>8.2f} ms  handler p99 <= "
                    f"{result['handler_p99_ms_at_most']:g} ms  errors {result['errors']}"
                    f"  {'held' if result['held'] else 'NOT held'}"
                )
            kept = [s for s in steps if s["held"]]
            figures[name] = {
                "steps": steps,
                "highest_rate_held": max((s["target_rate"] for s in kept), default=0),
            }
    finally:
        worker.stop(signal.SIGTERM)
    for name in ("single", "batch100"):
        print(f"{name}: highest rate held {figures[name]['highest_rate_held']:,.0f}/s")
    write_result("http_lookup", figures, vars(args))


if __name__ == "__main__":
    main()
