"""Simulated sales channels for the demo: a warehouse system receiving stock, web and app
checkouts (reserve, then fulfil or cancel), store POS tills, and a marketplace.

Every simulated channel is a ChannelProducer of its own, exactly as a real integration would be.
Run it with `stocksync simulate` from a checkout (sim/ is not installed with the library).
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass

import structlog

from stocksync.bootstrap import file_topology
from stocksync.channels.producer import ChannelProducer
from stocksync.config import Settings
from stocksync.domain.events import EventKind

log = structlog.get_logger("stocksync.simulator")

RESTOCK_UNITS = 30
RECEIPT_DELAY_EVENTS = 200
INITIAL_UNITS = 25
PROGRESS_EVERY_S = 30.0
PRODUCERS = ("wms", "web", "app", "pos", "marketplace")


@dataclass(slots=True)
class OpenOrder:
    channel: str
    sku: str
    location: str
    quantity: int


class Simulation:
    """The simulated channels and what they know of the stock: the units each location can
    still sell (on hand - reserved), the open web and app orders, and receipts on their way.
    The channels sell only what is there, as channels told by stocksync do; the warehouse
    replenishes what runs low."""

    def __init__(self, settings: Settings, sku_count: int, seed: int) -> None:
        topology = file_topology(settings)
        self.rng = random.Random(seed)
        self.skus = [f"SKU-{i:04d}" for i in range(1, sku_count + 1)]
        self.locations = list(topology.locations)
        self.dcs = [loc for loc, spec in topology.locations.items() if spec.kind == "dc"] or list(
            topology.locations
        )
        self.stores = [loc for loc, spec in topology.locations.items() if spec.kind == "store"]
        self.producers = {
            name: ChannelProducer(
                settings.bootstrap_servers, name, settings.topics, settings.librdkafka_config()
            )
            for name in PRODUCERS
        }
        # Zipf-like popularity: the first SKUs sell most.
        self.weights = [1.0 / (rank + 1) for rank in range(len(self.skus))]
        self.sellable = {
            (sku, loc): INITIAL_UNITS - topology.default_safety_stock(loc)
            for sku in self.skus
            for loc in self.locations
        }
        self.open_orders: deque[OpenOrder] = deque()
        # Receipts and sales travel on different topics, which Kafka does not order relative
        # to each other: received units are sold only once the receipt has surely been folded,
        # RECEIPT_DELAY_EVENTS events later. (events sent when sellable, SKU, location)
        self.arriving: deque[tuple[int, str, str]] = deque()
        self.sent = 0
        self.sold_out = 0

    def stock(self) -> None:
        """Every SKU's opening stock at every location."""
        wms = self.producers["wms"]
        for sku in self.skus:
            for loc in self.locations:
                wms.emit(EventKind.RECEIVED, sku, loc, INITIAL_UNITS, reason="opening")
                self.sent += 1
        wms.flush()
        log.info("simulation_stocked", skus=len(self.skus), locations=len(self.locations))

    def step(self) -> None:
        """One event of one channel."""
        while self.arriving and self.arriving[0][0] <= self.sent:
            _, arrived_sku, arrived_at = self.arriving.popleft()
            self.sellable[(arrived_sku, arrived_at)] += RESTOCK_UNITS
        sku = self.rng.choices(self.skus, self.weights)[0]
        roll = self.rng.random()
        if roll < 0.25 or (roll < 0.50 and not self.open_orders):
            self._place_order(sku)
        elif roll < 0.50:
            self._close_order()
        elif roll < 0.80 and self.stores:
            self._sell("pos", EventKind.SOLD, sku, [self.rng.choice(self.stores)], 1)
        elif roll < 0.96:
            self._sell("marketplace", EventKind.SOLD, sku, self.dcs, 1)
        else:
            self._replenish(sku, self.rng.choice(self.locations))
        self.sent += 1

    def flush(self) -> None:
        for producer in self.producers.values():
            producer.flush()

    def _place_order(self, sku: str) -> None:
        """A web or app checkout reserves units at a DC or the first store."""
        channel = self.rng.choice(["web", "app"])
        qty = self.rng.randint(1, 2)
        placed = self._sell(channel, EventKind.RESERVED, sku, self.dcs + self.stores[:1], qty)
        if placed is not None:
            self.open_orders.append(OpenOrder(channel, sku, placed, qty))

    def _close_order(self) -> None:
        """The oldest open order ships, or is cancelled and its units are sellable again."""
        order = self.open_orders.popleft()
        kind = EventKind.FULFILLED if self.rng.random() < 0.85 else EventKind.RELEASED
        if kind is EventKind.RELEASED:
            self.sellable[(order.sku, order.location)] += order.quantity
        self.producers[order.channel].emit(kind, order.sku, order.location, order.quantity)

    def _sell(
        self, producer: str, kind: EventKind, sku: str, places: list[str], qty: int
    ) -> str | None:
        """The location the units were sold at, or None when every place is out."""
        stocked = [loc for loc in places if self.sellable[(sku, loc)] >= qty]
        if not stocked:
            self.sold_out += 1  # every place is out: the channel shows 0 and sells nothing
            return None
        loc = self.rng.choice(stocked)
        self.sellable[(sku, loc)] -= qty
        self.producers[producer].emit(kind, sku, loc, qty)
        if self.sellable[(sku, loc)] <= 2 and self.rng.random() < 0.3:
            self._replenish(sku, loc)
        return loc

    def _replenish(self, sku: str, loc: str) -> None:
        self.producers["wms"].emit(
            EventKind.RECEIVED, sku, loc, RESTOCK_UNITS, reason="replenishment"
        )
        self.arriving.append((self.sent + RECEIPT_DELAY_EVENTS, sku, loc))


def run_simulation(
    settings: Settings, events: int = 0, rate: float = 20.0, sku_count: int = 20, seed: int = 7
) -> int:
    """Stock every SKU, then send `events` events in all (0: until interrupted) at `rate` per
    second (0: as fast as Kafka takes them). Returns the number of events sent."""
    simulation = Simulation(settings, sku_count, seed)
    simulation.stock()
    interval = 1.0 / rate if rate > 0 else 0.0
    next_at = time.monotonic()
    last_report = time.monotonic()
    try:
        while events == 0 or simulation.sent < events:
            simulation.step()
            now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_S:
                log.info(
                    "simulation_progress",
                    events_sent=simulation.sent,
                    open_orders=len(simulation.open_orders),
                    sold_out=simulation.sold_out,
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
        simulation.flush()
    log.info("simulation_finished", events_sent=simulation.sent)
    return simulation.sent
