"""Sale event produced -> updated channel projection consumed, at fixed rates.

Stocks SKUs, then sends one-unit sales at each rate for a while, and measures for each
projection message of the web channel: the time from the sale's occurred_at to the projection
read by a consumer in a process of its own (what a connector sees), and to the projection sent
by the worker (its record's Kafka timestamp), in ms.

    .venv/bin/python -m bench.latency [--rates 1000 5000 --seconds 20 --warmup 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, Producer

from bench.common import percentile, write_result
from bench.harness import broker, new_worker
from stocksync.channels.producer import REQUIRED_CONFIG, ChannelProducer
from stocksync.codec.events import encode_event
from stocksync.codec.outputs import decode_projection
from stocksync.domain.events import EventKind, InventoryEvent
from stocksync.provision import ensure_topics

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.sharedctypes import Synchronized
    from multiprocessing.synchronize import Event

    from stocksync.config import Settings
    from tests.integration.support import WorkerProcess

SKUS = 2000


# Held: at the end of a rate's run the input waiting is under half a second's worth.
HELD_LAG_SECONDS = 0.5


def watch_projections(
    bootstrap: str,
    topic: str,
    since_ms: Synchronized[int],
    ready: Event,
    stop: Event,
    out: Connection[tuple[list[float], list[float]], Any],
) -> None:
    """In a process of its own (the producing loop's GIL must not delay it): for each web
    projection, (ms from the sale to its record on the topic, ms from the sale to this read).
    The record's timestamp is the one the worker's producer stamped when it sent it. Sales
    stamped before `since_ms` (0 until the warm-up is over) are not counted."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"latency-{time.time_ns()}",
            "auto.offset.reset": "latest",
            "fetch.wait.max.ms": 5,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 15
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.1)
    ready.set()
    produced: list[float] = []
    read: list[float] = []
    while not stop.is_set():
        msg = consumer.poll(0.05)
        if msg is None or msg.error():
            continue
        now = time.time() * 1000
        change = decode_projection(msg.value() or b"")
        if change.channel == "web" and 0 < since_ms.value <= change.as_of:
            produced.append(msg.timestamp()[1] - change.as_of)
            read.append(now - change.as_of)
    consumer.close()
    out.send((produced, read))


def measure(
    worker_settings: Settings,
    rate: int,
    seconds: float,
    warmup: float,
    seed: int,
    lag: Callable[[], float],
) -> dict[str, float]:
    settings = worker_settings
    topics = settings.topics
    producer = Producer(
        {"bootstrap.servers": worker_settings.bootstrap_servers, "linger.ms": 0, **REQUIRED_CONFIG}
    )
    # Warm up before the clock starts: an idempotent producer first fetches metadata and a
    # producer id (hundreds of ms), and events stamped meanwhile would measure that instead.
    first = InventoryEvent(
        f"w{time.time_ns()}",
        "latency-warmup",
        1,
        "LAT-WARMUP",
        "dc-2",
        1,
        int(time.time() * 1000),
        EventKind.RECEIVED,
    )
    producer.produce(topics.stock_events, key=b"LAT-WARMUP", value=encode_event(first))
    producer.flush(30)
    spawn = multiprocessing.get_context("spawn")
    since_ms = spawn.Value("q", 0)
    ready, stop = spawn.Event(), spawn.Event()
    results, sender = spawn.Pipe(duplex=False)
    watcher = spawn.Process(
        target=watch_projections,
        args=(
            worker_settings.bootstrap_servers,
            topics.channel_atp,
            since_ms,
            ready,
            stop,
            sender,
        ),
    )
    watcher.start()
    ready.wait(30)  # the watcher's assignment settled before the first sale
    rng = random.Random(seed)
    interval = 1.0 / rate
    next_at = time.monotonic()
    # Sales during the warm-up are sent at the same rate and not measured: the watcher's
    # group join and the first batches through a just-started pipeline are not the steady state.
    measure_at = next_at + warmup
    end = measure_at + seconds
    seq = int(time.time() * 1e6)
    sent = 0
    lags: list[float] = []
    next_lag = next_at + 1.0
    while time.monotonic() < end:
        if not since_ms.value and time.monotonic() >= measure_at:
            since_ms.value = int(time.time() * 1000)
            sent = 0
        if time.monotonic() >= next_lag:
            next_lag += 1.0
            lags.append(lag())
        seq += 1
        sku = f"LAT-{rng.randrange(SKUS):05d}"
        event = InventoryEvent(
            f"l{seq}", "latency-pos", seq, sku, "dc-2", 1, int(time.time() * 1000), EventKind.SOLD
        )
        producer.produce(topics.sale_events, key=sku.encode(), value=encode_event(event))
        producer.poll(0)
        sent += 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    lags.append(lag())
    producer.flush(30)
    time.sleep(2)
    stop.set()
    produced, read = results.recv()
    watcher.join(30)
    on_topic, consumed = sorted(produced), sorted(read)
    return {
        "rate_target": rate,
        "rate_achieved": round(sent / seconds),
        "samples": len(consumed),
        # sale stamped -> projection record sent by the worker (its Kafka timestamp)
        "produced_p50_ms": round(percentile(on_topic, 50), 1),
        "produced_p99_ms": round(percentile(on_topic, 99), 1),
        # sale stamped -> projection read by a consumer (what a connector sees)
        "p50_ms": round(percentile(consumed, 50), 1),
        "p99_ms": round(percentile(consumed, 99), 1),
        "p999_ms": round(percentile(consumed, 99.9), 1),
        # the worker's consumer lag (stocksync_consumer_lag_total), sampled every second
        "lag_max": max(lags, default=0),
        "lag_end": lags[-1] if lags else 0,
        "held": (lags[-1] if lags else 0) <= rate * HELD_LAG_SECONDS,
    }


def lag_of(worker: WorkerProcess) -> Callable[[], float]:
    def lag() -> float:
        try:
            return float(worker.metrics().get("stocksync_consumer_lag_total", 0.0))
        except OSError:
            return float("nan")

    return lag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3, help="seconds sent, not measured")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    worker = new_worker(broker(), Path(tempfile.mkdtemp(prefix="stocksync-bench-")))
    ensure_topics(worker.settings)
    stocker = ChannelProducer(worker.settings.bootstrap_servers, "wms", worker.settings.topics)
    for i in range(SKUS):
        stocker.emit(EventKind.RECEIVED, f"LAT-{i:05d}", "dc-2", 1_000_000)
    stocker.flush()
    worker.start()
    worker.wait_revision(f"LAT-{SKUS - 1:05d}", 1, timeout=120)
    runs = []
    for rate in args.rates:
        result = measure(
            worker.settings, rate, args.seconds, args.warmup, args.seed, lag_of(worker)
        )
        print(
            f"rate {result['rate_achieved']:>6}/s  p50 {result['p50_ms']:>7} ms  "
            f"p99 {result['p99_ms']:>7} ms  p99.9 {result['p999_ms']:>7} ms  "
            f"(sent: p50 {result['produced_p50_ms']} p99 {result['produced_p99_ms']})  "
            f"lag max {result['lag_max']:>7,.0f} end {result['lag_end']:>7,.0f} "
            f"({'held' if result['held'] else 'NOT held'}; {result['samples']} samples)"
        )
        runs.append(result)
    worker.stop(signal.SIGTERM)
    write_result("latency", {"runs": runs}, vars(args))


if __name__ == "__main__":
    main()
