"""Simulated sales channels for the demo: a warehouse system receiving stock, web and app
checkouts (reserve, then fulfil or cancel), store POS tills, and a marketplace.

Every simulated channel is a ChannelProducer of its own, exactly as a real integration would be.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass

import structlog

from stocksync.channels.producer import ChannelProducer
from stocksync.config import Settings
from stocksync.domain.events import EventKind

log = structlog.get_logger("stocksync.simulator")

RESTOCK_UNITS = 30
INITIAL_UNITS = 25


@dataclass(slots=True)
class OpenOrder:
    channel: str
    sku: str
    location: str
    quantity: int


def run_simulation(
    settings: Settings, events: int = 0, rate: float = 20.0, sku_count: int = 20, seed: int = 7
) -> int:
    topology = settings.load_topology()
    rng = random.Random(seed)
    topics = settings.topics
    skus = [f"SKU-{i:04d}" for i in range(1, sku_count + 1)]
    dcs = [loc for loc, spec in topology.locations.items() if spec.kind == "dc"] or list(
        topology.locations
    )
    stores = [loc for loc, spec in topology.locations.items() if spec.kind == "store"]
    producers = {
        name: ChannelProducer(
            settings.bootstrap_servers, name, topics, settings.librdkafka_config()
        )
        for name in ("wms", "web", "app", "pos", "marketplace")
    }
    sent = 0
    for sku in skus:
        for loc in topology.locations:
            producers["wms"].emit(EventKind.RECEIVED, sku, loc, INITIAL_UNITS, reason="opening")
            sent += 1
    producers["wms"].flush()
    log.info("simulation_stocked", skus=len(skus), locations=len(topology.locations))

    # Zipf-like popularity: the first SKUs sell most.
    weights = [1.0 / (rank + 1) for rank in range(len(skus))]
    open_orders: deque[OpenOrder] = deque()
    interval = 1.0 / rate if rate > 0 else 0.0
    next_at = time.monotonic()
    last_report = time.monotonic()
    try:
        while events == 0 or sent < events:
            sku = rng.choices(skus, weights)[0]
            roll = rng.random()
            if roll < 0.30:
                channel = rng.choice(["web", "app"])
                order = OpenOrder(channel, sku, rng.choice(dcs + stores[:1]), rng.randint(1, 2))
                producers[channel].emit(EventKind.RESERVED, sku, order.location, order.quantity)
                open_orders.append(order)
            elif roll < 0.50 and open_orders:
                order = open_orders.popleft()
                kind = EventKind.FULFILLED if rng.random() < 0.85 else EventKind.RELEASED
                producers[order.channel].emit(kind, order.sku, order.location, order.quantity)
            elif roll < 0.80 and stores:
                producers["pos"].emit(EventKind.SOLD, sku, rng.choice(stores), 1)
            elif roll < 0.97:
                producers["marketplace"].emit(EventKind.SOLD, sku, rng.choice(dcs), 1)
            else:
                producers["wms"].emit(
                    EventKind.RECEIVED, sku, rng.choice(dcs), RESTOCK_UNITS, reason="replenishment"
                )
            sent += 1
            now = time.monotonic()
            if now - last_report >= 5:
                log.info("simulation_progress", events_sent=sent, open_orders=len(open_orders))
                last_report = now
            if interval:
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
    except KeyboardInterrupt:
        pass
    finally:
        for producer in producers.values():
            producer.flush()
    log.info("simulation_finished", events_sent=sent)
    return sent
