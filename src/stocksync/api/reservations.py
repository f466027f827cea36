"""HTTP handlers of reservations. The worker supplies a ReservationService.

POST   /v1/reservations                 hold units for a channel (Idempotency-Key honoured)
GET    /v1/reservations/{id}            the hold, or how it ended
DELETE /v1/reservations/{id}            release it
POST   /v1/reservations/{id}/confirm    it becomes an order line (units stay reserved)
POST   /v1/reservations/{id}/extend     {"ttl_seconds": n}
POST   /v1/reservations/{id}/cancel     a confirmed order line, before it is fulfilled

With API keys, a channel key reserves for its own channel only and sees and acts on its own
channel's reservations only (403 otherwise); an operator key ("*") may do anything.

What a request is answered with (a retry: the recorded answer) is decided in
stocksync.service.reservations; these handlers only translate HTTP to commands and back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Protocol

from aiohttp import web
from msgspec.structs import asdict
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stocksync.api.auth import forbid_channel
from stocksync.api.responses import check_channel, error, json_response, read_model
from stocksync.api.routing import FORWARD_TIMEOUT_S, ROUTER_KEY, SERVED_BY_HEADER, Router
from stocksync.domain.limits import CHANNEL_MAX, LOCATION_MAX, RESERVATION_ID_MAX, SKU_MAX
from stocksync.domain.reservations import (
    CommandKind,
    ReplyStatus,
    ReservationCommand,
    ReservationReply,
)
from stocksync.domain.state import Hold, SkuRow
from stocksync.domain.topology import Topology
from stocksync.service.reservations import (
    ReservationDesk,
    UnknownSku,
    decide,
    held_reservation,
)

DEFAULT_TTL_SECONDS = 900
MAX_TTL_SECONDS = 7 * 24 * 3600
# A RESERVE's Idempotency-Key is its request and reservation id (worker limit); another action's
# key is the last part of its request id, which leaves room for one of this size.
IDEMPOTENCY_KEY_MAX = RESERVATION_ID_MAX


class ReservationService(ReservationDesk, Protocol):
    """What the handlers need: the desk that decides requests (stocksync.service.reservations),
    and lookups for showing a reservation."""

    def reservation_end(self, reservation_id: str) -> ReservationReply | None: ...

    def row(self, sku: str) -> SkuRow | None: ...

    def topology(self) -> Topology: ...


class ReserveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # string limits are the worker's (stocksync.domain.limits): a 400 here, not a dead letter
    # strict: "2", 2.0 and true are not a quantity (a 400 naming the field), whatever a
    # lenient parser would make of them
    channel: str = Field(min_length=1, max_length=CHANNEL_MAX, strict=True)
    sku: str = Field(min_length=1, max_length=SKU_MAX, strict=True)
    quantity: int = Field(gt=0, le=1_000_000, strict=True)
    location: str | None = Field(default=None, max_length=LOCATION_MAX, strict=True)
    ttl_seconds: int = Field(default=DEFAULT_TTL_SECONDS, gt=0, le=MAX_TTL_SECONDS, strict=True)
    allow_partial: bool = Field(default=False, strict=True)


def check_place(topology: Topology, channel: str, location: str | None) -> web.Response | None:
    """A channel and location the topology does not know (or that do not go together) are the
    caller's mistake, answered before anything is written to the log."""
    if (unknown := check_channel(topology, channel)) is not None:
        return unknown
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
    ttl_seconds: int = Field(gt=0, le=MAX_TTL_SECONDS, strict=True)


# The fields of the reply the body leaves out: the command's kind, which the route called
# already names (the body has never carried it), and the request's fingerprint (a digest the
# worker compares, of no use to a caller).
REPLY_FIELDS_NOT_IN_BODY = frozenset({"kind", "fingerprint"})
# The body's identifying fields come first, as it has always been laid out; the others follow
# in the reply's order.
_BODY_LEADS = ("reservation_id", "request_id", "status", "sku")


def reply_body(reply: ReservationReply) -> dict[str, Any]:
    """The reply as the HTTP API answers it: every field of the record (so a field added to the
    reply is answered too), save REPLY_FIELDS_NOT_IN_BODY; enums as their lower-case values."""
    fields = asdict(reply)
    fields["lines"] = lines_body(reply.lines)
    ordered = {name: fields.pop(name) for name in _BODY_LEADS} | fields
    return {
        # the API spells enum values in lower case ("status": "held")
        name: value.lower() if isinstance(value, StrEnum) else value
        for name, value in ordered.items()
        if name not in REPLY_FIELDS_NOT_IN_BODY
    }


def lines_body(lines: Mapping[str, int]) -> list[dict[str, Any]]:
    """A hold's lines as the API shows them: in the order the sourcing rule took them."""
    return [{"location": location, "quantity": units} for location, units in lines.items()]


def _now_ms() -> int:
    return int(time.time() * 1000)


# What a request ended as, for metrics, by HTTP status (RESERVE's 409 is told apart below).
_OUTCOME_OF_STATUS = {
    200: "ok",
    201: "held",
    400: "invalid",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "invalid",
    422: "key_reused",
    504: "timeout",
}


def outcome_of(action: str, status: int) -> str:
    if status == 409 and action == "reserve":
        return "insufficient_stock"
    return _OUTCOME_OF_STATUS.get(status, "rejected" if status < 500 else "error")


def _key_reused(reply: ReservationReply) -> web.Response:
    return error(
        422,
        "idempotency_key_reused",
        reply.reason,
        request_id=reply.request_id,
        original={
            "channel": reply.channel,
            "quantity": reply.requested or reply.quantity,
            "location": reply.location,
        },
    )


def _reserve_answer(reply: ReservationReply) -> web.Response:
    if reply.status is ReplyStatus.KEY_REUSED:
        return _key_reused(reply)
    if reply.status is ReplyStatus.HELD:
        return json_response(reply_body(reply), 201)
    if reply.status is ReplyStatus.REJECTED:
        return json_response(
            {"error": "insufficient_stock", "message": reply.reason, **reply_body(reply)}, 409
        )
    return error(400, "invalid_request", reply.reason, **reply_body(reply))


def held_view(reservation_id: str, sku: str, hold: Hold) -> dict[str, Any]:
    """A reservation still in the row: held, or confirmed (an open order line)."""
    return {
        "reservation_id": reservation_id,
        "status": hold.status.value.lower(),
        "sku": sku,
        "channel": hold.channel,
        "location": hold.location,
        "quantity": hold.quantity,
        "expires_at": hold.expires_at,
        "lines": lines_body(hold.allocation()),
    }


def _unknown_reservation(reservation_id: str) -> web.Response:
    return error(404, "unknown_reservation", f"no reservation {reservation_id!r}")


def _reserve_key(request: web.Request) -> str | web.Response:
    """A RESERVE's Idempotency-Key (a fresh one when none is sent), or the 400 saying why not."""
    key = request.headers.get("Idempotency-Key") or str(uuid.uuid4())
    if len(key) > IDEMPOTENCY_KEY_MAX or ":" in key:
        return error(
            400,
            "invalid_request",
            f"Idempotency-Key: at most {IDEMPOTENCY_KEY_MAX} characters, no ':'",
        )
    return key


def _action_key(request: web.Request, kind: CommandKind) -> str | web.Response:
    """The last part of an action's request id: its Idempotency-Key, or without one a fresh
    id for EXTEND (each extension counts) and "" for the others (a second release or confirm
    is a retry of the first)."""
    suffix = request.headers.get("Idempotency-Key") or (
        str(uuid.uuid4()) if kind is CommandKind.EXTEND else ""
    )
    if len(suffix) > IDEMPOTENCY_KEY_MAX:
        return error(
            400,
            "invalid_request",
            f"Idempotency-Key: at most {IDEMPOTENCY_KEY_MAX} characters",
        )
    return suffix


class ReservationRoutes:
    """The handlers, one per route; each answers through `counted` so metrics see every
    outcome."""

    def __init__(
        self,
        service: ReservationService,
        timeout: float,
        router: Router | None,
        on_outcome: Callable[[str, str], None] | None,
    ) -> None:
        self.service = service
        self.timeout = timeout
        self.router = router
        self.on_outcome = on_outcome

    def counted(self, action: str, response: web.Response) -> web.Response:
        # a request forwarded to the SKU's owner is counted there, where it was decided
        if self.on_outcome is not None and SERVED_BY_HEADER not in response.headers:
            self.on_outcome(action, outcome_of(action, response.status))
        return response

    async def decided(
        self, command: ReservationCommand, owner: bool = False
    ) -> web.Response | ReservationReply:
        """The answer to the command; `owner`: this worker owns the SKU, so its rows say
        whether the SKU exists."""
        try:
            reply = await decide(
                self.service, command, self.timeout, self.service if owner else None
            )
        except UnknownSku:
            return error(
                404,
                "unknown_sku",
                f"no SKU {command.sku!r}: no stock event has named it, so there is nothing to "
                f"reserve",
                sku=command.sku,
            )
        if reply is None:
            return error(
                504,
                "timeout",
                f"no answer within {self.timeout}s; retry with the same Idempotency-Key "
                f"({command.request_id}) to get the decision without a second hold",
                request_id=command.request_id,
            )
        return reply

    # -- POST /v1/reservations ---------------------------------------------------------------

    async def reserve(self, request: web.Request) -> web.Response:
        return self.counted("reserve", await self._reserve(request))

    async def _reserve(self, request: web.Request) -> web.Response:
        body = await read_model(ReserveRequest, request)
        if isinstance(body, web.Response):
            return body
        if (denied := forbid_channel(request, body.channel)) is not None:
            return denied
        if (wrong := check_place(self.service.topology(), body.channel, body.location)) is not None:
            return wrong
        key = _reserve_key(request)
        if isinstance(key, web.Response):
            return key
        if (forwarded := await self._at_owner(request, body.sku)) is not None:
            return forwarded
        owner = self.router is None or self.router.owner_for(request, body.sku) is None
        outcome = await self.decided(
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
            ),
            owner,
        )
        if isinstance(outcome, web.Response):
            return outcome
        return _reserve_answer(outcome)

    async def _at_owner(self, request: web.Request, sku: str) -> web.Response | None:
        """The owner's answer when another worker owns the SKU; None to decide from here."""
        if self.router is None or (owner := self.router.owner_for(request, sku)) is None:
            return None
        # The owner's reservation index knows every request already decided for the SKU.
        forwarded = await self.router.forward(
            request, owner, await request.read(), timeout_s=self.timeout + FORWARD_TIMEOUT_S
        )
        if forwarded.status != 503:
            return forwarded
        # Its HTTP API is unreachable: decide through Kafka from here (the owner's row still
        # answers a recent retry).
        return None

    # -- GET /v1/reservations/{id} -----------------------------------------------------------

    async def get_reservation(self, request: web.Request) -> web.Response:
        reservation_id = request.match_info["id"]
        reserved = held_reservation(self.service, reservation_id)
        if reserved is None:
            return _unknown_reservation(reservation_id)
        if (denied := forbid_channel(request, reserved.channel)) is not None:
            return denied
        row = self.service.row(reserved.sku) if reserved.sku else None
        if row is None:
            return _unknown_reservation(reservation_id)
        hold = row.holds.get(reservation_id)
        if hold is not None:
            return json_response(held_view(reservation_id, reserved.sku, hold))
        ended = self.service.reservation_end(reservation_id)
        if ended is not None:
            return json_response(reply_body(ended))
        return _unknown_reservation(reservation_id)

    # -- DELETE /v1/reservations/{id}, POST .../confirm, POST .../extend ----------------------

    async def release(self, request: web.Request) -> web.Response:
        return await self.act(request, CommandKind.RELEASE)

    async def confirm(self, request: web.Request) -> web.Response:
        return await self.act(request, CommandKind.CONFIRM)

    async def cancel(self, request: web.Request) -> web.Response:
        return await self.act(request, CommandKind.CANCEL)

    async def extend(self, request: web.Request) -> web.Response:
        try:
            body = ExtendRequest.model_validate_json(await request.read())
        except ValidationError as exc:
            return self.counted(
                "extend", error(400, "invalid_request", str(exc.errors()[0]["msg"]))
            )
        return await self.act(request, CommandKind.EXTEND, body.ttl_seconds * 1000)

    async def act(self, request: web.Request, kind: CommandKind, ttl_ms: int = 0) -> web.Response:
        return self.counted(kind.value.lower(), await self._act(request, kind, ttl_ms))

    async def _act(self, request: web.Request, kind: CommandKind, ttl_ms: int) -> web.Response:
        reservation_id = request.match_info["id"]
        reserved = held_reservation(self.service, reservation_id)
        if reserved is None:
            return _unknown_reservation(reservation_id)
        if (denied := forbid_channel(request, reserved.channel)) is not None:
            return denied
        suffix = _action_key(request, kind)
        if isinstance(suffix, web.Response):
            return suffix
        outcome = await self.decided(
            ReservationCommand(
                request_id=f"{kind.value.lower()}:{reservation_id}:{suffix}",
                kind=kind,
                sku=reserved.sku,
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
        if outcome.status is ReplyStatus.WRONG_STATE:
            return error(409, "invalid_transition", outcome.reason, **reply_body(outcome))
        if outcome.status is ReplyStatus.KEY_REUSED:
            return _key_reused(outcome)
        return json_response(reply_body(outcome))


def add_reservation_routes(
    app: web.Application,
    service: ReservationService,
    timeout: float,
    on_outcome: Callable[[str, str], None] | None = None,
) -> None:
    """`on_outcome(action, outcome)` counts what each request ended as (metrics)."""
    routes = ReservationRoutes(service, timeout, app.get(ROUTER_KEY), on_outcome)
    app.router.add_post("/v1/reservations", routes.reserve)
    app.router.add_get("/v1/reservations/{id}", routes.get_reservation)
    app.router.add_delete("/v1/reservations/{id}", routes.release)
    app.router.add_post("/v1/reservations/{id}/confirm", routes.confirm)
    app.router.add_post("/v1/reservations/{id}/extend", routes.extend)
    app.router.add_post("/v1/reservations/{id}/cancel", routes.cancel)
