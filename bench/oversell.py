"""Oversell simulation: how many accepted online orders would be cancelled for want of stock,
under periodic batch sync versus stocksync streaming, with and without reservations.

A seeded discrete-event simulation of one retail day at one-second resolution; no Kafka. The
stocksync strategies fold every event with the project's own pure domain (apply_event,
apply_command, channel_atp, parse_topology); channels display what the fold published.

    .venv/bin/python bench/oversell.py [--skus 500] [--seed 1] [--quick]

Writes bench/results/oversell.json and docs/oversell.png (--quick: a small smoke run that
prints the table and writes nothing).

The model, in short:
- Truth: physical units per SKU-location, and units committed to accepted online orders
  (picked, waiting to ship). Free = physical - committed.
- Store POS sees its own real shelf: a customer buys if a free unit is there, whatever any
  system says. Web and app ship from the DCs and the ship-from-store stores; the marketplace
  ships from the DCs. Their customers order only if the channel *displays* a quantity > 0.
- An online order is allocated to the channel location with the most free units; if none has
  one, it is an *oversold order* (it would be cancelled). A customer who saw 0 while the
  channel's locations held a free unit is a *lost sale*.
- The same customers (arrival time, channel, SKU) and receipts, drawn once from the seed,
  are replayed under every strategy.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python bench/oversell.py`
    sys.path.insert(0, str(REPO))

from bench.common import write_result  # noqa: E402
from stocksync.domain.effects import ChannelQuantityChanged, OversellDetected  # noqa: E402
from stocksync.domain.events import EventKind, InventoryEvent  # noqa: E402
from stocksync.domain.fold import apply_event  # noqa: E402
from stocksync.domain.reservations import (  # noqa: E402
    CommandKind,
    ReplyStatus,
    ReservationCommand,
    apply_command,
)
from stocksync.domain.state import SkuRow, channel_atp  # noqa: E402
from stocksync.domain.topology import Topology, parse_topology  # noqa: E402

DAY_S = 24 * 3600
DAY_START_MS = 1_795_737_600_000  # 2026-11-27T00:00:00Z: event time of second 0
PNG = REPO / "docs" / "oversell.png"
BATCH_INTERVALS_MIN = (1, 5, 15, 30, 60, 240)

# 2 DCs, 4 stores (two of them ship web/app orders). Same policies under every strategy.
TOPOLOGY_DATA: dict[str, Any] = {
    "version": 1,
    "locations": {
        "dc-east": {"kind": "dc", "groups": ["dcs"]},
        "dc-west": {"kind": "dc", "groups": ["dcs"]},
        "store-1": {"kind": "store", "groups": ["stores", "ship-from-store"]},
        "store-2": {"kind": "store", "groups": ["stores", "ship-from-store"]},
        "store-3": {"kind": "store", "groups": ["stores"]},
        "store-4": {"kind": "store", "groups": ["stores"]},
    },
    "channels": {
        "web": {"sources": ["dcs", "ship-from-store"]},
        "app": {"sources": ["dcs", "ship-from-store"]},
        "marketplace": {
            "sources": ["dcs"],
            "policy": {"buffer_percent": 10, "buffer_units": 1},
        },
        "pos-store-1": {"sources": ["store-1"]},
        "pos-store-2": {"sources": ["store-2"]},
        "pos-store-3": {"sources": ["store-3"]},
        "pos-store-4": {"sources": ["store-4"]},
    },
}
OWN_CHECKOUT = ("web", "app")  # channels that can reserve before they sell
ONLINE = ("web", "app", "marketplace")  # channels that sell what they display
STORES = ("store-1", "store-2", "store-3", "store-4")
POS = tuple(f"pos-{s}" for s in STORES)
CHANNELS = ONLINE + POS

# Share of the day's demand in each hour (normalised below).
# fmt: off
ONLINE_HOURS = (2, 1, 1, 1, 1, 2, 4, 7, 9, 10, 11, 12,
                13, 12, 11, 11, 12, 14, 17, 19, 19, 16, 11, 6)
POS_HOURS = (0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 8, 10,
             13, 12, 9, 8, 10, 13, 14, 11, 6, 0, 0, 0)  # stores open 09:00-21:00
# fmt: on

# Heap priorities within one second: stock movements, then syncs, then customers.
P_STOCK, P_SYNC, P_CUSTOMER = 0, 1, 2
# Scheduled work kinds.
K_RECEIPT, K_FULFIL, K_SYNC, K_CUSTOMER = 0, 1, 2, 3


@dataclass(frozen=True)
class Params:
    skus: int = 500
    seed: int = 1
    zipf_s: float = 1.0  # popularity of the SKU of rank r is 1 / r**s
    # Customers per day at 500 SKUs (scaled with --skus so each SKU sees the same demand).
    web_per_day: float = 14_000
    app_per_day: float = 9_000
    marketplace_per_day: float = 6_000
    pos_per_store_per_day: float = 1_200
    online_from_dcs: float = 0.8  # share of web/app demand planned on the DCs (rest: stores)
    # Opening stock = expected day's demand at the location x cover, cover ~ U(min, max).
    cover_min: float = 0.25
    cover_max: float = 1.25
    # Receipts (trucks at fixed times, for a random share of SKUs): qty = demand x U(0.2, 0.5).
    # Off the hour, so that no batch sync happens to run just after a truck.
    receipt_share: float = 0.3
    dc_receipts_at_s: tuple[int, ...] = (6 * 3600 + 20 * 60, 14 * 3600 + 40 * 60)
    store_receipts_at_s: tuple[int, ...] = (7 * 3600 + 50 * 60,)
    # Flash sale on the retailer's own web and app.
    flash_start_h: float = 12.0
    flash_minutes: int = 30
    flash_multiplier: float = 10.0
    flash_skus: int = 20
    ship_delay_s: int = 3600  # accepted order -> FULFILLED (does not change ATP)
    propagation_s: int = 1  # event -> channel shows it (p99 50 ms, rounded up to 1 s)
    marketplace_lag_s: int = 60  # extra: the marketplace applies a quantity this much later
    hold_ttl_s: int = 900


@dataclass(frozen=True)
class Strategy:
    name: str
    interval_min: int | None = None  # batch: sync period; None: streaming
    reserve: bool = False  # own checkout reserves against the fold before it sells

    @property
    def streaming(self) -> bool:
        return self.interval_min is None


def strategies(intervals: tuple[int, ...] = BATCH_INTERVALS_MIN) -> list[Strategy]:
    return [
        *(Strategy(f"batch-{n}m", interval_min=n) for n in intervals),
        Strategy("streaming"),
        Strategy("streaming+reservations", reserve=True),
    ]


@dataclass
class Workload:
    """Everything drawn from the seed; identical for every strategy."""

    params: Params
    sku_ids: list[str]
    opening: dict[str, list[int]]  # location -> units per SKU index
    receipts: list[tuple[int, str, int, int]]  # (second, location, sku index, units)
    customers: list[tuple[int, str, int]]  # (second, channel, sku index), time-ordered
    flash_skus: list[int] = field(default_factory=list)


def topology() -> Topology:
    return parse_topology(TOPOLOGY_DATA, origin="bench.oversell")


def _arrivals(rng: random.Random, per_second: float, start: int, end: int) -> list[int]:
    """Seconds of a Poisson process of the given rate over [start, end)."""
    out: list[int] = []
    if per_second <= 0:
        return out
    t = start + rng.expovariate(per_second)
    while t < end:
        out.append(int(t))
        t += rng.expovariate(per_second)
    return out


def make_workload(params: Params) -> Workload:
    rng = random.Random(params.seed)
    n = params.skus
    scale = n / 500
    weights = [1.0 / (rank + 1) ** params.zipf_s for rank in range(n)]
    total_w = sum(weights)
    share = [w / total_w for w in weights]
    sku_ids = [f"SKU-{i + 1:05d}" for i in range(n)]
    flash = list(range(min(params.flash_skus, n)))
    flash_w = sum(share[i] for i in flash)
    flash_start = int(params.flash_start_h * 3600)
    flash_end = flash_start + params.flash_minutes * 60
    flash_hour_w = ONLINE_HOURS[int(params.flash_start_h)] / sum(ONLINE_HOURS)
    extra = params.flash_multiplier - 1

    daily = {
        "web": params.web_per_day * scale,
        "app": params.app_per_day * scale,
        "marketplace": params.marketplace_per_day * scale,
        **dict.fromkeys(POS, params.pos_per_store_per_day * scale),
    }
    cum = list(_accumulate(weights))
    cum_flash = cum[: len(flash)]
    customers: list[tuple[int, str, int]] = []
    for channel in CHANNELS:
        hours = POS_HOURS if channel in POS else ONLINE_HOURS
        norm = sum(hours)
        for hour, w in enumerate(hours):
            rate = daily[channel] * w / norm / 3600
            seconds = _arrivals(rng, rate, hour * 3600, (hour + 1) * 3600)
            picks = rng.choices(range(n), cum_weights=cum, k=len(seconds))
            customers.extend(zip(seconds, [channel] * len(seconds), picks, strict=True))
        if channel in OWN_CHECKOUT and flash:
            rate = extra * daily[channel] * flash_hour_w / 3600 * flash_w
            seconds = _arrivals(rng, rate, flash_start, flash_end)
            picks = rng.choices(flash, cum_weights=cum_flash, k=len(seconds))
            customers.extend(zip(seconds, [channel] * len(seconds), picks, strict=True))
    customers.sort(key=lambda c: c[0])  # stable: ties keep their drawn order

    # Expected day's demand per SKU-location (flash demand included), for sizing stock.
    online = daily["web"] + daily["app"]
    flash_units = online * extra * flash_hour_w * (params.flash_minutes / 60) / flash_w
    opening: dict[str, list[int]] = {}
    expected: dict[str, list[float]] = {}
    for loc in TOPOLOGY_DATA["locations"]:
        row = []
        for i in range(n):
            own = online * share[i] + (flash_units * share[i] if i in flash else 0.0)
            if loc.startswith("dc-"):
                d = own * params.online_from_dcs / 2 + daily["marketplace"] * share[i] / 2
            else:
                d = daily[f"pos-{loc}"] * share[i]
                if "ship-from-store" in TOPOLOGY_DATA["locations"][loc]["groups"]:
                    d += own * (1 - params.online_from_dcs) / 2
            row.append(d)
        expected[loc] = row
        opening[loc] = [
            max(0, round(d * rng.uniform(params.cover_min, params.cover_max))) for d in row
        ]

    receipts: list[tuple[int, str, int, int]] = []
    for loc, row in expected.items():
        trucks = params.dc_receipts_at_s if loc.startswith("dc-") else params.store_receipts_at_s
        for at in trucks:
            for i, d in enumerate(row):
                if rng.random() < params.receipt_share:
                    units = round(d * rng.uniform(0.2, 0.5))
                    if units > 0:
                        receipts.append((at, loc, i, units))
    return Workload(params, sku_ids, opening, receipts, customers, flash)


def _accumulate(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out


class Day:
    """One strategy over one workload. Truth in plain ints; stocksync state in domain rows."""

    def __init__(self, workload: Workload, strategy: Strategy, topo: Topology) -> None:
        self.w = workload
        self.p = workload.params
        self.s = strategy
        self.topo = topo
        n = len(workload.sku_ids)
        self.locations = sorted(topo.locations)
        self.phys = {loc: [0] * n for loc in self.locations}
        self.committed = {loc: [0] * n for loc in self.locations}
        self.rows: list[SkuRow | None] = [None] * n
        self.seq: dict[str, int] = {}
        self.displayed = {ch: [0] * n for ch in ONLINE}
        self.pending: dict[str, deque[tuple[int, int, int]]] = {ch: deque() for ch in ONLINE}
        self.dirty: set[int] = set()
        self.channel_locs = {ch: sorted(topo.channels[ch].locations) for ch in ONLINE}
        # A batch sync writes the channel's quantity as it runs; streaming shows it later.
        base = self.p.propagation_s if strategy.streaming else 0
        self.delay = dict.fromkeys(ONLINE, base)
        self.delay["marketplace"] += self.p.marketplace_lag_s
        self.heap: list[tuple[int, int, int, int, tuple[Any, ...]]] = []
        self.order = 0
        self.holds = 0
        self.stats: dict[str, Any] = {
            "orders": dict.fromkeys(ONLINE, 0),
            "oversold": dict.fromkeys(ONLINE, 0),
            "lost_sales": dict.fromkeys(ONLINE, 0),
            "rejected_at_checkout": 0,
            "pos_sales": 0,
            "pos_walkaways": 0,
            "oversell_alerts": 0,
            "events_folded": 0,
            "commands": 0,
        }

    # -- stocksync: the fold and the projections the channels read

    def fold(self, i: int, kind: EventKind, loc: str, source: str, t: int, qty: int = 1) -> None:
        seq = self.seq[source] = self.seq.get(source, 0) + 1
        event = InventoryEvent(
            event_id=f"{source}-{seq}",
            source=source,
            source_seq=seq,
            sku=self.w.sku_ids[i],
            location=loc,
            quantity=qty,
            occurred_at=DAY_START_MS + t * 1000,
            kind=kind,
        )
        result = apply_event(self.rows[i], event, self.topo)
        self.rows[i] = result.row
        self.stats["events_folded"] += 1
        self.effects(i, t, result.effects)

    def command(self, cmd: ReservationCommand, i: int, t: int) -> Any:
        result = apply_command(self.rows[i], cmd, self.topo)
        self.rows[i] = result.row
        self.stats["commands"] += 1
        self.effects(i, t, result.effects)
        return result.reply

    def effects(self, i: int, t: int, effects: tuple[Any, ...]) -> None:
        for effect in effects:
            if isinstance(effect, OversellDetected):
                self.stats["oversell_alerts"] += 1
            elif isinstance(effect, ChannelQuantityChanged) and effect.channel in self.pending:
                if self.s.streaming:
                    self.pending[effect.channel].append(
                        (t + self.delay[effect.channel], i, effect.quantity)
                    )
                else:
                    self.dirty.add(i)

    def atp(self, i: int, channel: str) -> int:
        row = self.rows[i]
        return 0 if row is None else channel_atp(row, self.topo, channel)

    def sync(self, t: int) -> None:
        """Batch: refresh every channel's quantity of every SKU changed since the last sync."""
        for i in sorted(self.dirty):
            for ch in ONLINE:
                self.pending[ch].append((t + self.delay[ch], i, self.atp(i, ch)))
        self.dirty.clear()

    def show(self, t: int) -> None:
        for ch, queue in self.pending.items():
            shown = self.displayed[ch]
            while queue and queue[0][0] <= t:
                _, i, qty = queue.popleft()
                shown[i] = qty

    # -- the physical world

    def free(self, loc: str, i: int) -> int:
        return self.phys[loc][i] - self.committed[loc][i]

    def schedule(self, t: int, priority: int, kind: int, payload: tuple[Any, ...]) -> None:
        self.order += 1
        heapq.heappush(self.heap, (t, priority, self.order, kind, payload))

    def customer(self, t: int, channel: str, i: int) -> None:
        if channel in POS:
            store = channel[len("pos-") :]
            if self.free(store, i) > 0:
                self.phys[store][i] -= 1
                self.stats["pos_sales"] += 1
                self.fold(i, EventKind.SOLD, store, channel, t)
            else:
                self.stats["pos_walkaways"] += 1
            return
        locs = self.channel_locs[channel]
        if self.displayed[channel][i] <= 0:
            if any(self.free(loc, i) > 0 for loc in locs):
                self.stats["lost_sales"][channel] += 1
            return
        if self.s.reserve and channel in OWN_CHECKOUT:
            self.checkout_with_hold(t, channel, i)
            return
        # The channel accepts the order, then the order system allocates it.
        loc = max(locs, key=lambda name: self.free(name, i))  # ties: first by name
        self.stats["orders"][channel] += 1
        self.fold(i, EventKind.RESERVED, loc, channel, t)
        if self.free(loc, i) > 0:
            self.committed[loc][i] += 1
            self.schedule(t + self.p.ship_delay_s, P_STOCK, K_FULFIL, (i, loc))
        else:
            self.stats["oversold"][channel] += 1
            self.fold(i, EventKind.RELEASED, loc, channel, t)  # cancelled

    def checkout_with_hold(self, t: int, channel: str, i: int) -> None:
        self.holds += 1
        rid = f"{channel}-h{self.holds}"
        at = DAY_START_MS + t * 1000
        sku = self.w.sku_ids[i]
        reply = self.command(
            ReservationCommand(
                request_id=f"{rid}-reserve",
                kind=CommandKind.RESERVE,
                sku=sku,
                reservation_id=rid,
                issued_at=at,
                channel=channel,
                quantity=1,
                ttl_ms=self.p.hold_ttl_s * 1000,
            ),
            i,
            t,
        )
        if reply.status is not ReplyStatus.HELD:
            self.stats["rejected_at_checkout"] += 1
            return
        loc = reply.location
        self.command(
            ReservationCommand(f"{rid}-confirm", CommandKind.CONFIRM, sku, rid, issued_at=at),
            i,
            t,
        )
        self.stats["orders"][channel] += 1
        if self.free(loc, i) > 0:
            self.committed[loc][i] += 1
            self.schedule(t + self.p.ship_delay_s, P_STOCK, K_FULFIL, (i, loc))
        else:  # the fold promised a unit that is not there: would be a stocksync bug
            self.stats["oversold"][channel] += 1
            self.fold(i, EventKind.RELEASED, loc, channel, t)

    # -- the day

    def run(self, progress: str = "") -> dict[str, Any]:
        started = time.perf_counter()
        for loc, units in self.w.opening.items():
            for i, qty in enumerate(units):
                if qty > 0:
                    self.phys[loc][i] = qty
                    self.fold(i, EventKind.RECEIVED, loc, "wms", 0, qty)
        # The day starts with every channel showing the truth.
        for ch in ONLINE:
            self.pending[ch].clear()
            self.displayed[ch] = [self.atp(i, ch) for i in range(len(self.w.sku_ids))]
        self.dirty.clear()

        for t, loc, i, qty in self.w.receipts:
            self.schedule(t, P_STOCK, K_RECEIPT, (i, loc, qty))
        if not self.s.streaming:
            period = int(self.s.interval_min or 0) * 60
            for t in range(period, DAY_S, period):
                self.schedule(t, P_SYNC, K_SYNC, ())
        customers = self.w.customers
        c = 0
        next_report = 3600 if progress and sys.stderr.isatty() else DAY_S
        while True:
            # Customers are pre-sorted; the heap holds receipts, syncs and shipments.
            if c < len(customers) and (
                not self.heap or (customers[c][0], P_CUSTOMER) < self.heap[0][:2]
            ):
                t, channel, i = customers[c]
                c += 1
                self.show(t)
                self.customer(t, channel, i)
            elif self.heap:
                t, _, _, kind, payload = heapq.heappop(self.heap)
                if t >= DAY_S:
                    break
                self.show(t)
                if kind == K_SYNC:
                    self.sync(t)
                elif kind == K_RECEIPT:
                    i, loc, qty = payload
                    self.phys[loc][i] += qty
                    self.fold(i, EventKind.RECEIVED, loc, "wms", t, qty)
                else:  # K_FULFIL
                    i, loc = payload
                    self.phys[loc][i] -= 1
                    self.committed[loc][i] -= 1
                    self.fold(i, EventKind.FULFILLED, loc, "fulfilment", t)
            else:
                break
            if t >= next_report:
                sys.stderr.write(f"\r{progress} {t // 3600:02d}:00")
                sys.stderr.flush()
                next_report = (t // 3600 + 1) * 3600
        return self.summary(time.perf_counter() - started)

    def fold_matches_truth(self) -> bool:
        for loc in self.locations:
            for i, row in enumerate(self.rows):
                stock = None if row is None else row.locations.get(loc)
                on_hand = 0 if stock is None else stock.on_hand
                reserved = 0 if stock is None else stock.reserved
                if on_hand != self.phys[loc][i] or reserved != self.committed[loc][i]:
                    return False
        return True

    def summary(self, seconds: float) -> dict[str, Any]:
        st = self.stats
        orders = sum(st["orders"].values())
        oversold = sum(st["oversold"].values())
        n = len(self.w.sku_ids)
        return {
            "strategy": self.s.name,
            "interval_min": self.s.interval_min,
            "reservations": self.s.reserve,
            "orders": orders,
            "oversold": oversold,
            "oversold_pct": round(100 * oversold / orders, 3) if orders else 0.0,
            "own_checkout_oversold": sum(st["oversold"][ch] for ch in OWN_CHECKOUT),
            "marketplace_oversold": st["oversold"]["marketplace"],
            "lost_sales": sum(st["lost_sales"].values()),
            "rejected_at_checkout": st["rejected_at_checkout"],
            "by_channel": {
                ch: {
                    "orders": st["orders"][ch],
                    "oversold": st["oversold"][ch],
                    "lost_sales": st["lost_sales"][ch],
                }
                for ch in ONLINE
            },
            "pos_sales": st["pos_sales"],
            "pos_walkaways": st["pos_walkaways"],
            "oversell_alerts": st["oversell_alerts"],
            "events_folded": st["events_folded"],
            "commands": st["commands"],
            "web_sold_out_at_close": sum(1 for i in range(n) if self.atp(i, "web") == 0),
            "flash_skus_sold_out_at_close": sum(
                1 for i in self.w.flash_skus if self.atp(i, "web") == 0
            ),
            "fold_matches_truth": self.fold_matches_truth(),
            "seconds": round(seconds, 2),
        }


def simulate(
    params: Params, chosen: list[Strategy] | None = None, progress: bool = False
) -> list[dict[str, Any]]:
    topo = topology()
    workload = make_workload(params)
    chosen = strategies() if chosen is None else chosen
    results = []
    for k, strategy in enumerate(chosen, 1):
        label = f"[{k}/{len(chosen)}] {strategy.name}" if progress else ""
        result = Day(workload, strategy, topo).run(progress=label)
        if progress:
            sys.stderr.write(
                f"\r{label}: {result['orders']:,} orders, {result['oversold']:,} oversold, "
                f"{result['seconds']:.1f} s\n"
            )
            sys.stderr.flush()
        results.append(result)
    return results


def table(results: list[dict[str, Any]]) -> str:
    head = (
        f"{'strategy':<24}{'orders':>8}{'oversold':>10}{'% cancel':>10}"
        f"{'web/app':>9}{'market':>8}{'lost':>8}{'rejected':>10}"
    )
    lines = [head, "-" * len(head)]
    lines.extend(
        f"{r['strategy']:<24}{r['orders']:>8,}{r['oversold']:>10,}{r['oversold_pct']:>9.2f}%"
        f"{r['own_checkout_oversold']:>9,}{r['marketplace_oversold']:>8,}"
        f"{r['lost_sales']:>8,}{r['rejected_at_checkout']:>10,}"
        for r in results
    )
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], params: Params, path: Path) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    batch = [r for r in results if r["interval_min"] is not None]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    xs = [r["interval_min"] for r in batch]
    ys = [r["oversold_pct"] for r in batch]
    ax.plot(xs, ys, "o-", color="tab:red", label="periodic batch sync")
    for x, y in zip(xs, ys, strict=True):
        ax.annotate(f"{y:.2f}%", (x, y), textcoords="offset points", xytext=(0, 8), ha="center")
    styles = {"streaming": ("tab:blue", "--"), "streaming+reservations": ("tab:green", ":")}
    for r in results:
        if r["strategy"] in styles:
            color, style = styles[r["strategy"]]
            ax.axhline(
                r["oversold_pct"],
                color=color,
                linestyle=style,
                linewidth=2,
                label=f"stocksync {r['strategy']}: {r['oversold_pct']:.2f}%",
            )
    ax.set_xscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{x} min" for x in xs])
    ax.minorticks_off()
    top = max([*ys, 1.0]) * 1.15
    ax.set_ylim(bottom=-0.03 * top, top=top)  # lines at 0% stay visible above the axis
    ax.set_xlabel("batch sync interval (log scale)")
    ax.set_ylabel("oversold orders (% of online + marketplace orders)")
    ax.set_title(
        f"Orders that would be cancelled: one simulated day, {params.skus} SKUs x 6 locations, "
        f"seed {params.seed}",
        fontsize=10,
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    fig.text(
        0.01,
        0.01,
        f"flash sale {params.flash_minutes} min x{params.flash_multiplier:g} on top "
        f"{params.flash_skus} SKUs; marketplace applies updates {params.marketplace_lag_s} s "
        f"late; streaming shows a change {params.propagation_s} s after the event",
        fontsize=7,
        color="dimgray",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skus", type=int, default=None, help="SKUs (default 500; quick 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--marketplace-lag", type=int, default=Params.marketplace_lag_s, metavar="S"
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run; writes nothing")
    args = parser.parse_args(argv)
    skus = args.skus if args.skus is not None else (100 if args.quick else 500)
    if skus < 1:
        parser.error("--skus must be >= 1")
    params = Params(skus=skus, seed=args.seed, marketplace_lag_s=args.marketplace_lag)
    started = time.perf_counter()
    results = simulate(params, progress=True)
    elapsed = time.perf_counter() - started
    print(table(results))
    print(f"({elapsed:.1f} s for {len(results)} strategies)")
    if args.quick:
        return
    chosen = strategies()
    write_result(
        "oversell",
        {"results": results, "seconds": round(elapsed, 1)},
        {
            **asdict(params),
            "strategies": [asdict(s) for s in chosen],
            "topology": TOPOLOGY_DATA,
            "day_start_ms": DAY_START_MS,
        },
    )
    plot(results, params, PNG)
    print(f"wrote {PNG.relative_to(REPO)}")


if __name__ == "__main__":
    main()
