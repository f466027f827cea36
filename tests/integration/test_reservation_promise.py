"""Every published quantity can be honoured, and reservations have no holes: on a real broker
and a real worker, over HTTP (multi-location holds, idempotency keys bound to the request,
unknown SKUs and locations, strict input, the order-line lifecycle)."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from typing import Any

from stocksync.bootstrap import file_topology
from stocksync.channels.producer import ChannelProducer
from stocksync.codec.outputs import decode_alert
from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.domain.events import EventKind
from stocksync.domain.state import SkuRow
from stocksync.replay import replay
from tests.integration.reservation_clients import reserve_once
from tests.integration.support import (
    WorkerProcess,
    http_json,
    read_log,
    read_topic,
    wait_for,
)


def receive(worker: WorkerProcess, sku: str, stock: dict[str, int]) -> None:
    producer = ChannelProducer(worker.settings.bootstrap_servers, "wms", worker.settings.topics)
    for location, units in stock.items():
        producer.emit(EventKind.RECEIVED, sku, location, units)
    producer.flush()
    worker.wait_revision(sku, len(stock))


def call(worker: WorkerProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{worker.url}{path}",
        method=method,
        data=b"" if body is None and method == "POST" else None,
    )
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        assert exc.headers.get_content_type() == "application/json", exc.read()
        return exc.code, json.loads(exc.read())


def web_quantity(worker: WorkerProcess, sku: str) -> int:
    status, view = worker.atp(sku, "web")
    assert status == 200, view
    quantity: int = view["atp"]
    return quantity


def reserved(worker: WorkerProcess, sku: str) -> dict[str, int]:
    view = worker.atp(sku)[1]
    return {loc: stock["reserved"] for loc, stock in view["locations"].items()}


def test_the_whole_published_quantity_over_three_locations_is_held_in_one_reservation(
    worker: WorkerProcess,
) -> None:
    # given web sells from dc-1 (safety stock 2), dc-2 and store-1 (safety stock 1)
    sku = "SPAN-1"
    receive(worker, sku, {"dc-1": 12, "dc-2": 7, "store-1": 6})
    published = web_quantity(worker, sku)
    assert published == 10 + 7 + 5
    # when one checkout reserves exactly what web was told
    status, held = reserve_once(worker.url, {"channel": "web", "sku": sku, "quantity": 22}, "s1")
    # then it is held in three lines, largest stock first
    assert status == 201, held
    assert held["lines"] == [
        {"location": "dc-1", "quantity": 10},
        {"location": "dc-2", "quantity": 7},
        {"location": "store-1", "quantity": 5},
    ]
    assert reserved(worker, sku) == {"dc-1": 10, "dc-2": 7, "store-1": 5}
    assert http_json(f"{worker.url}/v1/reservations/s1")[1]["lines"] == held["lines"]
    # and one more unit is refused
    status, refused = reserve_once(worker.url, {"channel": "web", "sku": sku, "quantity": 1}, "s2")
    assert (status, refused["error"], refused["available"]) == (409, "insufficient_stock", 0)
    # when the hold is released, web is back to exactly what it was
    assert call(worker, "DELETE", "/v1/reservations/s1")[0] == 200
    wait_for(lambda: web_quantity(worker, sku) == published, 10, "web back to 22")
    assert reserved(worker, sku) == {"dc-1": 0, "dc-2": 0, "store-1": 0}


def test_an_idempotency_key_reused_with_another_body_is_422_and_never_a_second_hold(
    worker: WorkerProcess,
) -> None:
    receive(worker, "NC-TEST-1", {"dc-2": 10})
    receive(worker, "NC-TEST-2", {"dc-2": 10})
    first = reserve_once(worker.url, {"channel": "web", "sku": "NC-TEST-1", "quantity": 1}, "k2")
    assert first[0] == 201
    for other in (
        {"channel": "web", "sku": "NC-TEST-2", "quantity": 4},  # another SKU
        {"channel": "web", "sku": "NC-TEST-1", "quantity": 7},  # another quantity
    ):
        status, body = reserve_once(worker.url, other, "k2")
        assert (status, body["error"]) == (422, "idempotency_key_reused"), body
        original = body["original"]
        assert isinstance(original, dict) and original["quantity"] == 1
        assert "NC-TEST-1" in str(body["message"])
    assert reserved(worker, "NC-TEST-1") == {"dc-2": 1}
    assert reserved(worker, "NC-TEST-2") == {"dc-2": 0}
    # the same body still gets the first answer, and DELETE releases the one hold there is
    assert (
        reserve_once(worker.url, {"channel": "web", "sku": "NC-TEST-1", "quantity": 1}, "k2")
        == first
    )
    assert call(worker, "DELETE", "/v1/reservations/k2")[0] == 200
    assert reserved(worker, "NC-TEST-1") == {"dc-2": 0}


def test_an_event_at_an_unknown_location_keeps_its_units_and_raises_one_alert(
    worker: WorkerProcess,
) -> None:
    before = worker.metrics().get("stocksync_unknown_locations_total", 0)
    receive(worker, "MARS-1", {"mars": 5})
    receive_more = ChannelProducer(worker.settings.bootstrap_servers, "wms", worker.settings.topics)
    receive_more.emit(EventKind.RECEIVED, "MARS-1", "mars", 2)
    receive_more.flush()
    view = worker.wait_revision("MARS-1", 2)
    # the units are kept in the row, under the location, and in no channel
    assert view["locations"]["mars"]["on_hand"] == 7
    assert all(channel["atp"] == 0 for channel in view["channels"].values())

    def unknown_location_alerts() -> list[dict[str, Any]] | None:
        alerts = [
            decode_alert(value)
            for key, value in read_topic(
                worker.settings.bootstrap_servers, worker.settings.topics.alerts
            )
            if key == b"MARS-1" and value
        ]
        found = [a for a in alerts if a["type"] == "UNKNOWN_LOCATION"]
        return found or None

    found = wait_for(unknown_location_alerts, 15, "an UNKNOWN_LOCATION alert")
    assert len(found) == 1  # once per SKU and location, not per event
    assert (found[0]["location"], found[0]["quantity"]) == ("mars", 5)
    assert "add mars to the topology" in found[0]["message"]
    assert worker.metrics()["stocksync_unknown_locations_total"] == before + 1


def test_strict_input_answers_json_errors(worker: WorkerProcess) -> None:
    receive(worker, "STRICT-1", {"dc-2": 5})
    # an unknown SKU: 404, as GET /v1/atp/{sku} answers
    status, body = call(
        worker, "POST", "/v1/reservations", {"channel": "web", "sku": "NEVER-SEEN", "quantity": 1}
    )
    assert (status, body["error"]) == (404, "unknown_sku")
    assert worker.atp("NEVER-SEEN")[0] == 404
    # a quantity sent as a JSON string: 400 naming the field
    status, body = call(
        worker, "POST", "/v1/reservations", {"channel": "web", "sku": "STRICT-1", "quantity": "2"}
    )
    assert (status, body["error"]) == (400, "invalid_request")
    assert body["message"].startswith("quantity: ")
    assert reserved(worker, "STRICT-1") == {"dc-2": 0}
    # a 20,000-character SKU, in the body and in the path: JSON 4xx
    long_sku = "S" * 20_000
    status, body = call(
        worker, "POST", "/v1/reservations", {"channel": "web", "sku": long_sku, "quantity": 1}
    )
    assert status == 400 and body["message"].startswith("sku: ")
    status, body = call(worker, "GET", f"/v1/atp/{long_sku}")
    assert 400 <= status < 500 and body["error"] == "request_line_too_long"
    # and a raw request line over the limit gets the same JSON shape
    host, port = worker.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"GET /v1/atp/{long_sku} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = conn.recv(65536).decode()
    head, _, payload = answer.partition("\r\n\r\n")
    assert "application/json" in head.lower()
    assert json.loads(payload)["error"] == "request_line_too_long"


def test_cancel_after_confirm_gives_the_units_back_and_the_row_equals_a_replay(
    fresh_worker: WorkerProcess,
) -> None:
    worker = fresh_worker
    sku = "ORDER-1"
    receive(worker, sku, {"dc-1": 12, "dc-2": 7})
    body = {"channel": "web", "sku": sku, "quantity": 15}
    status, held = reserve_once(worker.url, body, "order-1")
    assert status == 201
    # releasing a confirmed order line is refused, naming cancel
    assert call(worker, "POST", "/v1/reservations/order-1/confirm")[0] == 200
    status, refused = call(worker, "DELETE", "/v1/reservations/order-1")
    assert (status, refused["error"]) == (409, "invalid_transition")
    assert "cancel it instead" in refused["message"]
    assert call(worker, "GET", "/v1/reservations/order-1")[1]["status"] == "confirmed"

    # when the worker is SIGKILLed and started again
    worker.stop(signal.SIGKILL)
    worker.start()
    # then the same key with the same body gets the original answer, and no second hold
    assert reserve_once(worker.url, body, "order-1") == (201, held)
    # and another body under that key is still 422
    assert reserve_once(worker.url, {**body, "quantity": 1}, "order-1")[0] == 422
    assert reserved(worker, sku) == {"dc-1": 10, "dc-2": 5}

    # when the order line is cancelled (twice: the retry gets the same answer)
    status, cancelled = call(worker, "POST", "/v1/reservations/order-1/cancel")
    assert (status, cancelled["status"], cancelled["quantity"]) == (200, "cancelled", 15)
    assert call(worker, "POST", "/v1/reservations/order-1/cancel") == (status, cancelled)
    # then its units are back, and the reservation says how it ended
    assert reserved(worker, sku) == {"dc-1": 0, "dc-2": 0}
    assert web_quantity(worker, sku) == 10 + 7
    assert call(worker, "GET", "/v1/reservations/order-1")[1]["status"] == "cancelled"

    # and the table's row equals a replay of the log from offset 0, byte for byte
    s = worker.settings
    log = read_log(s.bootstrap_servers, s.topics.stock_events)
    log += read_log(s.bootstrap_servers, s.topics.reservation_commands)
    wanted = row_to_bytes(replay(log, file_topology(s))[sku])

    def changelog_row() -> SkuRow | None:
        rows = [
            v
            for k, v in read_topic(s.bootstrap_servers, s.topics.atp_changelog)
            if k == sku.encode()
        ]
        return row_from_bytes(rows[-1]) if rows and rows[-1] else None

    wait_for(
        lambda: (live := changelog_row()) is not None and row_to_bytes(live) == wanted,
        15,
        "the changelog's row to equal the replay",
    )
