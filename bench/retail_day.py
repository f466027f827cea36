"""Load generator: a realistic retail day produced by the channels' own ChannelProducers.

SKUs x locations from the topology, Zipf popularity, a flash-sale burst on a few SKUs, and a
mix of warehouse receipts, web/app orders (reserve, then fulfil or release), store POS sales
and marketplace sales, at a target rate with a progress bar. Every channel is a ChannelProducer
of its own (idempotent, acks=all, pydantic-validated), as a real integration is.

    .venv/bin/python -m bench.retail_day --rate 2000 --seconds 30 [--skus 5000]

Without STOCKSYNC_BENCH_BOOTSTRAP it starts the project's broker on port 29192 and creates the
topics of a fresh prefix; point a worker at that prefix (printed) to fold the day.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from bench.common import progress, write_result
from stocksync.bootstrap import file_topology
from stocksync.channels.producer import ChannelProducer
from stocksync.config import Settings
from stocksync.domain.events import EventKind
from stocksync.domain.topology import Topology

RECEIPT_UNITS = 40


@dataclass(frozen=True, slots=True)
class DayEvent:
    source: str  # the channel that emits it
    kind: EventKind
    sku: str
    location: str
    quantity: int


@dataclass(frozen=True, slots=True)
class DayShape:
    skus: int = 5_000
    zipf_s: float = 1.1
    flash_start: float = 0.5  # share of the day when the flash sale starts
    flash_length: float = 0.1  # share of the day it lasts
    flash_skus: int = 10
    flash_share: float = 0.6  # share of sale events on flash SKUs during the burst


class RetailDay:
    """Deterministic (seeded) stream of a day's events; sale share grows during the flash."""

    def __init__(self, topology: Topology, shape: DayShape, seed: int) -> None:
        self.rng = random.Random(seed)
        self.shape = shape
        self.skus = [f"SKU-{i:06d}" for i in range(shape.skus)]
        weights = [1 / (rank**shape.zipf_s) for rank in range(1, shape.skus + 1)]
        self._cumulative = list(itertools.accumulate(weights))
        self.flash = self.rng.sample(self.skus, min(shape.flash_skus, shape.skus))
        locations = topology.locations
        self.dcs = sorted(loc for loc, spec in locations.items() if spec.kind == "dc")
        self.stores = sorted(loc for loc, spec in locations.items() if spec.kind == "store")
        self.online = [ch for ch in ("web", "app") if ch in topology.channels]
        self.marketplaces = [
            ch for ch in topology.channels if ch not in self.online and not ch.startswith("pos-")
        ]
        self._open: list[tuple[str, str, str]] = []  # (channel, sku, location) reserved

    def popular_sku(self) -> str:
        pick = self.rng.random() * self._cumulative[-1]
        return self.skus[bisect.bisect_left(self._cumulative, pick)]

    def events(self, total: int) -> Iterator[DayEvent]:
        shape, rng = self.shape, self.rng
        flash_from = int(total * shape.flash_start)
        flash_to = flash_from + int(total * shape.flash_length)
        for i in range(total):
            in_flash = flash_from <= i < flash_to
            sku = (
                rng.choice(self.flash)
                if in_flash and rng.random() < shape.flash_share
                else self.popular_sku()
            )
            roll = rng.random()
            if roll < 0.08:
                yield DayEvent(
                    "warehouse", EventKind.RECEIVED, sku, rng.choice(self.dcs), RECEIPT_UNITS
                )
            elif roll < 0.40 and self.online:
                yield self._online(sku)
            elif roll < 0.80 and self.stores:
                store = rng.choice(self.stores)
                yield DayEvent(f"pos-{store}", EventKind.SOLD, sku, store, 1)
            else:
                channel = rng.choice(self.marketplaces) if self.marketplaces else "marketplace"
                yield DayEvent(channel, EventKind.SOLD, sku, rng.choice(self.dcs), 1)

    def _online(self, sku: str) -> DayEvent:
        rng = self.rng
        if self._open and rng.random() < 0.5:
            channel, held_sku, location = self._open.pop(rng.randrange(len(self._open)))
            kind = EventKind.FULFILLED if rng.random() < 0.85 else EventKind.RELEASED
            return DayEvent(channel, kind, held_sku, location, 1)
        channel, location = rng.choice(self.online), rng.choice(self.dcs)
        self._open.append((channel, sku, location))
        return DayEvent(channel, EventKind.RESERVED, sku, location, 1)


def produce_day(
    settings: Settings, day: RetailDay, total: int, rate: float, label: str = "retail day"
) -> dict[str, float]:
    """Produce `total` events at `rate` per second through one ChannelProducer per channel."""
    producers: dict[str, ChannelProducer] = {}
    by_channel: Counter[str] = Counter()
    start = time.monotonic()
    behind_max = 0.0
    for i, event in enumerate(day.events(total)):
        due = start + i / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        else:
            behind_max = max(behind_max, now - due)
        producer = producers.get(event.source)
        if producer is None:
            producer = producers[event.source] = ChannelProducer(
                settings.bootstrap_servers, event.source, settings.topics
            )
        producer.emit(event.kind, event.sku, event.location, event.quantity)
        by_channel[event.source] += 1
        if i % 1_000 == 0:
            progress(label, i, total)
    for producer in producers.values():
        producer.flush(120)
    progress(label, total, total)
    seconds = time.monotonic() - start
    return {
        "events": total,
        "seconds": round(seconds, 2),
        "events_per_second": round(total / seconds),
        "most_behind_schedule_s": round(behind_max, 3),
        **{f"events_{channel}": count for channel, count in sorted(by_channel.items())},
    }


def main() -> None:
    from bench.harness import broker, new_worker
    from stocksync.provision import ensure_topics

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=2_000, help="events per second")
    parser.add_argument("--seconds", type=float, default=30, help="length of the day")
    parser.add_argument("--skus", type=int, default=5_000)
    parser.add_argument("--flash-skus", type=int, default=10)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    import tempfile
    from pathlib import Path

    worker = new_worker(broker(), Path(tempfile.mkdtemp(prefix="stocksync-day-")))
    settings = worker.settings
    ensure_topics(settings)
    print(f"topic prefix {settings.topic_prefix!r} on {settings.bootstrap_servers}")
    day = RetailDay(
        file_topology(settings), DayShape(skus=args.skus, flash_skus=args.flash_skus), args.seed
    )
    figures = produce_day(settings, day, int(args.rate * args.seconds), args.rate)
    for key, value in figures.items():
        print(f"{key:28} {value:>12,}")
    write_result("retail_day", figures, vars(args))


if __name__ == "__main__":
    main()
