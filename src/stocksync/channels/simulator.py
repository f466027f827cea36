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
RECEIPT_DELAY_EVENTS = 200
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
    # Units each location can still sell (on hand - reserved). The simulated channels sell only
    # what is there, as channels told by stocksync do; the warehouse replenishes what runs low.
    sellable = {
        (sku, loc): INITIAL_UNITS - topology.default_safety_stock(loc)
        for sku in skus
        for loc in topology.locations
    }
    open_orders: deque[OpenOrder] = deque()
    interval = 1.0 / rate if rate > 0 else 0.0
    next_at = time.monotonic()
    last_report = time.monotonic()
    sold_out = 0

    def sell(producer: str, kind: EventKind, sku: str, places: list[str], qty: int) -> str | None:
        nonlocal sold_out
        stocked = [loc for loc in places if sellable[(sku, loc)] >= qty]
        if not stocked:
            sold_out += 1  # every place is out: the channel shows 0 and sells nothing
            return None
        loc = rng.choice(stocked)
        sellable[(sku, loc)] -= qty
        producers[producer].emit(kind, sku, loc, qty)
        if sellable[(sku, loc)] <= 2 and rng.random() < 0.3:
            replenish(sku, loc)
        return loc

    # Receipts and sales travel on different topics, which Kafka does not order relative to
    # each other: received units are sold only once the receipt has surely been folded.
    arriving: deque[tuple[int, str, str]] = deque()

    def replenish(sku: str, loc: str) -> None:
        producers["wms"].emit(EventKind.RECEIVED, sku, loc, RESTOCK_UNITS, reason="replenishment")
        arriving.append((sent + RECEIPT_DELAY_EVENTS, sku, loc))

    try:
        while events == 0 or sent < events:
            while arriving and arriving[0][0] <= sent:
                _, arrived_sku, arrived_at = arriving.popleft()
                sellable[(arrived_sku, arrived_at)] += RESTOCK_UNITS
            sku = rng.choices(skus, weights)[0]
            roll = rng.random()
            if roll < 0.25 or (roll < 0.50 and not open_orders):
                channel = rng.choice(["web", "app"])
                qty = rng.randint(1, 2)
                placed = sell(channel, EventKind.RESERVED, sku, dcs + stores[:1], qty)
                if placed is not None:
                    open_orders.append(OpenOrder(channel, sku, placed, qty))
            elif roll < 0.50:
                order = open_orders.popleft()
                kind = EventKind.FULFILLED if rng.random() < 0.85 else EventKind.RELEASED
                if kind is EventKind.RELEASED:
                    sellable[(order.sku, order.location)] += order.quantity
                producers[order.channel].emit(kind, order.sku, order.location, order.quantity)
            elif roll < 0.80 and stores:
                sell("pos", EventKind.SOLD, sku, [rng.choice(stores)], 1)
            elif roll < 0.96:
                sell("marketplace", EventKind.SOLD, sku, dcs, 1)
            else:
                replenish(sku, rng.choice(list(topology.locations)))
            sent += 1
            now = time.monotonic()
            if now - last_report >= 30:
                log.info(
                    "simulation_progress",
                    events_sent=sent,
                    open_orders=len(open_orders),
                    sold_out=sold_out,
                )
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
