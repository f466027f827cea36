"""GET / : the API's index, every route the app serves with one line on what it does, and where
the dashboard is. Built from the app's router when asked, so a route added anywhere is listed
(with its handler's first docstring line when DESCRIPTIONS does not know it)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from stocksync.api.responses import json_response

DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("GET", "/"): "this index",
    ("GET", "/v1/atp/{sku}"): "a SKU's ATP at every location and channel (?channel= for one)",
    ("GET", "/v1/atp/{sku}/history"): "applied events of a SKU, newest first (operator key)",
    ("POST", "/v1/atp/batch"): 'many SKUs at once: {"skus": [...], "channel": optional}',
    ("GET", "/v1/skus"): "SKUs in key order with channel quantities (?prefix=&below_atp=&channel=)",
    ("GET", "/v1/reservations"): "reservations, live then ended (?channel=&sku=&status=)",
    ("POST", "/v1/reservations"): "hold units for a channel (Idempotency-Key honoured)",
    ("GET", "/v1/reservations/{id}"): "a reservation: held, confirmed, or how it ended",
    ("DELETE", "/v1/reservations/{id}"): "release a held reservation",
    ("POST", "/v1/reservations/{id}/confirm"): "confirm a hold: it becomes an order line",
    ("POST", "/v1/reservations/{id}/extend"): 'extend a hold: {"ttl_seconds": n}',
    ("POST", "/v1/reservations/{id}/cancel"): "cancel a confirmed order line",
    ("GET", "/v1/channels/{channel}/skus/{sku}/history"): (
        "every quantity published to a channel for a SKU, newest first, with its cause"
    ),
    ("GET", "/v1/alerts"): "alerts from the alerts topic, newest first (?type=&sku=&since=)",
    ("GET", "/v1/stream"): "server-sent events of a SKU and the worker (the dashboard's feed)",
    ("GET", "/dashboard"): "the live dashboard (?sku=)",
    ("GET", "/dashboard/{name}"): "the dashboard's static files",
    ("GET", "/metrics"): "Prometheus metrics",
    ("GET", "/healthz"): "200 while the process runs",
    ("GET", "/readyz"): "200 once the worker serves its partitions and keeps up",
    ("GET", "/livez"): "503 once the fold has been stalled past its grace period",
}


def _description(route: web.AbstractRoute, path: str) -> str:
    known = DESCRIPTIONS.get((route.method, path))
    if known is not None:
        return known
    doc = (getattr(route.handler, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def endpoints(app: web.Application) -> list[dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue  # aiohttp adds a HEAD beside every GET
        path = route.resource.canonical
        found[(path, route.method)] = {
            "method": route.method,
            "path": path,
            "description": _description(route, path),
        }
    return [found[key] for key in sorted(found)]


async def index(request: web.Request) -> web.Response:
    base = f"{request.scheme}://{request.host}"
    return json_response(
        {
            "name": "stocksync",
            "dashboard": f"{base}/dashboard",
            "endpoints": endpoints(request.app),
        }
    )


def add_index_route(app: web.Application) -> None:
    app.router.add_get("/", index)
