"""The live dashboard: a static page (GET /dashboard) fed by server-sent events.

GET /dashboard              the page (plain HTML + JS in api/static/, no build step, no CDN)
GET /dashboard/{file}       its script and style sheet
GET /v1/stream?sku=SKU      text/event-stream: a `snapshot` event every
                            STOCKSYNC_DASHBOARD_INTERVAL_S (0.5 s): the SKU's availability per
                            location and channel, event rate, consumer lag, fold latency and
                            recent alerts

With API keys on, /v1/stream needs a key like every data route; a channel key sees its own
channel's quantity and the alerts of its locations only. The page itself holds no data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from stocksync.api.auth import scope_of
from stocksync.api.metrics import FoldTimer, WorkerStats, safe_health, total_lag
from stocksync.api.responses import error
from stocksync.api.views import sku_channel_view, sku_view
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology

STATIC_DIR = Path(__file__).parent / "static"
STATIC_FILES = {"app.js": "application/javascript", "dashboard.css": "text/css"}
RATE_WINDOW_S = 5.0  # the event rate is averaged over this much time
RATE_SAMPLE_S = 0.25
ALERTS_KEPT = 200
ALERTS_SHOWN = 20
MAX_SKU_LENGTH = 200

CLOSING = web.AppKey("stocksync_dashboard_closing", asyncio.Event)


class RecentAlerts:
    """The newest alerts (decoded Alert records), for the dashboard."""

    def __init__(self, kept: int = ALERTS_KEPT) -> None:
        self._alerts: deque[dict[str, Any]] = deque(maxlen=kept)
        self._seen: set[str] = set()
        # by type, of every alert the topic holds: what the dashboard's counters show, so they
        # survive a restart of the worker (a re-sent alert after a crash counts again)
        self.totals: Counter[str] = Counter()

    def count(self, kind: str) -> None:
        """One more alert of this type on the topic (shown or not)."""
        self.totals[kind] += 1

    def add(self, record: Mapping[str, Any]) -> None:
        """An alert to show (counting is `count`'s business)."""
        alert_id = str(record.get("alert_id", ""))
        if alert_id and alert_id in self._seen:
            return  # a re-sent alert after a worker crash
        if len(self._alerts) == self._alerts.maxlen:
            self._seen.discard(str(self._alerts[0].get("alert_id", "")))
        self._seen.add(alert_id)
        self._alerts.append(
            {
                key: record.get(key)
                for key in (
                    "alert_id",
                    "type",
                    "sku",
                    "channel",
                    "location",
                    "quantity",
                    "previous",
                    "as_of",
                    "message",
                )
            }
        )

    def recent(
        self,
        *,
        channel: str | None = None,
        locations: frozenset[str] | None = None,
        critical: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first. With a channel: its alerts and those of the locations it sells from.
        `critical`: only oversell and drift alerts (True), only the others (False)."""
        out = []
        for alert in reversed(self._alerts):
            if critical is not None and is_critical(alert) != critical:
                continue
            if channel is not None and not (
                alert["channel"] == channel
                or (alert["channel"] is None and locations and alert["location"] in locations)
            ):
                continue
            out.append(alert)
            if len(out) == ALERTS_SHOWN:
                break
        return out


def is_critical(alert: Mapping[str, Any]) -> bool:
    """Oversell, drift and unknown-location alerts: the ones an operator acts on."""
    kind = str(alert.get("type") or "")
    return kind in ("OVERSELL", "UNKNOWN_LOCATION") or "DRIFT" in kind


class EventRate:
    """Events applied per second over the last few seconds, from a growing counter."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.samples: deque[tuple[float, int]] = deque()

    def update(self, applied: int) -> float | None:
        now = self.clock()
        if not self.samples or now - self.samples[-1][0] >= RATE_SAMPLE_S:
            self.samples.append((now, applied))
        while len(self.samples) > 2 and now - self.samples[0][0] > RATE_WINDOW_S:
            self.samples.popleft()
        if len(self.samples) < 2:
            return None
        (t0, a0), (t1, a1) = self.samples[0], self.samples[-1]
        return round(max(0, a1 - a0) / (t1 - t0), 1) if t1 > t0 else None


class LiveView:
    """What a snapshot is made of; each piece optional, so the page works in unit tests."""

    def __init__(
        self,
        stats: WorkerStats | None = None,
        fold: FoldTimer | None = None,
        alerts: RecentAlerts | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stats = stats
        self.fold = fold
        self.alerts = alerts or RecentAlerts()
        self.rate = EventRate(clock)

    def system(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.stats is not None:
            counters = dict(self.stats.counters())
            health = safe_health(self.stats)
            lags = self.stats.partition_lag()
            out.update(
                ready=bool(health.get("ready")),
                partitions=health.get("partitions"),
                topology_version=health.get("topology_version"),
                applied=counters.get("applied", 0),
                duplicates=counters.get("duplicates", 0),
                dead_lettered=counters.get("dead_lettered", 0),
                # from the alerts topic, not this process: they survive a restart
                oversells=self.alerts.totals["OVERSELL"],
                alerts=sum(self.alerts.totals.values()),
                # drift is detected by the connectors: their DRIFT alerts, seen on the topic
                drift_alerts=self.alerts.totals["DRIFT"],
                events_per_s=self.rate.update(counters.get("applied", 0)),
                lag_total=total_lag(lags),
                lag=[
                    {"topic": item.topic, "partition": item.partition, "lag": item.lag}
                    for item in lags
                ],
            )
        if self.fold is not None:
            out["latency"] = self.fold.summary()
        return out


def snapshot(
    view: LiveView,
    row: SkuRow | None,
    topology: Topology,
    sku: str | None,
    scope: str | None,
) -> dict[str, Any]:
    """One frame of the dashboard. `scope`: the only channel the caller may see."""
    item: dict[str, Any] | None = None
    if row is not None:
        item = sku_view(row, topology) if scope is None else sku_channel_view(row, topology, scope)
    locations = (
        frozenset(topology.channels[scope].locations)
        if scope is not None and scope in topology.channels
        else None
    )
    return {
        "at": int(time.time() * 1000),
        "sku": sku,
        "scope": scope,
        "item": item,
        "system": view.system(),
        "critical_alerts": view.alerts.recent(channel=scope, locations=locations, critical=True),
        "alerts": view.alerts.recent(channel=scope, locations=locations, critical=False),
    }


def sse_frame(name: str, body: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n".encode()


def add_dashboard_routes(
    app: web.Application,
    rows: Callable[[str], SkuRow | None],
    topology: Callable[[], Topology],
    view: LiveView,
    interval_s: float = 0.5,
) -> None:
    app[CLOSING] = asyncio.Event()

    async def close_streams(app: web.Application) -> None:
        app[CLOSING].set()

    app.on_shutdown.append(close_streams)

    async def page(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            STATIC_DIR / "dashboard.html", headers={"Cache-Control": "no-cache"}
        )

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            return error(404, "not_found", f"no dashboard file {name!r}")
        return web.FileResponse(
            STATIC_DIR / name,
            headers={"Content-Type": STATIC_FILES[name], "Cache-Control": "no-cache"},
        )

    async def stream(request: web.Request) -> web.StreamResponse:
        sku = request.query.get("sku") or None
        if sku is not None and len(sku) > MAX_SKU_LENGTH:
            return error(400, "invalid_request", f"sku: at most {MAX_SKU_LENGTH} characters")
        scope = scope_of(request)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # proxies: do not buffer the stream
            }
        )
        await response.prepare(request)
        closing = request.app[CLOSING]
        await response.write(f"retry: {int(interval_s * 2000)}\n\n".encode())
        try:
            while not closing.is_set():
                frame = snapshot(view, rows(sku) if sku else None, topology(), sku, scope)
                await response.write(sse_frame("snapshot", frame))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closing.wait(), interval_s)
        except ConnectionResetError:
            pass  # the browser went away
        return response

    app.router.add_get("/dashboard", page)
    app.router.add_get("/dashboard/{name}", static)
    app.router.add_get("/v1/stream", stream)
