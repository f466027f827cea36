"""Query endpoints: listings a page at a time with opaque cursors, across every worker.

GET /v1/skus?prefix=&below_atp=&channel=&limit=&cursor=
    known SKUs in key order with their channel quantities (below_atp=N needs a channel: only
    SKUs whose quantity for it is below N)
GET /v1/reservations?channel=&sku=&status=&limit=&cursor=
    held and confirmed reservations (by SKU, then id), then ended ones (by id)
GET /v1/channels/{channel}/skus/{sku}/history?limit=&cursor=
    every quantity published to the channel for the SKU, newest first, with its cause
GET /v1/alerts?type=&sku=&channel=&since=&limit=&cursor=      (api/alert_listing.py)
GET /                                                         (api/api_index.py)

A page is {"items": [...], "next_cursor": str | null}; pass next_cursor back with the same
parameters for the next page, until it is null. A page may hold fewer than `limit` items
before the end (each worker reads at most SCAN_BUDGET rows for one page). With API keys a
channel key sees its own channel only: its listings are confined to it, another channel is
a 403.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

from stocksync.api.alert_listing import AlertSource, add_alert_routes
from stocksync.api.api_index import add_index_route
from stocksync.api.auth import forbid_channel, scope_of
from stocksync.api.fanout import gathered_page, is_slice_request, slice_response, unavailable
from stocksync.api.query_params import (
    BadParameter,
    answered,
    bad_parameter,
    choice_param,
    cursor_param,
    int_param,
    limit_param,
    text_param,
)
from stocksync.api.reservations import held_view, reply_body
from stocksync.api.responses import check_channel, error, json_response
from stocksync.api.routing import ROUTER_KEY, Router
from stocksync.domain.limits import CHANNEL_MAX, SKU_MAX
from stocksync.domain.state import SkuRow, channel_atp
from stocksync.domain.topology import Topology
from stocksync.service.channel_history import ChannelHistoryPage, HistoryPosition
from stocksync.service.cursors import BadCursor, encode_cursor, string_position
from stocksync.service.listings import Position, SkuFilter, Slice
from stocksync.service.reservation_listing import (
    ENDED,
    LIVE,
    STATUSES,
    LiveReservation,
    Reservation,
    ReservationFilter,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
DEFAULT_HISTORY_LIMIT = 20
MAX_HISTORY_LIMIT = 200
SCAN_BUDGET = 2000  # rows (or index entries) one worker reads for one page


class ListingReader(Protocol):
    """What the listings read; the worker's TableQueries (streams/http_service.py)."""

    def topology(self) -> Topology: ...

    def partition_count(self) -> int: ...

    def partition_of(self, sku: str) -> int: ...

    def served_partitions(self) -> list[int] | None:
        """The partitions whose tables this worker serves; None while they are moving."""
        ...

    def sku_slice(
        self,
        partitions: Sequence[int],
        wanted: SkuFilter,
        after: Position | None,
        limit: int,
        budget: int,
    ) -> Slice[SkuRow]: ...

    def reservation_slice(
        self,
        partitions: Sequence[int],
        wanted: ReservationFilter,
        after: Position | None,
        limit: int,
        budget: int,
    ) -> Slice[Reservation]: ...

    def channel_history(
        self, sku: str, channel: str, limit: int, after: HistoryPosition | None
    ) -> ChannelHistoryPage | None: ...


def sku_item(row: SkuRow, topology: Topology, channel: str | None) -> dict[str, Any]:
    channels = [channel] if channel is not None else sorted(topology.channels)
    return {
        "sku": row.sku,
        "revision": row.revision,
        "last_event_at": row.last_event_at,
        "channels": {c: channel_atp(row, topology, c) for c in channels},
    }


def reservation_item(item: Reservation) -> dict[str, Any]:
    """As GET /v1/reservations/{id} shows it."""
    if isinstance(item, LiveReservation):
        return held_view(item.reservation_id, item.sku, item.hold)
    return reply_body(item)


def _sku_position(value: Any) -> Position | None:
    return None if value is None else string_position(value, 1)


def _reservation_position(value: Any) -> Position | None:
    if value is None:
        return None
    position = string_position(value, 3)
    if position[0] not in (LIVE, ENDED):
        raise BadCursor("cursor is not one this API made: pass next_cursor as it came")
    return position


def _history_position(value: Any) -> HistoryPosition | None:
    if value is None:
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return (value[0], value[1])
    raise BadCursor("cursor is not one this API made: pass next_cursor as it came")


def _position(parse: Callable[[Any], Any], value: Any) -> Any:
    try:
        return parse(value)
    except BadCursor as exc:
        raise BadParameter(error(400, "bad_cursor", str(exc), parameter="cursor")) from None


class ListingRoutes:
    def __init__(self, reader: ListingReader, router: Router | None) -> None:
        self.reader = reader
        self.router = router

    def _channel(self, request: web.Request) -> tuple[str | None, Topology]:
        """The channel asked for (a channel key's own when none is), and the topology; a
        403 or 400 raised for a channel the caller may not see or that is not one."""
        channel = text_param(request, "channel", CHANNEL_MAX) or scope_of(request)
        if (denied := forbid_channel(request, channel)) is not None:
            raise BadParameter(denied)
        topology = self.reader.topology()
        if (unknown := check_channel(topology, channel)) is not None:
            raise BadParameter(unknown)
        return channel, topology

    async def _local(
        self, required: set[int], read: Callable[[list[int]], Slice[Any]]
    ) -> Slice[Any] | web.Response:
        """This worker's slice over the partitions it serves of `required`, read in a thread
        (a filtered page may read a few thousand rows)."""
        served = self.reader.served_partitions()
        if served is None:
            return unavailable(
                "not_ready", "this worker's partitions are being assigned or recovered; retry"
            )
        return await asyncio.to_thread(read, sorted(required.intersection(served)))

    async def _page(
        self,
        request: web.Request,
        listing: str,
        filters: dict[str, Any],
        local: Slice[dict[str, Any]],
        required: set[int],
        limit: int,
        others: list[str] | None = None,
    ) -> web.Response:
        if is_slice_request(request):
            return slice_response(local)
        page = await gathered_page(request, self.router, local, required, limit, others)
        if isinstance(page, web.Response):
            return page
        cursor = None if page.next is None else encode_cursor(listing, filters, list(page.next))
        return json_response({"items": page.items, "next_cursor": cursor})

    # -- GET /v1/skus ------------------------------------------------------------------------

    async def list_skus(self, request: web.Request) -> web.Response:
        limit = limit_param(request, DEFAULT_LIMIT, MAX_LIMIT)
        prefix = text_param(request, "prefix", SKU_MAX) or ""
        below = int_param(request, "below_atp", None, 0)
        channel, topology = self._channel(request)
        if below is not None and channel is None:
            raise bad_parameter("below_atp", "needs channel=, the channel whose quantity it is")
        filters = {"prefix": prefix, "below_atp": below, "channel": channel}
        after = _position(_sku_position, cursor_param(request, "skus", filters))
        wanted = SkuFilter(prefix, below, channel)
        required = set(range(self.reader.partition_count()))
        local = await self._local(
            required,
            lambda parts: self.reader.sku_slice(parts, wanted, after, limit, SCAN_BUDGET),
        )
        if isinstance(local, web.Response):
            return local
        rendered = Slice(
            [(at, sku_item(row, topology, channel)) for at, row in local.items],
            local.covered,
            local.partitions,
        )
        return await self._page(request, "skus", filters, rendered, required, limit)

    # -- GET /v1/reservations ----------------------------------------------------------------

    async def list_reservations(self, request: web.Request) -> web.Response:
        limit = limit_param(request, DEFAULT_LIMIT, MAX_LIMIT)
        channel, _topology = self._channel(request)
        sku = text_param(request, "sku", SKU_MAX)
        status = choice_param(request, "status", STATUSES)
        filters = {"channel": channel, "sku": sku, "status": status}
        after = _position(_reservation_position, cursor_param(request, "reservations", filters))
        wanted = ReservationFilter(channel, sku, status)
        others: list[str] | None = None
        if sku is None:
            required = set(range(self.reader.partition_count()))
        else:  # its reservations are all in its partition: ask its owner only
            required = {self.reader.partition_of(sku)}
            owner = self.router.owner_for(request, sku) if self.router is not None else None
            others = [] if owner is None else [owner]
        local = await self._local(
            required,
            lambda parts: self.reader.reservation_slice(parts, wanted, after, limit, SCAN_BUDGET),
        )
        if isinstance(local, web.Response):
            return local
        rendered = Slice(
            [(at, reservation_item(item)) for at, item in local.items],
            local.covered,
            local.partitions,
        )
        return await self._page(request, "reservations", filters, rendered, required, limit, others)

    # -- GET /v1/channels/{channel}/skus/{sku}/history -----------------------------------------

    async def channel_history(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        sku = request.match_info["sku"]
        if (denied := forbid_channel(request, channel)) is not None:
            return denied
        topology = self.reader.topology()
        if channel not in topology.channels:
            return error(
                404,
                "unknown_channel",
                f"channel {channel!r} is not in the topology (version {topology.version})",
                known=sorted(topology.channels),
            )
        limit = limit_param(request, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT)
        filters = {"channel": channel, "sku": sku}
        after = _position(_history_position, cursor_param(request, "channel-history", filters))
        if self.router is not None and (owner := self.router.owner_for(request, sku)) is not None:
            return await self.router.forward(request, owner)
        page = self.reader.channel_history(sku, channel, limit, after)
        if page is None:
            return error(404, "unknown_sku", f"no event has been applied for SKU {sku!r}", sku=sku)
        cursor = (
            None
            if page.next is None
            else encode_cursor("channel-history", filters, list(page.next))
        )
        return json_response(
            {"sku": sku, "channel": channel, "entries": page.entries, "next_cursor": cursor}
        )


def add_listing_routes(
    app: web.Application, reader: ListingReader, alerts: AlertSource | None = None
) -> None:
    """The query endpoints, the alerts listing (when `alerts` is given: the topic it reads)
    and the API's index at /. Call after build_http_app, whose router forwards to the other
    workers."""
    routes = ListingRoutes(reader, app.get(ROUTER_KEY))
    app.router.add_get("/v1/skus", answered(routes.list_skus))
    app.router.add_get("/v1/reservations", answered(routes.list_reservations))
    app.router.add_get(
        "/v1/channels/{channel}/skus/{sku}/history", answered(routes.channel_history)
    )
    if alerts is not None:
        add_alert_routes(app, alerts, reader.topology)
    add_index_route(app)
