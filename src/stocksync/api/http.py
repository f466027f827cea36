"""aiohttp handlers of the ATP API. The worker supplies an AtpReader; this module knows no faust.

GET  /v1/atp/{sku}[?channel=c]   one SKU, every location and channel (or one channel)
GET  /v1/atp/{sku}/history       recent applied events, quantities after each, why channels moved
POST /v1/atp/batch               {"skus": [...], "channel": optional} -> many SKUs at once
GET  /healthz                    process is up
GET  /readyz                     200 once partitions are assigned and the table recovered
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stocksync.api.views import sku_channel_view, sku_view
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology

MAX_BATCH = 1000
MAX_BODY_BYTES = 256 * 1024


class AtpReader(Protocol):
    def row(self, sku: str) -> SkuRow | None: ...

    def topology(self) -> Topology: ...

    def history_of(self, sku: str) -> list[dict[str, Any]] | None: ...

    def health(self) -> dict[str, Any]: ...


class BatchLookup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    skus: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    channel: str | None = None


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def error(http_status: int, code: str, message: str, **extra: Any) -> web.Response:
    return json_response({**extra, "error": code, "message": message}, http_status)


def _check_channel(topology: Topology, channel: str | None) -> web.Response | None:
    if channel is not None and channel not in topology.channels:
        return error(
            400,
            "unknown_channel",
            f"channel {channel!r} is not in the topology (version {topology.version})",
            known=sorted(topology.channels),
        )
    return None


def build_http_app(reader: AtpReader) -> web.Application:
    async def get_atp(request: web.Request) -> web.Response:
        sku = request.match_info["sku"]
        channel = request.query.get("channel")
        topology = reader.topology()
        if (bad := _check_channel(topology, channel)) is not None:
            return bad
        row = reader.row(sku)
        if row is None:
            return error(404, "unknown_sku", f"no event has been applied for SKU {sku!r}", sku=sku)
        if channel is None:
            return json_response(sku_view(row, topology))
        return json_response(sku_channel_view(row, topology, channel))

    async def get_history(request: web.Request) -> web.Response:
        sku = request.match_info["sku"]
        entries = reader.history_of(sku)
        if entries is None:
            return error(404, "unknown_sku", f"no event has been applied for SKU {sku!r}", sku=sku)
        return json_response({"sku": sku, "entries": entries})

    async def batch_atp(request: web.Request) -> web.Response:
        try:
            lookup = BatchLookup.model_validate_json(await request.read())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return error(
                400,
                "invalid_request",
                f'{where}: {first["msg"]}; send {{"skus": [..up to {MAX_BATCH}], '
                f'"channel": optional}}',
            )
        topology = reader.topology()
        if (bad := _check_channel(topology, lookup.channel)) is not None:
            return bad
        items: dict[str, Any] = {}
        unknown: list[str] = []
        for sku in dict.fromkeys(lookup.skus):
            row = reader.row(sku)
            if row is None:
                unknown.append(sku)
            elif lookup.channel is None:
                items[sku] = sku_view(row, topology)
            else:
                items[sku] = sku_channel_view(row, topology, lookup.channel)
        return json_response({"items": items, "unknown": unknown})

    async def healthz(_request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        health = reader.health()
        return json_response(health, 200 if health.get("ready") else 503)

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/v1/atp/{sku}", get_atp)
    app.router.add_get("/v1/atp/{sku}/history", get_history)
    app.router.add_post("/v1/atp/batch", batch_atp)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
