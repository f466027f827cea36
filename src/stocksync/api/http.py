"""aiohttp handlers of the ATP API. The worker supplies an AtpReader; this module knows no faust.

GET  /v1/atp/{sku}[?channel=c]   one SKU, every location and channel (or one channel)
GET  /v1/atp/{sku}/history[?limit=&before=]  applied events, newest first, a page at a time:
                                 quantities after each, why channels moved
POST /v1/atp/batch               {"skus": [...], "channel": optional} -> many SKUs at once
GET  /healthz                    process is up
GET  /readyz                     200 once partitions are assigned and the table recovered, and
                                 while the fold keeps up (503 when input waits unfolded)
GET  /livez                      200 unless the fold has been stalled past its grace period

With API keys (stocksync.api.auth) a channel key sees its own channel only: `?channel=` of
another channel is a 403, and without `?channel=` it gets its own channel's view. History shows
every channel, so it needs an operator key. Every error, 404 and 413 included, is JSON.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import BaseModel, ConfigDict, Field

from stocksync.api.auth import ApiKeys, auth_middleware, forbid_channel, require_admin, scope_of
from stocksync.api.metrics import Metrics, add_metrics_route
from stocksync.api.responses import check_channel, error, json_response, read_model
from stocksync.api.routing import ROUTER_KEY, KeyOwners, Router
from stocksync.api.views import sku_channel_view, sku_view
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology
from stocksync.service.history import DEFAULT_PAGE, HistoryPage

MAX_BATCH = 1000
MAX_HISTORY_PAGE = 200
MAX_BODY_BYTES = 256 * 1024
# Bodies read as a stream under a limit of their own (api/imports.py: STOCKSYNC_IMPORT_MAX_BYTES)
STREAMED_BODY_PATHS = frozenset({"/v1/imports"})


class AtpReader(Protocol):
    def row(self, sku: str) -> SkuRow | None: ...

    def topology(self) -> Topology: ...

    def history_of(
        self, sku: str, limit: int = DEFAULT_PAGE, before: int | None = None
    ) -> HistoryPage | None: ...

    def health(self) -> dict[str, Any]: ...

    def serves(self, sku: str) -> bool:
        """This worker's table holds the SKU's partition, recovered, and no rebalance is in
        flight: only then is its copy the current one (a partition given back after a while
        holds an old copy until recovery has replayed the changelog's tail)."""
        ...


RETRY_AFTER_S = 1


class BatchLookup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    skus: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    channel: str | None = None


def _int_param(
    request: web.Request, name: str, default: int | None, low: int, high: int | None
) -> int | web.Response | None:
    """A whole-number query parameter within [low, high], or the 400 that says why not."""
    text = request.query.get(name)
    if text is None:
        return default
    bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        return error(400, "bad_parameter", f"{name} must be a whole number {bound}, not {text!r}")
    return value


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_errors(
    max_body_bytes: int, on_reject: Callable[[str, str], None] | None = None
) -> Middleware:
    """aiohttp's own errors (404, 405, 413, ...) as JSON; bodies over the limit refused before
    they are read when Content-Length says so."""

    def too_large(size: int | None) -> web.Response:
        if on_reject is not None:
            on_reject("too_large", "")
        told = f"a body of {size} bytes" if size is not None else "the body"
        return error(
            413,
            "request_too_large",
            f"{told} is over the {max_body_bytes}-byte limit (STOCKSYNC_HTTP_MAX_BODY_BYTES); "
            f"send less (batches: at most {MAX_BATCH} SKUs)",
            limit=max_body_bytes,
        )

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        streamed = request.path in STREAMED_BODY_PATHS
        if length is not None and length > max_body_bytes and not streamed:
            return too_large(length)
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return too_large(None)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = (exc.reason or "error").lower().replace(" ", "_")
            return error(exc.status, code, exc.text or exc.reason or code)

    return middleware


def _page_params(request: web.Request) -> tuple[int, int | None] | web.Response:
    """A history page's `limit` and `before`, or the 400 of the first one at fault."""
    limit = _int_param(request, "limit", DEFAULT_PAGE, 1, MAX_HISTORY_PAGE)
    before = _int_param(request, "before", None, 1, None)
    if isinstance(limit, web.Response):
        return limit
    if isinstance(before, web.Response):
        return before
    return limit or DEFAULT_PAGE, before


def _known(row: SkuRow | None) -> SkuRow | None:
    # a refused reservation alone leaves a bare row: the SKU is still unknown
    return None if row is None or not row.locations else row


def _view(row: SkuRow, topology: Topology, channel: str | None) -> dict[str, Any]:
    return sku_view(row, topology) if channel is None else sku_channel_view(row, topology, channel)


def _unknown_sku(sku: str) -> web.Response:
    return error(404, "unknown_sku", f"no event has been applied for SKU {sku!r}", sku=sku)


def _not_served(skus: list[str]) -> web.Response:
    return error(
        503,
        "partition_moving",
        f"the partition of {skus[0]!r} is being assigned or recovered on this worker: its copy "
        f"may be behind; retry in {RETRY_AFTER_S}s",
        skus=skus[:20],
    )


def retry_after() -> Middleware:
    """Every 503 says when to come back (a forwarded one, whose headers are not passed on,
    included): a client never has to guess whether a 503 is worth retrying."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if response.status == 503 and "Retry-After" not in response.headers:
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    return middleware


async def _batch_elsewhere(
    router: Router,
    request: web.Request,
    skus: list[str],
    channel: str | None,
    items: dict[str, Any],
    unknown: list[str],
) -> list[str] | web.Response:
    """Look the SKUs other workers own up there, into `items` and `unknown`; the SKUs left
    to this worker, or the 503 when an owner did not answer."""
    groups = router.group(request, skus)
    local = groups.pop(None, [])
    try:
        answers = await asyncio.gather(
            *(
                router.batch(request, owner, part, channel)
                for owner, part in groups.items()
                if owner is not None
            )
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        return error(503, "owner_unreachable", f"a worker did not answer: {exc!r}; retry")
    for remote_items, remote_unknown in answers:
        items.update(remote_items)
        unknown.extend(remote_unknown)
    return local


class AtpRoutes:
    """The ATP handlers, one per route. `router` (None: this worker owns every SKU) sends a
    request for another worker's SKU to that worker."""

    def __init__(self, reader: AtpReader, router: Router | None) -> None:
        self.reader = reader
        self.router = router

    def _allowed(self, request: web.Request, channel: str | None) -> Topology | web.Response:
        """The topology, or the 403/400 when the caller may not see `channel` or it is not one.
        `channel` is None only for a caller that may see every channel."""
        if (denied := forbid_channel(request, channel)) is not None:
            return denied
        topology = self.reader.topology()
        if (bad := check_channel(topology, channel)) is not None:
            return bad
        return topology

    async def _at_owner(self, request: web.Request, sku: str) -> web.Response | None:
        """The owner's answer when another worker owns the SKU; None to answer here."""
        if self.router is None or (owner := self.router.owner_for(request, sku)) is None:
            return None
        return await self.router.forward(request, owner)

    async def get_atp(self, request: web.Request) -> web.Response:
        sku = request.match_info["sku"]
        channel = request.query.get("channel") or scope_of(request)
        topology = self._allowed(request, channel)
        if isinstance(topology, web.Response):
            return topology
        if (forwarded := await self._at_owner(request, sku)) is not None:
            return forwarded
        if not self.reader.serves(sku):
            return _not_served([sku])
        row = _known(self.reader.row(sku))
        if row is None:
            return _unknown_sku(sku)
        return json_response(_view(row, topology, channel))

    async def get_history(self, request: web.Request) -> web.Response:
        if (denied := require_admin(request, "the history of a SKU")) is not None:
            return denied
        sku = request.match_info["sku"]
        if (forwarded := await self._at_owner(request, sku)) is not None:
            return forwarded
        params = _page_params(request)
        if isinstance(params, web.Response):
            return params
        if not self.reader.serves(sku):
            return _not_served([sku])
        page = self.reader.history_of(sku, *params)
        if page is None:
            return _unknown_sku(sku)
        return json_response({"sku": sku, "entries": page.entries, "next_before": page.next_before})

    async def batch_atp(self, request: web.Request) -> web.Response:
        lookup = await read_model(
            BatchLookup,
            request,
            f'; send {{"skus": [..up to {MAX_BATCH}], "channel": optional}}',
        )
        if isinstance(lookup, web.Response):
            return lookup
        channel = lookup.channel or scope_of(request)
        topology = self._allowed(request, channel)
        if isinstance(topology, web.Response):
            return topology
        items: dict[str, Any] = {}
        unknown: list[str] = []
        skus = list(dict.fromkeys(lookup.skus))
        if self.router is not None:
            local = await _batch_elsewhere(self.router, request, skus, channel, items, unknown)
            if isinstance(local, web.Response):
                return local
            skus = local
        if moving := [sku for sku in skus if not self.reader.serves(sku)]:
            return _not_served(moving)
        for sku in skus:
            row = _known(self.reader.row(sku))
            if row is None:
                unknown.append(sku)
            else:
                items[sku] = _view(row, topology, channel)
        return json_response({"items": items, "unknown": unknown})

    async def healthz(self, _request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        health = self.reader.health()
        return json_response(health, 200 if health.get("ready") else 503)

    async def livez(self, _request: web.Request) -> web.Response:
        health = self.reader.health()
        live = health.get("live", True)
        return json_response(
            {"live": live, "stalled_for_s": health.get("stalled_for_s", 0.0)},
            200 if live else 503,
        )


def _middlewares(
    keys: ApiKeys | None, metrics: Metrics | None, max_body_bytes: int, router: Router | None
) -> list[Middleware]:
    """Outermost first: timing sees every answer, JSON errors wrap what auth and routing say."""
    on_reject = metrics.count_rejection if metrics is not None else None
    middlewares: list[Middleware] = []
    if metrics is not None:
        middlewares.append(metrics.middleware())
    middlewares.append(json_errors(max_body_bytes, on_reject))
    middlewares.append(retry_after())
    if keys is not None:
        middlewares.append(auth_middleware(keys, on_reject))
    if router is not None:
        middlewares.append(router.find_elsewhere())
    return middlewares


def build_http_app(
    reader: AtpReader,
    *,
    keys: ApiKeys | None = None,
    metrics: Metrics | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    owners: KeyOwners | None = None,
) -> web.Application:
    """The ATP API. `keys`: API keys (None: no key needed); `metrics`: serve /metrics and time
    requests; `owners`: which worker owns a SKU (None: this one owns them all)."""
    router = Router(owners) if owners is not None else None
    app = web.Application(
        client_max_size=max_body_bytes,
        middlewares=_middlewares(keys, metrics, max_body_bytes, router),
    )
    if router is not None:
        app[ROUTER_KEY] = router  # reservations are decided next to their SKU's owner too
        app.on_cleanup.append(router.close)
    if metrics is not None:
        add_metrics_route(app, metrics)
    routes = AtpRoutes(reader, router)
    app.router.add_get("/v1/atp/{sku}", routes.get_atp)
    app.router.add_get("/v1/atp/{sku}/history", routes.get_history)
    app.router.add_post("/v1/atp/batch", routes.batch_atp)
    app.router.add_get("/healthz", routes.healthz)
    app.router.add_get("/readyz", routes.readyz)
    app.router.add_get("/livez", routes.livez)
    return app
