"""The HTTP adapter of reservations, against a fake ReservationService that decides with the
real domain on in-memory rows (no Kafka, no faust)."""

from __future__ import annotations

import asyncio
import json
import time
from enum import StrEnum
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer
from builders import SKU, TOPOLOGY, ev, fold, reply_of, stock

from stocksync.api.http import build_http_app
from stocksync.api.reservations import (
    REPLY_FIELDS_NOT_IN_BODY,
    add_reservation_routes,
    reply_body,
)
from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.domain.events import EventKind as K
from stocksync.domain.fold import apply_event
from stocksync.domain.reservations import (
    MAX_ANSWERS,
    CommandKind,
    ReplyStatus,
    ReservationCommand,
    ReservationReply,
    apply_command,
)
from stocksync.domain.state import HoldStatus, SkuRow
from stocksync.domain.topology import Topology
from stocksync.service.batch_fold import ENDED
from stocksync.service.history import HistoryPage

TIMEOUT = 0.5


class DomainReservations:
    """A ReservationService and AtpReader like the worker's: rows kept as stored bytes, every
    reply indexed by request id, ended holds by reservation id. `lose_replies` replies are
    decided but never reach the caller (as after a timeout)."""

    def __init__(self, rows: dict[str, SkuRow], lose_replies: int = 0) -> None:
        self.table = {sku: row_to_bytes(row) for sku, row in rows.items()}
        self.answers: dict[str, ReservationReply] = {}
        self.ended: dict[str, ReservationReply] = {}
        self.commands: list[ReservationCommand] = []  # every command received
        self.decided: list[ReservationCommand] = []  # those decided (not answered from index)
        self.lose_replies = lose_replies

    async def request(self, command: ReservationCommand, timeout: float) -> ReservationReply | None:
        self.commands.append(command)
        reply = self.answers.get(command.request_id)
        if reply is None:
            result = apply_command(self.row(command.sku), command, TOPOLOGY)
            reply = reply_of(result)
            if result.applied:
                self.decided.append(command)
                self.table[command.sku] = row_to_bytes(result.row)
                self.answers[command.request_id] = reply
                if reply.status in ENDED:
                    self.ended[reply.reservation_id] = reply
        if self.lose_replies:
            self.lose_replies -= 1
            return None
        return reply

    def reservation_reply(self, request_id: str) -> ReservationReply | None:
        return self.answers.get(request_id)

    def reservation_end(self, reservation_id: str) -> ReservationReply | None:
        return self.ended.get(reservation_id)

    def row(self, sku: str) -> SkuRow | None:
        stored = self.table.get(sku)
        return None if stored is None else row_from_bytes(stored)

    def apply(self, *events: Any) -> None:
        """Inventory events folded into the stored rows, as the worker does."""
        for event in events:
            result = apply_event(self.row(event.sku), event, TOPOLOGY)
            self.table[event.sku] = row_to_bytes(result.row)

    # AtpReader
    def topology(self) -> Topology:
        return TOPOLOGY

    def history_of(
        self, sku: str, limit: int = 20, before: int | None = None
    ) -> HistoryPage | None:
        return None

    def health(self) -> dict[str, Any]:
        return {"ready": True}

    def serves(self, _sku: str) -> bool:
        return True  # one worker, every partition recovered


def stocked_service(**kwargs: Any) -> DomainReservations:
    # dc-1: 30, store-1: 5 -> web sees 35
    row, _ = fold(
        ev(K.RECEIVED, 30, loc="dc-1", sku=SKU, at=1000),
        ev(K.RECEIVED, 5, loc="store-1", sku=SKU, at=2000),
    )
    return DomainReservations({SKU: row}, **kwargs)


def call(
    service: DomainReservations, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    async def go() -> tuple[int, dict[str, Any]]:
        app = build_http_app(service)
        add_reservation_routes(app, service, TIMEOUT)
        async with TestClient(TestServer(app)) as client:
            response = await client.request(method, path, **kwargs)
            assert response.content_type == "application/json"
            return response.status, await response.json()

    return asyncio.run(go())


def post_reserve(
    service: DomainReservations, key: str | None = "order-1", **body: Any
) -> tuple[int, dict[str, Any]]:
    payload = {"channel": "web", "sku": SKU, "quantity": 4, **body}
    headers = {} if key is None else {"Idempotency-Key": key}
    return call(service, "POST", "/v1/reservations", json=payload, headers=headers)


def reserved(service: DomainReservations, loc: str = "dc-1") -> int:
    row = service.row(SKU)
    assert row is not None
    return stock(row, loc).reserved


# --- POST /v1/reservations ----------------------------------------------------------------


def test_reserve_that_fits_is_201_with_the_hold() -> None:
    service = stocked_service()
    before = int(time.time() * 1000)
    status, body = post_reserve(service, "order-1", quantity=4, ttl_seconds=60)
    after = int(time.time() * 1000)
    assert status == 201
    assert body.pop("expires_at") in range(before + 60_000, after + 60_001)
    assert body == {
        "reservation_id": "order-1",
        "request_id": "order-1",
        "status": "held",
        "sku": SKU,
        "channel": "web",
        "location": "dc-1",
        "quantity": 4,
        "requested": 4,
        "available": 35,
        "reason": "",
        "lines": [{"location": "dc-1", "quantity": 4}],
    }
    assert reserved(service) == 4


def test_reserve_uses_the_requested_location_partial_flag_and_default_ttl() -> None:
    service = stocked_service()
    before = int(time.time() * 1000)
    status, body = post_reserve(service, quantity=9, location="store-1", allow_partial=True)
    assert status == 201
    assert (body["location"], body["quantity"], body["requested"]) == ("store-1", 5, 9)
    assert body["expires_at"] >= before + 900_000
    command = service.commands[-1]
    assert (command.ttl_ms, command.allow_partial, command.location) == (900_000, True, "store-1")


def test_reserve_beyond_atp_is_409_with_what_was_available() -> None:
    service = stocked_service()
    status, body = post_reserve(service, quantity=36)
    assert status == 409
    assert body["error"] == "insufficient_stock"
    assert body["status"] == "rejected"
    assert (body["available"], body["requested"], body["quantity"]) == (35, 36, 0)
    assert body["message"] == body["reason"]
    assert body["message"] == "35 available to web, 36 requested"
    assert reserved(service) == 0


def test_reserving_the_whole_published_quantity_takes_lines_at_both_locations() -> None:
    service = stocked_service()
    status, body = post_reserve(service, quantity=35)
    assert status == 201
    assert body["lines"] == [
        {"location": "dc-1", "quantity": 30},
        {"location": "store-1", "quantity": 5},
    ]
    status, shown = call(service, "GET", "/v1/reservations/order-1")
    assert (status, shown["lines"]) == (200, body["lines"])


def test_reserve_at_a_location_that_does_not_serve_the_channel_is_400_naming_those_that_do() -> (
    None
):
    service = stocked_service()
    status, body = post_reserve(service, channel="pos-store-1", location="dc-1", quantity=1)
    assert status == 400
    assert body["error"] == "location_not_serving"
    assert "does not serve channel 'pos-store-1'" in body["message"]
    assert body["known"] == ["store-1"]


def test_reserve_at_an_unknown_location_is_400_with_the_known_ones() -> None:
    service = stocked_service()
    status, body = post_reserve(service, location="mars")
    assert (status, body["error"]) == (400, "unknown_location")
    assert "mars" in body["message"] and "dc-1" in body["known"]


def test_reserve_for_an_unknown_channel_is_400() -> None:
    service = stocked_service()
    status, body = post_reserve(service, channel="ebay")
    assert status == 400
    assert body["error"] == "unknown_channel"
    assert "'ebay'" in body["message"]
    assert "web" in body["known"]


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"channel": "web", "sku": SKU, "quantity": 0}, "quantity"),
        ({"channel": "web", "sku": SKU, "quantity": -2}, "quantity"),
        ({"channel": "web", "sku": SKU, "quantity": 1, "colour": "red"}, "colour"),
        ({"channel": "web", "sku": SKU, "quantity": 1, "ttl_seconds": 0}, "ttl_seconds"),
        ({"channel": "web", "quantity": 1}, "sku"),
        ({"channel": "", "sku": SKU, "quantity": 1}, "channel"),
    ],
)
def test_invalid_body_is_400_naming_the_field_and_nothing_is_sent(
    payload: dict[str, Any], where: str
) -> None:
    service = stocked_service()
    status, body = call(service, "POST", "/v1/reservations", json=payload)
    assert status == 400
    assert body["error"] == "invalid_request"
    assert body["message"].startswith(f"{where}:")
    assert service.commands == []


def test_body_that_is_not_json_is_400() -> None:
    service = stocked_service()
    status, body = call(service, "POST", "/v1/reservations", data=b"quantity=1")
    assert (status, body["error"]) == (400, "invalid_request")
    assert service.commands == []


@pytest.mark.parametrize("key", ["a:b", ":", "release:order-1:", "k" * 201])
def test_idempotency_key_with_a_colon_or_too_long_is_400(key: str) -> None:
    service = stocked_service()
    status, body = post_reserve(service, key)
    assert status == 400
    assert body["error"] == "invalid_request"
    assert "Idempotency-Key" in body["message"]
    assert service.commands == []


def test_same_idempotency_key_twice_holds_once() -> None:
    # given a hold made with key order-1
    service = stocked_service()
    first_status, first = post_reserve(service, "order-1", quantity=4)
    # when the client sends the same request again
    second_status, second = post_reserve(service, "order-1", quantity=4)
    # then it gets the same reservation and only one hold exists
    assert first_status == second_status == 201
    assert second == first
    assert reserved(service) == 4
    assert len(service.decided) == 1
    row = service.row(SKU)
    assert row is not None
    assert list(row.holds) == ["order-1"]


def test_without_idempotency_key_each_request_is_a_new_reservation() -> None:
    service = stocked_service()
    _, first = post_reserve(service, None, quantity=1)
    _, second = post_reserve(service, None, quantity=1)
    assert first["reservation_id"] != second["reservation_id"]
    assert first["reservation_id"] == first["request_id"]
    assert reserved(service) == 2


def test_no_answer_in_time_is_504_asking_to_retry_with_the_same_key() -> None:
    # given the decision is made but its reply does not come back in time
    service = stocked_service(lose_replies=1)
    status, body = post_reserve(service, "order-7", quantity=4)
    assert status == 504
    assert body["error"] == "timeout"
    assert "retry with the same Idempotency-Key (order-7)" in body["message"]
    assert body["request_id"] == "order-7"
    # when the client retries with the same key
    status, body = post_reserve(service, "order-7", quantity=4)
    # then it gets the decision, and the units are held once
    assert status == 201
    assert body["reservation_id"] == "order-7"
    assert reserved(service) == 4
    assert len(service.decided) == 1


# --- GET / DELETE / confirm / extend ------------------------------------------------------


def test_get_shows_a_held_reservation() -> None:
    service = stocked_service()
    _, held = post_reserve(service, "order-1", quantity=4)
    status, body = call(service, "GET", "/v1/reservations/order-1")
    assert status == 200
    assert body == {
        "reservation_id": "order-1",
        "status": "held",
        "sku": SKU,
        "channel": "web",
        "location": "dc-1",
        "quantity": 4,
        "expires_at": held["expires_at"],
        "lines": [{"location": "dc-1", "quantity": 4}],
    }


def test_delete_releases_and_get_then_shows_released() -> None:
    service = stocked_service()
    post_reserve(service, "order-1", quantity=4)
    status, body = call(service, "DELETE", "/v1/reservations/order-1")
    assert status == 200
    assert body["status"] == "released"
    assert (body["reservation_id"], body["quantity"], body["location"]) == ("order-1", 4, "dc-1")
    assert reserved(service) == 0
    status, body = call(service, "GET", "/v1/reservations/order-1")
    assert status == 200
    assert body["status"] == "released"
    assert body["reservation_id"] == "order-1"


def test_releasing_twice_gives_the_recorded_answer() -> None:
    service = stocked_service()
    post_reserve(service, "order-1", quantity=4)
    first = call(service, "DELETE", "/v1/reservations/order-1")
    second = call(service, "DELETE", "/v1/reservations/order-1")
    assert first == second
    assert first[0] == 200
    assert reserved(service) == 0


def test_confirm_is_200_and_the_units_stay_reserved() -> None:
    service = stocked_service()
    post_reserve(service, "order-1", quantity=4)
    status, body = call(service, "POST", "/v1/reservations/order-1/confirm")
    assert status == 200
    assert body["status"] == "confirmed"
    assert body["quantity"] == 4
    assert reserved(service) == 4
    row = service.row(SKU)
    assert row is not None and row.holds["order-1"].status is HoldStatus.CONFIRMED
    assert call(service, "GET", "/v1/reservations/order-1")[1]["status"] == "confirmed"


def test_extend_is_200_with_the_later_expiry() -> None:
    service = stocked_service()
    _, held = post_reserve(service, "order-1", quantity=4, ttl_seconds=60)
    status, body = call(
        service, "POST", "/v1/reservations/order-1/extend", json={"ttl_seconds": 3600}
    )
    assert status == 200
    assert body["status"] == "extended"
    assert body["expires_at"] >= held["expires_at"] + 3_540_000
    assert call(service, "GET", "/v1/reservations/order-1")[1]["expires_at"] == body["expires_at"]


@pytest.mark.parametrize("payload", [{}, {"ttl_seconds": 0}, {"ttl_seconds": 5, "x": 1}])
def test_extend_with_an_invalid_body_is_400(payload: dict[str, Any]) -> None:
    service = stocked_service()
    post_reserve(service, "order-1")
    status, body = call(service, "POST", "/v1/reservations/order-1/extend", json=payload)
    assert (status, body["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", "/v1/reservations/order-1/confirm", None),
        ("POST", "/v1/reservations/order-1/extend", {"ttl_seconds": 60}),
    ],
)
def test_acting_on_a_released_reservation_is_409_not_held(
    method: str, path: str, payload: dict[str, Any] | None
) -> None:
    service = stocked_service()
    post_reserve(service, "order-1", quantity=4)
    call(service, "DELETE", "/v1/reservations/order-1")
    status, body = call(service, method, path, json=payload)
    assert status == 409
    assert body["error"] == "not_held"
    assert body["status"] == "not_found"
    assert "'order-1'" in body["message"]
    assert reserved(service) == 0


def test_releasing_a_confirmed_reservation_is_409_and_keeps_the_order_line() -> None:
    service = stocked_service()
    post_reserve(service, "order-1", quantity=4)
    call(service, "POST", "/v1/reservations/order-1/confirm")
    status, body = call(service, "DELETE", "/v1/reservations/order-1")
    assert (status, body["error"]) == (409, "invalid_transition")
    assert body["message"] == (
        "cannot release reservation 'order-1': it is a confirmed order line: cancel it instead"
    )
    assert reserved(service) == 4


def test_cancelling_a_confirmed_order_line_gives_the_units_back_once() -> None:
    service = stocked_service()
    post_reserve(service, "order-1", quantity=4)
    call(service, "POST", "/v1/reservations/order-1/confirm")
    status, body = call(service, "POST", "/v1/reservations/order-1/cancel")
    assert (status, body["status"], body["quantity"]) == (200, "cancelled", 4)
    assert reserved(service) == 0
    # a second cancel is a retry of the first: the same answer, nothing given back twice
    assert call(service, "POST", "/v1/reservations/order-1/cancel") == (status, body)
    assert reserved(service) == 0
    assert call(service, "GET", "/v1/reservations/order-1")[1]["status"] == "cancelled"


def test_cancelling_a_held_reservation_is_409_naming_release() -> None:
    service = stocked_service()
    post_reserve(service, "order-1", quantity=4)
    status, body = call(service, "POST", "/v1/reservations/order-1/cancel")
    assert (status, body["error"]) == (409, "invalid_transition")
    assert "release it instead" in body["message"]
    assert reserved(service) == 4


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", "/v1/reservations/nope", None),
        ("DELETE", "/v1/reservations/nope", None),
        ("POST", "/v1/reservations/nope/confirm", None),
        ("POST", "/v1/reservations/nope/extend", {"ttl_seconds": 60}),
    ],
)
def test_unknown_reservation_is_404(method: str, path: str, payload: dict[str, Any] | None) -> None:
    service = stocked_service()
    status, body = call(service, method, path, json=payload)
    assert status == 404
    assert body["error"] == "unknown_reservation"
    assert "'nope'" in body["message"]
    assert service.commands == []


def test_a_rejected_reservation_is_404_afterwards() -> None:
    service = stocked_service()
    assert post_reserve(service, "order-9", quantity=99)[0] == 409
    assert call(service, "GET", "/v1/reservations/order-9")[0] == 404
    assert call(service, "DELETE", "/v1/reservations/order-9")[0] == 404


def test_a_hold_survives_stock_arriving_for_its_sku() -> None:
    service = stocked_service()
    post_reserve(service, "order-1", quantity=4)
    service.apply(ev(K.RECEIVED, 2, loc="store-1", sku=SKU, at=5000))
    status, body = call(service, "GET", "/v1/reservations/order-1")
    assert (status, body.get("status")) == (200, "held")
    assert call(service, "DELETE", "/v1/reservations/order-1")[0] == 200
    assert reserved(service) == 0


def test_get_shows_how_a_reservation_ended_on_a_busy_sku() -> None:
    # given order-1 was released, then the SKU answered MAX_ANSWERS other requests
    service = stocked_service()
    post_reserve(service, "order-1", quantity=4)
    call(service, "DELETE", "/v1/reservations/order-1")
    for i in range(MAX_ANSWERS):
        post_reserve(service, f"web-{i}", quantity=1)
    assert service.reservation_end("order-1") is not None
    # then GET still says it was released
    status, body = call(service, "GET", "/v1/reservations/order-1")
    assert (status, body.get("status")) == (200, "released")


def test_a_reservation_for_an_unknown_sku_is_404_and_leaves_it_unknown() -> None:
    # given no event was ever applied for a SKU, and a reservation on it was asked for
    service = stocked_service()
    status, body = post_reserve(service, sku="NEVER-STOCKED", quantity=1)
    assert (status, body["error"], body["sku"]) == (404, "unknown_sku", "NEVER-STOCKED")
    # then the ATP API still says the SKU is unknown, alone and in a batch
    status, body = call(service, "GET", "/v1/atp/NEVER-STOCKED")
    assert (status, body["error"]) == (404, "unknown_sku")
    status, body = call(service, "POST", "/v1/atp/batch", json={"skus": ["NEVER-STOCKED", SKU]})
    assert status == 200 and body["unknown"] == ["NEVER-STOCKED"] and list(body["items"]) == [SKU]


# --- the reply body -----------------------------------------------------------------------

# a reply whose every field differs from its default
FULL_REPLY = ReservationReply(
    reservation_id="order-1",
    kind=CommandKind.RESERVE,
    status=ReplyStatus.REJECTED,
    channel="web",
    location="dc-1",
    quantity=1,
    requested=4,
    available=2,
    expires_at=1_700_000_060_000,
    reason="2 available to web, 4 requested",
    request_id="order-1:retry",
    sku=SKU,
    lines={"dc-1": 1},
    fingerprint="0123456789abcdef",
)


def test_every_field_of_the_reply_is_in_the_http_body() -> None:
    body = reply_body(FULL_REPLY)
    # the command's kind (the route names it) and the fingerprint (internal) are left out
    assert sorted(REPLY_FIELDS_NOT_IN_BODY) == ["fingerprint", "kind"]
    assert set(body) == set(ReservationReply.__struct_fields__) - REPLY_FIELDS_NOT_IN_BODY
    assert body.pop("lines") == [{"location": "dc-1", "quantity": 1}]
    for name in body:
        value = getattr(FULL_REPLY, name)
        assert body[name] == (value.lower() if isinstance(value, StrEnum) else value), name
    # a field is never an argument name of the error helper the body is spread into
    assert not set(body) & {"http_status", "code", "message", "error"}


def test_a_field_added_to_the_reply_reaches_the_http_body() -> None:
    class Extended(ReservationReply, frozen=True, kw_only=True):
        hold_count: int = 0

    extended = Extended(**msgspec.structs.asdict(FULL_REPLY), hold_count=3)
    assert reply_body(extended) == {**reply_body(FULL_REPLY), "hold_count": 3}


def test_the_reply_body_is_laid_out_as_it_always_was() -> None:
    assert json.dumps(reply_body(FULL_REPLY), separators=(",", ":")) == (
        '{"reservation_id":"order-1","request_id":"order-1:retry","status":"rejected",'
        f'"sku":"{SKU}","channel":"web","location":"dc-1","quantity":1,"requested":4,'
        '"available":2,"expires_at":1700000060000,'
        '"reason":"2 available to web, 4 requested",'
        '"lines":[{"location":"dc-1","quantity":1}]}'
    )


# --- idempotency keys and strict numbers --------------------------------------------------


def test_an_idempotency_key_reused_with_another_body_is_422_and_holds_nothing_more() -> None:
    service = stocked_service()
    first = post_reserve(service, "k2", quantity=1)
    assert first[0] == 201
    for other in ({"quantity": 7}, {"quantity": 1, "ttl_seconds": 30}):
        status, body = post_reserve(service, "k2", **other)
        assert (status, body["error"]) == (422, "idempotency_key_reused")
        assert body["original"] == {"channel": "web", "quantity": 1, "location": "dc-1"}
        assert "use a new key for a new request" in body["message"]
    assert reserved(service) == 1
    # the same body is still answered with the first result
    assert post_reserve(service, "k2", quantity=1) == first


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", "2"),
        ("quantity", 2.0),
        ("quantity", True),
        ("ttl_seconds", "60"),
        ("allow_partial", "yes"),
        ("sku", 12),
    ],
)
def test_a_number_or_flag_of_the_wrong_json_type_is_400_naming_the_field(
    field: str, value: object
) -> None:
    service = stocked_service()
    wrong: dict[str, Any] = {field: value}
    status, body = post_reserve(service, "order-1", **wrong)
    assert (status, body["error"]) == (400, "invalid_request")
    assert body["message"].startswith(f"{field}: ")
    assert reserved(service) == 0
