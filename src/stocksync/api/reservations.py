"""HTTP handlers of reservations. The worker supplies a ReservationService.

POST   /v1/reservations                 hold units for a channel (Idempotency-Key honoured)
GET    /v1/reservations/{id}            the hold, or how it ended
DELETE /v1/reservations/{id}            release it
POST   /v1/reservations/{id}/confirm    it becomes an order line (units stay reserved)
POST   /v1/reservations/{id}/extend     {"ttl_seconds": n}

With API keys, a channel key reserves for its own channel only and sees and acts on its own
channel's reservations only (403 otherwise); an operator key ("*") may do anything.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stocksync.api.auth import forbid_channel
from stocksync.api.responses import error, json_response
from stocksync.api.routing import FORWARD_TIMEOUT_S, ROUTER_KEY, SERVED_BY_HEADER
from stocksync.domain.limits import CHANNEL_MAX, LOCATION_MAX, RESERVATION_ID_MAX, SKU_MAX
from stocksync.domain.reservations import (
    CommandKind,
    ReplyStatus,
    ReservationCommand,
    ReservationReply,
)
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology

DEFAULT_TTL_SECONDS = 900
MAX_TTL_SECONDS = 7 * 24 * 3600
# A RESERVE's Idempotency-Key is its request and reservation id (worker limit); another action's
# key is the last part of its request id, which leaves room for one of this size.
IDEMPOTENCY_KEY_MAX = RESERVATION_ID_MAX


class ReservationService(Protocol):
    async def request(
        self, command: ReservationCommand, timeout: float
    ) -> ReservationReply | None: ...

    def reservation_reply(self, request_id: str) -> ReservationReply | None: ...

    def reservation_end(self, reservation_id: str) -> ReservationReply | None: ...

    def row(self, sku: str) -> SkuRow | None: ...

    def topology(self) -> Topology: ...


class ReserveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # string limits are the worker's (stocksync.domain.limits): a 400 here, not a dead letter
    channel: str = Field(min_length=1, max_length=CHANNEL_MAX)
    sku: str = Field(min_length=1, max_length=SKU_MAX)
    quantity: int = Field(gt=0, le=1_000_000)
    location: str | None = Field(default=None, max_length=LOCATION_MAX)
    ttl_seconds: int = Field(default=DEFAULT_TTL_SECONDS, gt=0, le=MAX_TTL_SECONDS)
    allow_partial: bool = False


def check_place(topology: Topology, channel: str, location: str | None) -> web.Response | None:
    """A channel and location the topology does not know (or that do not go together) are the
    caller's mistake, answered before anything is written to the log."""
    if channel not in topology.channels:
        return error(
            400,
            "unknown_channel",
            f"channel {channel!r} is not in the topology (version {topology.version})",
            known=sorted(topology.channels),
        )
    if location is None:
        return None
    if location not in topology.locations:
        return error(
            400,
            "unknown_location",
            f"location {location!r} is not in the topology (version {topology.version})",
            known=sorted(topology.locations),
        )
    serving = topology.channels[channel].locations
    if location not in serving:
        return error(
            400,
            "location_not_serving",
            f"location {location!r} does not serve channel {channel!r}; it sells from "
            f"{', '.join(serving)}",
            known=list(serving),
        )
    return None


class ExtendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl_seconds: int = Field(gt=0, le=MAX_TTL_SECONDS)


def reply_body(reply: ReservationReply) -> dict[str, Any]:
    return {
        "reservation_id": reply.reservation_id,
        "request_id": reply.request_id,
        "status": reply.status.value.lower(),
        "sku": reply.sku,
        "channel": reply.channel,
        "location": reply.location,
        "quantity": reply.quantity,
        "requested": reply.requested,
        "available": reply.available,
        "expires_at": reply.expires_at,
        "reason": reply.reason,
    }


def _now_ms() -> int:
    return int(time.time() * 1000)


def add_reservation_routes(
    app: web.Application,
    service: ReservationService,
    timeout: float,
    on_outcome: Callable[[str, str], None] | None = None,
) -> None:
    """`on_outcome(action, outcome)` counts what each request ended as (metrics)."""

    router = app.get(ROUTER_KEY)

    def counted(action: str, response: web.Response) -> web.Response:
        # a request forwarded to the SKU's owner is counted there, where it was decided
        if on_outcome is not None and SERVED_BY_HEADER not in response.headers:
            outcome = {201: "held", 200: "ok", 409: "conflict", 504: "timeout"}.get(
                response.status, "rejected" if response.status < 500 else "error"
            )
            if response.status == 409 and action == "reserve":
                outcome = "insufficient_stock"
            elif response.status in (400, 413):
                outcome = "invalid"
            elif response.status == 403:
                outcome = "forbidden"
            elif response.status == 404:
                outcome = "not_found"
            on_outcome(action, outcome)
        return response

    async def send(command: ReservationCommand) -> web.Response | ReservationReply:
        reply = await service.request(command, timeout)
        if reply is None:
            return error(
                504,
                "timeout",
                f"no answer within {timeout}s; retry with the same Idempotency-Key "
                f"({command.request_id}) to get the decision without a second hold",
                request_id=command.request_id,
            )
        return reply

    async def decided(command: ReservationCommand) -> web.Response | ReservationReply:
        # A request already decided is answered from the reservation index and not sent again:
        # the row remembers only its last answers, and a retry older than those would be
        # decided a second time (a confirmed reservation's retry would take a new hold).
        earlier = service.reservation_reply(command.request_id)
        if earlier is not None and earlier.sku == command.sku and earlier.kind is command.kind:
            return earlier
        return await send(command)

    async def reserve(request: web.Request) -> web.Response:
        return counted("reserve", await _reserve(request))

    async def _reserve(request: web.Request) -> web.Response:
        try:
            body = ReserveRequest.model_validate_json(await request.read())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return error(400, "invalid_request", f"{where}: {first['msg']}")
        if (denied := forbid_channel(request, body.channel)) is not None:
            return denied
        if (wrong := check_place(service.topology(), body.channel, body.location)) is not None:
            return wrong
        key = request.headers.get("Idempotency-Key") or str(uuid.uuid4())
        if len(key) > IDEMPOTENCY_KEY_MAX or ":" in key:
            return error(
                400,
                "invalid_request",
                f"Idempotency-Key: at most {IDEMPOTENCY_KEY_MAX} characters, no ':'",
            )
        if router is not None and (owner := router.owner_for(request, body.sku)) is not None:
            # The owner's reservation index knows every request already decided for the SKU.
            forwarded = await router.forward(
                request, owner, await request.read(), timeout_s=timeout + FORWARD_TIMEOUT_S
            )
            if forwarded.status != 503:
                return forwarded
            # Its HTTP API is unreachable: decide through Kafka from here (the owner's row
            # still answers a recent retry).
        outcome = await decided(
            ReservationCommand(
                request_id=key,
                kind=CommandKind.RESERVE,
                sku=body.sku,
                reservation_id=key,
                issued_at=_now_ms(),
                channel=body.channel,
                quantity=body.quantity,
                location=body.location,
                ttl_ms=body.ttl_seconds * 1000,
                allow_partial=body.allow_partial,
            )
        )
        if isinstance(outcome, web.Response):
            return outcome
        if outcome.status is ReplyStatus.HELD:
            return json_response(reply_body(outcome), 201)
        if outcome.status is ReplyStatus.REJECTED:
            return json_response(
                {"error": "insufficient_stock", "message": outcome.reason, **reply_body(outcome)},
                409,
            )
        return error(400, "invalid_request", outcome.reason, **reply_body(outcome))

    def find(reservation_id: str) -> ReservationReply | None:
        reserved = service.reservation_reply(reservation_id)
        if reserved is None or reserved.status is not ReplyStatus.HELD:
            return None
        return reserved

    async def get_reservation(request: web.Request) -> web.Response:
        reservation_id = request.match_info["id"]
        reserved = find(reservation_id)
        if reserved is not None:
            denied = forbid_channel(request, reserved.channel)
            if denied is not None:
                return denied
        sku = reserved.sku if reserved is not None else None
        row = service.row(sku) if sku else None
        if sku is None or row is None:
            return error(404, "unknown_reservation", f"no reservation {reservation_id!r}")
        hold = row.holds.get(reservation_id)
        if hold is not None:
            return json_response(
                {
                    "reservation_id": reservation_id,
                    "status": "held",
                    "sku": sku,
                    "channel": hold.channel,
                    "location": hold.location,
                    "quantity": hold.quantity,
                    "expires_at": hold.expires_at,
                }
            )
        ended = service.reservation_end(reservation_id)
        if ended is not None:
            return json_response(reply_body(ended))
        return error(404, "unknown_reservation", f"no reservation {reservation_id!r}")

    async def act(request: web.Request, kind: CommandKind, ttl_ms: int = 0) -> web.Response:
        return counted(kind.value.lower(), await _act(request, kind, ttl_ms))

    async def _act(request: web.Request, kind: CommandKind, ttl_ms: int) -> web.Response:
        reservation_id = request.match_info["id"]
        reserved = find(reservation_id)
        if reserved is None:
            return error(404, "unknown_reservation", f"no reservation {reservation_id!r}")
        if (denied := forbid_channel(request, reserved.channel)) is not None:
            return denied
        sku = reserved.sku
        suffix = request.headers.get("Idempotency-Key") or (
            str(uuid.uuid4()) if kind is CommandKind.EXTEND else ""
        )
        if len(suffix) > IDEMPOTENCY_KEY_MAX:
            return error(
                400,
                "invalid_request",
                f"Idempotency-Key: at most {IDEMPOTENCY_KEY_MAX} characters",
            )
        outcome = await decided(
            ReservationCommand(
                request_id=f"{kind.value.lower()}:{reservation_id}:{suffix}",
                kind=kind,
                sku=sku,
                reservation_id=reservation_id,
                issued_at=_now_ms(),
                ttl_ms=ttl_ms,
            )
        )
        if isinstance(outcome, web.Response):
            return outcome
        if outcome.status is ReplyStatus.NOT_FOUND:
            return error(
                409,
                "not_held",
                f"reservation {reservation_id!r} is not held any more",
                **reply_body(outcome),
            )
        return json_response(reply_body(outcome))

    async def release(request: web.Request) -> web.Response:
        return await act(request, CommandKind.RELEASE)

    async def confirm(request: web.Request) -> web.Response:
        return await act(request, CommandKind.CONFIRM)

    async def extend(request: web.Request) -> web.Response:
        try:
            body = ExtendRequest.model_validate_json(await request.read())
        except ValidationError as exc:
            return counted("extend", error(400, "invalid_request", str(exc.errors()[0]["msg"])))
        return await act(request, CommandKind.EXTEND, body.ttl_seconds * 1000)

    app.router.add_post("/v1/reservations", reserve)
    app.router.add_get("/v1/reservations/{id}", get_reservation)
    app.router.add_delete("/v1/reservations/{id}", release)
    app.router.add_post("/v1/reservations/{id}/confirm", confirm)
    app.router.add_post("/v1/reservations/{id}/extend", extend)
