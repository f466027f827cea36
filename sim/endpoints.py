"""Simulated channel endpoints: small real HTTP services a connector pushes quantities to.

Three kinds, one aiohttp service each (own port), for the demo and the tests:
- `webshop`: takes every update at once.
- `marketplace`: enforces a request rate limit (token bucket) and answers 429 with Retry-After
  when it is exceeded, as marketplace APIs do.
- `pos`: a store till back-office; slower (latency) but unlimited.

Every endpoint keeps, per SKU, the listing it displays with the version it was told, refuses an
update older than that version (409 `stale_version`: the proof that a connector never sends an
older value after a newer one), records every request (`GET /admin/log`), lets a test tamper
with what it displays (`PUT /admin/inventory/{sku}`), and reports what it displays to
`report_url` (after a tamper, and every `report_interval_s`), the way a channel reports its
listings back.

API (JSON):
  PUT  /v1/inventory/{sku}   {"quantity", "revision", "policy_version", "as_of"?}
       200 {"status": "applied" | "unchanged" | "refreshed", ...listing}
       409 {"error": "stale_version", "current": {...}}   429 {"error": "rate_limited"}
  GET  /v1/inventory/{sku}   200 listing | 404        GET /v1/inventory  200 {"items": {...}}
  PUT  /admin/inventory/{sku} {"quantity"}  tamper with the displayed quantity (no version)
  GET  /admin/log            {"channel", "counters", "requests": [...]}
  POST /admin/faults         {"fail_next": n, "status": 503, "latency_ms": x}
  POST /admin/report         report every listing to report_url now
  GET  /healthz
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from stocksync.connectors.budget import TokenBucket

log = structlog.get_logger("stocksync.endpoints")

REPORT_CHUNK = 500


class EndpointKind(StrEnum):
    WEBSHOP = "webshop"
    MARKETPLACE = "marketplace"
    POS = "pos"


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    channel: str
    kind: EndpointKind
    port: int
    host: str = "127.0.0.1"
    rate_per_s: float | None = None  # marketplace: the limit it enforces (None: unlimited)
    burst: int = 10
    latency_ms: float = 0.0
    report_url: str | None = None  # where it reports displayed quantities (a connector)
    report_interval_s: float = 0.0  # full report this often; 0 = only after a tamper

    @classmethod
    def of(cls, data: dict[str, Any]) -> EndpointSpec:
        kind = EndpointKind(data.get("kind", "webshop"))
        defaults: dict[str, Any] = {
            EndpointKind.MARKETPLACE: {"rate_per_s": 5.0, "burst": 5},
            EndpointKind.POS: {"latency_ms": 20.0},
            EndpointKind.WEBSHOP: {},
        }[kind]
        return cls(**{**defaults, **data, "kind": kind})

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(slots=True)
class Listing:
    sku: str
    quantity: int
    revision: int
    policy_version: int
    as_of: int
    updated_at: int  # epoch ms
    tampered: bool = False

    @property
    def version(self) -> tuple[int, int]:
        return (self.revision, self.policy_version)


@dataclass(slots=True)
class Faults:
    fail_next: int = 0
    status: int = 503
    latency_ms: float | None = None


@dataclass
class ChannelEndpoint:
    """One simulated channel API and its state."""

    spec: EndpointSpec
    listings: dict[str, Listing] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "requests": 0,
            "applied": 0,
            "unchanged": 0,
            "refreshed": 0,
            "stale_rejected": 0,
            "rate_limited": 0,
            "failed": 0,
            "tampered": 0,
            "reports_sent": 0,
        }
    )
    faults: Faults = field(default_factory=Faults)
    _bucket: TokenBucket | None = None
    _session: aiohttp.ClientSession | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.spec.rate_per_s is not None:
            self._bucket = TokenBucket.full(self.spec.rate_per_s, self.spec.burst, time.monotonic())

    # -- the channel API --------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_put("/v1/inventory/{sku}", self.put_inventory)
        app.router.add_get("/v1/inventory/{sku}", self.get_listing)
        app.router.add_get("/v1/inventory", self.get_listings)
        app.router.add_put("/admin/inventory/{sku}", self.tamper)
        app.router.add_get("/admin/log", self.get_log)
        app.router.add_post("/admin/faults", self.set_faults)
        app.router.add_post("/admin/report", self.report_now)
        app.router.add_get("/healthz", self.healthz)
        app.on_cleanup.append(self._close)
        return app

    def _record(self, sku: str, body: dict[str, Any], status: int, outcome: str) -> None:
        self.requests.append(
            {
                "at": time.time(),
                "sku": sku,
                "quantity": body.get("quantity"),
                "revision": body.get("revision"),
                "policy_version": body.get("policy_version"),
                "status": status,
                "outcome": outcome,
            }
        )

    async def put_inventory(self, request: web.Request) -> web.Response:
        sku = request.match_info["sku"]
        self.counters["requests"] += 1
        try:
            body = await request.json()
            quantity = int(body["quantity"])
            version = (int(body["revision"]), int(body["policy_version"]))
        except (ValueError, KeyError, TypeError):
            self._record(sku, {}, 400, "invalid")
            return _error(400, "invalid_request", "quantity, revision, policy_version required")
        if self._bucket is not None and not self._bucket.try_take(time.monotonic()):
            self.counters["rate_limited"] += 1
            self._record(sku, body, 429, "rate_limited")
            wait = self._bucket.wait_time(time.monotonic())
            return _error(
                429,
                "rate_limited",
                f"more than {self.spec.rate_per_s}/s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        latency = self.faults.latency_ms if self.faults.latency_ms is not None else None
        latency = self.spec.latency_ms if latency is None else latency
        if latency:
            await asyncio.sleep(latency / 1000)
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            self.counters["failed"] += 1
            self._record(sku, body, self.faults.status, "failed")
            return _error(self.faults.status, "unavailable", "injected failure")
        current = self.listings.get(sku)
        if current is not None and version < current.version:
            self.counters["stale_rejected"] += 1
            self._record(sku, body, 409, "stale_rejected")
            log.warning(
                "stale_update_rejected",
                channel=self.spec.channel,
                sku=sku,
                version=list(version),
                current=list(current.version),
            )
            return web.json_response(
                {"error": "stale_version", "current": asdict(current)}, status=409
            )
        if current is None or version > current.version:
            outcome = "applied"
        elif current.quantity != quantity or current.tampered:
            outcome = "refreshed"  # the same version again, restoring what it displays
        else:
            outcome = "unchanged"
        self.counters[outcome] += 1
        listing = Listing(
            sku=sku,
            quantity=quantity,
            revision=version[0],
            policy_version=version[1],
            as_of=int(body.get("as_of") or 0),
            updated_at=int(time.time() * 1000),
        )
        self.listings[sku] = listing
        self._record(sku, body, 200, outcome)
        return web.json_response({"status": outcome, **asdict(listing)})

    async def get_listing(self, request: web.Request) -> web.Response:
        listing = self.listings.get(request.match_info["sku"])
        if listing is None:
            return _error(404, "unknown_sku", "never told about this SKU")
        return web.json_response(asdict(listing))

    async def get_listings(self, _request: web.Request) -> web.Response:
        return web.json_response({"items": {s: asdict(v) for s, v in self.listings.items()}})

    # -- test and demo controls -------------------------------------------------------------

    async def tamper(self, request: web.Request) -> web.Response:
        sku = request.match_info["sku"]
        body = await request.json()
        quantity = int(body["quantity"])
        current = self.listings.get(sku)
        listing = Listing(
            sku=sku,
            quantity=quantity,
            revision=current.revision if current else 0,
            policy_version=current.policy_version if current else 0,
            as_of=current.as_of if current else 0,
            updated_at=int(time.time() * 1000),
            tampered=True,
        )
        self.listings[sku] = listing
        self.counters["tampered"] += 1
        log.info("listing_tampered", channel=self.spec.channel, sku=sku, quantity=quantity)
        if self.spec.report_url:
            self._spawn(self.report([listing]))
        return web.json_response(asdict(listing))

    async def get_log(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"channel": self.spec.channel, "counters": self.counters, "requests": self.requests}
        )

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.faults = Faults(
            fail_next=int(body.get("fail_next", 0)),
            status=int(body.get("status", 503)),
            latency_ms=body.get("latency_ms"),
        )
        return web.json_response(asdict(self.faults))

    async def report_now(self, _request: web.Request) -> web.Response:
        sent = await self.report(list(self.listings.values()))
        return web.json_response({"reported": sent})

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "channel": self.spec.channel})

    # -- reports back to the connector ------------------------------------------------------

    async def report(self, listings: list[Listing]) -> int:
        """POST what this channel displays to report_url. Returns how many were reported."""
        if not self.spec.report_url or not listings:
            return 0
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        sent = 0
        for start in range(0, len(listings), REPORT_CHUNK):
            chunk = listings[start : start + REPORT_CHUNK]
            payload = {
                "channel": self.spec.channel,
                "reported_at": int(time.time() * 1000),
                "items": [{"sku": x.sku, "quantity": x.quantity} for x in chunk],
            }
            try:
                async with self._session.post(self.spec.report_url, json=payload) as resp:
                    if resp.status >= 300:
                        log.warning("report_refused", channel=self.spec.channel, status=resp.status)
                        continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("report_failed", channel=self.spec.channel, error=repr(exc))
                continue
            sent += len(chunk)
        self.counters["reports_sent"] += sent
        return sent

    async def report_periodically(self) -> None:
        while self.spec.report_interval_s > 0:
            await asyncio.sleep(self.spec.report_interval_s)
            await self.report(list(self.listings.values()))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, _app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


async def serve_endpoints(specs: list[EndpointSpec], stop: asyncio.Event) -> None:
    """Run every endpoint until `stop` is set."""
    runners: list[web.AppRunner] = []
    endpoints = [ChannelEndpoint(spec) for spec in specs]
    try:
        for endpoint in endpoints:
            runner = web.AppRunner(endpoint.app(), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, endpoint.spec.host, endpoint.spec.port).start()
            runners.append(runner)
            if endpoint.spec.report_interval_s > 0:
                endpoint._spawn(endpoint.report_periodically())
            log.info(
                "endpoint_started",
                channel=endpoint.spec.channel,
                kind=endpoint.spec.kind.value,
                url=endpoint.spec.url,
                rate_per_s=endpoint.spec.rate_per_s,
                burst=endpoint.spec.burst,
                report_url=endpoint.spec.report_url,
            )
        await stop.wait()
    finally:
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()
