"""GET /v1/alerts?type=&sku=&channel=&since=&limit=&cursor= : alerts read from the alerts topic
on demand, newest first (service/alert_pages.py), so every alert the topic keeps can be
queried; any worker answers, as every worker may read the whole topic.

`since` (epoch ms or RFC 3339) is matched against the time Kafka recorded each alert; the
cursor holds, per partition, the offsets still to go through. A page reads at most
SCAN_BUDGET records: with a filter that matches little it may hold fewer than `limit` items,
with a next_cursor to go on. The reads run in a thread, off the event loop. A channel key sees
the alerts about its channel only (LOW_STOCK, OUT_OF_STOCK, BACK_IN_STOCK, DRIFT).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import structlog
from aiohttp import web
from confluent_kafka import KafkaException

from stocksync.api.auth import forbid_channel, scope_of
from stocksync.api.fanout import unavailable
from stocksync.api.query_params import (
    BadParameter,
    answered,
    choice_param,
    cursor_param,
    limit_param,
    text_param,
    time_param,
)
from stocksync.api.responses import check_channel, error, json_response
from stocksync.domain.limits import CHANNEL_MAX, SKU_MAX
from stocksync.domain.topology import Topology
from stocksync.service.alert_pages import (
    AlertFilter,
    AlertLog,
    AlertPage,
    Ranges,
    alert_page,
    first_ranges,
)
from stocksync.service.cursors import encode_cursor

log = structlog.get_logger("stocksync.http")

ALERT_TYPES = (
    "OVERSELL",
    "LOW_STOCK",
    "OUT_OF_STOCK",
    "BACK_IN_STOCK",
    "COUNT_NOT_MERGED",
    "UNKNOWN_LOCATION",
    "DRIFT",
)
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
CHUNK = 500  # records read from a partition at a time (one fetch each)
SCAN_BUDGET = 5000  # records one page goes through at most
ORDER = "newest_first"


class AlertSource(AlertLog, Protocol):
    def close(self) -> None: ...


def _ranges(position: Any) -> Ranges | None:
    """A cursor's per-partition ranges (JSON: {"3": [floor, end]})."""
    if position is None:
        return None
    try:
        ranges = {int(p): (int(span[0]), int(span[1])) for p, span in position.items()}
        if all(len(span) == 2 for span in position.values()):
            return ranges
    except (AttributeError, TypeError, ValueError, IndexError):
        pass
    raise BadParameter(
        error(
            400,
            "bad_cursor",
            "cursor is not one this API made: pass next_cursor as it came",
            parameter="cursor",
        )
    )


class AlertRoutes:
    def __init__(self, alerts: AlertSource, topology: Callable[[], Topology]) -> None:
        self.alerts = alerts
        self.topology = topology

    def _page(self, ranges: Ranges | None, wanted: AlertFilter, limit: int) -> AlertPage:
        if ranges is None:
            ranges = first_ranges(self.alerts, wanted)
        return alert_page(self.alerts, ranges, wanted, limit, CHUNK, SCAN_BUDGET)

    async def list_alerts(self, request: web.Request) -> web.Response:
        limit = limit_param(request, DEFAULT_LIMIT, MAX_LIMIT)
        kind = choice_param(request, "type", ALERT_TYPES)
        sku = text_param(request, "sku", SKU_MAX)
        since = time_param(request, "since")
        channel = text_param(request, "channel", CHANNEL_MAX) or scope_of(request)
        if (denied := forbid_channel(request, channel)) is not None:
            return denied
        if (unknown := check_channel(self.topology(), channel)) is not None:
            return unknown
        filters = {"type": kind, "sku": sku, "channel": channel, "since": since}
        ranges = _ranges(cursor_param(request, "alerts", filters))
        wanted = AlertFilter(kind, sku, channel, since)
        try:
            page = await asyncio.to_thread(self._page, ranges, wanted, limit)
        except (KafkaException, RuntimeError, OSError) as exc:
            log.warning("alerts_unavailable", error=str(exc))
            return unavailable("alerts_unavailable", f"the alerts topic could not be read: {exc}")
        cursor = (
            None
            if page.remaining is None
            else encode_cursor(
                "alerts",
                filters,
                {str(p): [floor, end] for p, (floor, end) in sorted(page.remaining.items())},
            )
        )
        return json_response({"items": page.items, "next_cursor": cursor, "order": ORDER})

    async def close(self, _app: web.Application) -> None:
        await asyncio.to_thread(self.alerts.close)


def add_alert_routes(
    app: web.Application,
    alerts: AlertSource,
    topology: Callable[[], Topology],
) -> None:
    routes = AlertRoutes(alerts, topology)
    app.router.add_get("/v1/alerts", answered(routes.list_alerts))
    app.on_cleanup.append(routes.close)
