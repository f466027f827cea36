"""The connector's own HTTP API: reports in, status out (docs/connectors.md, "Connector HTTP
API").

  POST /v1/reports          what the channel displays: checked for drift
  GET  /v1/status           budget, counters, backlog, in flight, held offsets, exposure
  GET  /v1/published/{sku}  acknowledged / pending / in-flight value of a SKU
  GET  /healthz             the process is up
  GET  /readyz              the ledger is restored and partitions are assigned (503 before)
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from stocksync.api.protocol_errors import app_runner
from stocksync.connectors.drift import exposure
from stocksync.connectors.ledger import now_ms
from stocksync.connectors.plan import Quantity
from stocksync.connectors.reports import ReportChecker
from stocksync.connectors.settings import ConnectorSettings
from stocksync.connectors.state import ConnectorState

MAX_REPORT_BYTES = 4 * 1024 * 1024  # a full report of a large catalogue


def status_of(state: ConnectorState, config: ConnectorSettings) -> dict[str, Any]:
    plan = state.plan
    exposed = exposure(plan.published_and_true())
    return {
        "channel": config.channel,
        "endpoint": config.endpoint_url,
        "ready": state.ready,
        "budget": {"rate_per_s": config.rate_per_s, "burst": config.burst},
        "counters": {**state.counters, "plan": asdict(plan.counters)},
        "skus": len(plan.slots),
        "backlog": plan.backlog(),
        "in_flight": plan.in_flight(),
        "held_offsets": state.tracker.held(),
        "exposure": {
            "over_units": exposed.over_units,
            "under_units": exposed.under_units,
            "net_units": exposed.net_units,
            "skus_over": exposed.skus_over,
            "skus_under": exposed.skus_under,
        },
    }


def _version_view(value: Quantity | None) -> dict[str, int] | None:
    if value is None:
        return None
    return {
        "quantity": value.quantity,
        "revision": value.revision,
        "policy_version": value.policy_version,
    }


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


class AdminHttp:
    def __init__(
        self, state: ConnectorState, config: ConnectorSettings, checker: ReportChecker
    ) -> None:
        self.state = state
        self.config = config
        self.checker = checker

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REPORT_BYTES)
        app.router.add_post("/v1/reports", self.reports)
        app.router.add_get("/v1/status", self.status)
        app.router.add_get("/v1/published/{sku}", self.published)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        return app

    async def serve(self) -> web.AppRunner:
        runner = app_runner(self.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.config.http_host, self.config.http_port).start()
        return runner

    async def reports(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            items = [(str(i["sku"]), int(i["quantity"])) for i in body["items"]]
            reported_at = int(body.get("reported_at") or now_ms())
        except (ValueError, KeyError, TypeError):
            return _error(
                400,
                "invalid_request",
                'expected {"items": [{"sku": str, "quantity": int}], '
                '"reported_at": epoch ms (optional)}',
            )
        channel = body.get("channel")
        if channel is not None and channel != self.config.channel:
            return _error(
                400,
                "wrong_channel",
                f"this connector serves {self.config.channel}, not {channel}",
            )
        verdicts = self.checker.check_all(items, reported_at)
        return web.json_response(
            {
                "checked": len(items),
                **{k: v if k == "drift" else len(v) for k, v in verdicts.items()},
            }
        )

    async def status(self, _request: web.Request) -> web.Response:
        return web.json_response(status_of(self.state, self.config))

    async def published(self, request: web.Request) -> web.Response:
        slot = self.state.plan.slots.get(request.match_info["sku"])
        if slot is None:
            return _error(404, "unknown_sku", "never seen")
        return web.json_response(
            {
                "acknowledged": _version_view(slot.acked),
                "pending": _version_view(slot.pending),
                "in_flight": _version_view(slot.inflight.value if slot.inflight else None),
                "failures": slot.failures,
            }
        )

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        status = 200 if self.state.ready else 503
        return web.json_response(status_of(self.state, self.config), status=status)
