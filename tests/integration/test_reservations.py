"""Reservations on a real broker and a real worker, over HTTP."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from stocksync.channels.producer import ChannelProducer
from stocksync.domain.events import EventKind
from stocksync.domain.reservations import MAX_ANSWERS
from tests.integration.reservation_clients import client_pool, reserve_once, storm
from tests.integration.support import WorkerProcess, http_json, wait_for

CLIENT_PROCESSES = 4


def stock(worker: WorkerProcess, sku: str, location: str, units: int) -> None:
    producer = ChannelProducer(worker.settings.bootstrap_servers, "wms", worker.settings.topics)
    producer.emit(EventKind.RECEIVED, sku, location, units)
    producer.flush()
    worker.wait_revision(sku, 1)


def run_storm(worker: WorkerProcess, sku: str, requests: int, deadline_s: float = 180) -> list[Any]:
    keys = [f"{sku}-{uuid.uuid4().hex[:12]}" for _ in range(requests)]
    shares = [keys[i::CLIENT_PROCESSES] for i in range(CLIENT_PROCESSES)]
    with client_pool(CLIENT_PROCESSES) as pool:
        futures = [
            pool.submit(storm, worker.url, sku, "web", share, 8, deadline_s) for share in shares
        ]
        return [result for future in futures for result in future.result()]


def test_a_storm_of_2000_requests_on_100_units_holds_exactly_100(worker: WorkerProcess) -> None:
    # given 100 units of one SKU that web may sell, spread over three locations: 40 at dc-1
    # (42 less its safety stock of 2), 35 at dc-2, 25 at store-1 (26 less 1)
    sku = "STORM-1"
    spread = {"dc-1": 42, "dc-2": 35, "store-1": 26}
    producer = ChannelProducer(worker.settings.bootstrap_servers, "wms", worker.settings.topics)
    for location, units in spread.items():
        producer.emit(EventKind.RECEIVED, sku, location, units)
    producer.flush()
    worker.wait_revision(sku, len(spread))
    assert worker.atp(sku, "web")[1]["atp"] == 100

    # when 2,000 one-unit reservations arrive at once from 4 processes, 8 connections each
    results = run_storm(worker, sku, 2000)

    # then every request was answered: 100 held, 1,900 refused with what was available
    statuses = [status for _, status, _, _, _ in results]
    assert len(results) == 2000
    assert statuses.count(201) == 100
    assert statuses.count(409) == 1900
    assert all(body["available"] == 0 for _, status, body, _, _ in results if status == 409)
    # and exactly 100 units are held, each location's ATP taken and no more, none oversold,
    # the channel shows nothing left
    view = worker.atp(sku)[1]
    held = {loc: view["locations"][loc]["reserved"] for loc in spread}
    assert held == {"dc-1": 40, "dc-2": 35, "store-1": 25}
    assert all(view["locations"][loc]["oversold"] == 0 for loc in spread)
    assert view["channels"]["web"]["atp"] == 0
    latencies = sorted(t for _, _, _, attempts, t in results if attempts == 1)
    p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99)]
    print(f"\nstorm: p50={p50 * 1000:.1f}ms p99={p99 * 1000:.1f}ms, 32 concurrent clients")


def test_the_same_idempotency_key_never_holds_twice(worker: WorkerProcess) -> None:
    sku = "IDEM-1"
    stock(worker, sku, "dc-2", 10)
    body = {"channel": "web", "sku": sku, "quantity": 3}
    # when the same request is sent three times
    answers = [reserve_once(worker.url, body, "checkout-42") for _ in range(3)]
    # then each gets the same 201 and the same hold, and only 3 units are reserved
    assert [status for status, _ in answers] == [201, 201, 201]
    assert len({a["reservation_id"] for _, a in answers}) == 1
    assert worker.atp(sku)[1]["locations"]["dc-2"]["reserved"] == 3


def test_a_retry_after_many_newer_requests_gets_its_first_answer_and_no_new_hold(
    worker: WorkerProcess,
) -> None:
    sku = "IDEM-OLD"
    stock(worker, sku, "dc-2", 200)
    body = {"channel": "web", "sku": sku, "quantity": 2}
    # given a reservation that was held, then confirmed into an order line
    status, first = reserve_once(worker.url, body, "old-checkout")
    assert status == 201
    assert _request(worker, "POST", "/v1/reservations/old-checkout/confirm")[0] == 200
    # and more newer requests on the SKU than the row remembers answers for
    for i in range(MAX_ANSWERS + 6):
        assert reserve_once(worker.url, {**body, "quantity": 1}, f"newer-{i}")[0] == 201
    reserved = 2 + MAX_ANSWERS + 6
    assert worker.atp(sku)[1]["locations"]["dc-2"]["reserved"] == reserved

    # when the first request is retried with its key
    status, again = reserve_once(worker.url, body, "old-checkout")

    # then it gets its first answer, and no second hold is taken for it
    assert (status, again) == (201, first)
    assert worker.atp(sku)[1]["locations"]["dc-2"]["reserved"] == reserved
    assert http_json(f"{worker.url}/v1/reservations/old-checkout")[1]["status"] == "confirmed"


def test_partial_reservation_takes_what_is_left(worker: WorkerProcess) -> None:
    sku = "PART-1"
    stock(worker, sku, "dc-2", 4)
    status, body = reserve_once(
        worker.url, {"channel": "web", "sku": sku, "quantity": 10, "allow_partial": True}, "part-1"
    )
    assert status == 201 and (body["quantity"], body["requested"]) == (4, 10)
    status, body = reserve_once(
        worker.url, {"channel": "web", "sku": sku, "quantity": 1, "allow_partial": True}, "part-2"
    )
    assert status == 409 and body["available"] == 0


def test_release_confirm_and_lookup(worker: WorkerProcess) -> None:
    sku = "LIFE-1"
    stock(worker, sku, "dc-2", 10)
    reserve_once(worker.url, {"channel": "web", "sku": sku, "quantity": 4}, "life-a")
    reserve_once(worker.url, {"channel": "web", "sku": sku, "quantity": 2}, "life-b")
    assert worker.atp(sku)[1]["locations"]["dc-2"]["reserved"] == 6

    # GET shows the hold
    status, got = http_json(f"{worker.url}/v1/reservations/life-a")
    assert status == 200 and got["status"] == "held" and got["quantity"] == 4

    # DELETE releases it: units back to the channel
    status, released = _request(worker, "DELETE", "/v1/reservations/life-a")
    assert status == 200 and released["status"] == "released"
    assert worker.atp(sku)[1]["locations"]["dc-2"]["reserved"] == 2
    assert http_json(f"{worker.url}/v1/reservations/life-a")[1]["status"] == "released"
    # DELETE is idempotent: again, the same answer and nothing more released
    assert _request(worker, "DELETE", "/v1/reservations/life-a") == (status, released)
    assert worker.atp(sku)[1]["locations"]["dc-2"]["reserved"] == 2
    # and a released hold cannot be confirmed
    assert _request(worker, "POST", "/v1/reservations/life-a/confirm")[0] == 409

    # confirm turns the other into an order line: still reserved, no longer a hold
    status, confirmed = _request(worker, "POST", "/v1/reservations/life-b/confirm")
    assert status == 200 and confirmed["status"] == "confirmed"
    assert worker.atp(sku)[1]["locations"]["dc-2"]["reserved"] == 2
    assert http_json(f"{worker.url}/v1/reservations/life-b")[1]["status"] == "confirmed"
    assert http_json(f"{worker.url}/v1/reservations/nope")[0] == 404


def test_a_hold_expires_through_the_log(worker: WorkerProcess) -> None:
    sku = "EXP-1"
    stock(worker, sku, "dc-2", 5)
    status, _ = reserve_once(
        worker.url, {"channel": "web", "sku": sku, "quantity": 5, "ttl_seconds": 1}, "exp-1"
    )
    assert status == 201
    assert worker.atp(sku)[1]["channels"]["web"]["atp"] == 0
    # then, after its time ran out, the worker writes EXPIRE to the log and the units return
    wait_for(
        lambda: http_json(f"{worker.url}/v1/reservations/exp-1")[1].get("status") == "expired",
        15,
        "expiry",
    )
    assert worker.atp(sku)[1]["channels"]["web"]["atp"] == 5


def _request(worker: WorkerProcess, method: str, path: str) -> tuple[int, Any]:
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        f"{worker.url}{path}", method=method, data=b"" if method == "POST" else None
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_round_trip_latency_is_reported(worker: WorkerProcess) -> None:
    sku = "LAT-1"
    stock(worker, sku, "dc-2", 100_000)
    timings = []
    for i in range(300):
        started = time.perf_counter()
        status, _ = reserve_once(
            worker.url, {"channel": "web", "sku": sku, "quantity": 1}, f"lat-{i}"
        )
        timings.append(time.perf_counter() - started)
        assert status == 201
    timings.sort()
    p50, p99 = timings[150] * 1000, timings[296] * 1000
    print(f"\nreservation round trip over HTTP: p50={p50:.1f}ms p99={p99:.1f}ms")
