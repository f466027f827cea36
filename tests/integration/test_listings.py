"""The query endpoints on two real workers that split the partitions: every listing asked of
either worker pages through everything both hold, exactly once and in order; the alerts come
from the topic; a channel's history shows what caused each quantity; and while a worker is
gone a listing is a 503, never a page with its part missing."""

from __future__ import annotations

import signal
import urllib.error
import urllib.request
from typing import Any

from stocksync.channels.producer import ChannelProducer
from stocksync.codec.outputs import decode_alert
from stocksync.domain.events import EventKind
from tests.integration.reservation_clients import reserve_once
from tests.integration.support import (
    WorkerProcess,
    http_json,
    partitions,
    read_records,
    wait_for,
)

SKUS = [f"LST-{i:02d}" for i in range(24)]
HISTORY_SKU = "LST-HIST"
OVERSOLD = SKUS[20:]


def split_between(a: WorkerProcess, b: WorkerProcess) -> bool:
    mine, theirs = partitions(a), partitions(b)
    return bool(mine and theirs and not mine & theirs) and len(mine | theirs) == (
        a.settings.partitions
    )


def every_page(worker: WorkerProcess, path: str) -> list[dict[str, Any]]:
    """The items of every page from the first to the last (next_cursor null)."""
    separator = "&" if "?" in path else "?"
    items: list[dict[str, Any]] = []
    status, page = worker.http(path)
    for _ in range(500):
        assert status == 200, (path, page)
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        status, page = worker.http(f"{path}{separator}cursor={page['next_cursor']}")
    raise AssertionError(f"{path}: paging did not end")


def post(worker: WorkerProcess, path: str) -> tuple[int, Any]:
    return http_json(f"{worker.url}{path}", body={})


def test_listings_across_two_workers(pair: tuple[WorkerProcess, WorkerProcess]) -> None:
    a, b = pair
    settings = a.settings
    wait_for(lambda: split_between(a, b), 90, "the group to split the partitions")

    # given SKUs on both workers, web selling dc-2's units
    with ChannelProducer(settings.bootstrap_servers, "wms", settings.topics) as wms:
        for i, sku in enumerate(SKUS):
            wms.emit(EventKind.RECEIVED, sku, "dc-2", 10 + i)
        receipt = wms.emit(EventKind.RECEIVED, HISTORY_SKU, "dc-2", 20)
    for sku in [*SKUS, HISTORY_SKU]:
        a.wait_revision(sku, 1)

    # -- GET /v1/skus: every SKU once, in key order, whichever worker is asked ----------------
    everything = sorted([*SKUS, HISTORY_SKU])
    for worker in (a, b):
        for limit in (1, 7, 500):
            items = every_page(worker, f"/v1/skus?limit={limit}")
            assert [i["sku"] for i in items] == everything, (worker.url, limit)
    short = every_page(b, "/v1/skus?below_atp=15&channel=web&limit=2")
    assert [(i["sku"], i["channels"]) for i in short] == [
        (f"LST-{i:02d}", {"web": 10 + i}) for i in range(5)
    ]
    assert [i["sku"] for i in every_page(a, "/v1/skus?prefix=LST-1&limit=3")] == [
        f"LST-{i}" for i in range(10, 20)
    ]

    # -- GET /v1/reservations: live ones by SKU and id, then ended ones by id ------------------
    for i in range(6):
        made_at = (a, b)[i % 2]
        body = {"channel": "web", "sku": SKUS[i], "quantity": 2}
        status, held = reserve_once(made_at.url, body, f"lst-r{i}")
        assert status == 201, held
    assert post(a, "/v1/reservations/lst-r1/confirm")[0] == 200
    assert _delete(a, "/v1/reservations/lst-r2") == 200
    assert post(b, "/v1/reservations/lst-r3/confirm")[0] == 200
    assert post(a, "/v1/reservations/lst-r3/cancel")[0] == 200
    expected = [
        ("lst-r0", "held"),
        ("lst-r1", "confirmed"),
        ("lst-r4", "held"),
        ("lst-r5", "held"),
        ("lst-r2", "released"),
        ("lst-r3", "cancelled"),
    ]
    for worker in (a, b):
        items = every_page(worker, "/v1/reservations?limit=2")
        assert [(i["reservation_id"], i["status"]) for i in items] == expected, worker.url
        for item in items:  # each shaped as its own lookup shows it
            assert worker.http(f"/v1/reservations/{item['reservation_id']}") == (200, item)
    ended = every_page(a, "/v1/reservations?status=cancelled")
    assert [i["reservation_id"] for i in ended] == ["lst-r3"]
    of_one = every_page(b, f"/v1/reservations?sku={SKUS[1]}")
    assert [i["reservation_id"] for i in of_one] == ["lst-r1"]

    # -- GET /v1/channels/web/skus/{sku}/history: each quantity with its cause ---------------
    with ChannelProducer(settings.bootstrap_servers, "pos", settings.topics) as pos:
        first_sale = pos.emit(EventKind.SOLD, HISTORY_SKU, "dc-2", 3)
    a.wait_revision(HISTORY_SKU, 2)
    body = {"channel": "web", "sku": HISTORY_SKU, "quantity": 5}
    status, hold = reserve_once(b.url, body, "lst-h")
    assert status == 201, hold
    with ChannelProducer(settings.bootstrap_servers, "pos", settings.topics) as pos:
        second_sale = pos.emit(EventKind.SOLD, HISTORY_SKU, "dc-2", 2)
    a.wait_revision(HISTORY_SKU, 4)
    for worker in (a, b):  # the SKU's owner answers, asked directly or through the other
        path = f"/v1/channels/web/skus/{HISTORY_SKU}/history?limit=1"
        entries = every_page_of_history(worker, path)
        assert [(e["previous"], e["quantity"]) for e in entries] == [
            (12, 10),
            (17, 12),
            (20, 17),
            (None, 20),
        ]
        causes = [e["event"] and (e["event"]["event_id"], e["event"]["type"]) for e in entries]
        assert causes == [
            (second_sale.event_id, "SOLD"),
            None,  # the hold: no event, said so
            (first_sale.event_id, "SOLD"),
            (receipt.event_id, "RECEIVED"),
        ]
        assert entries[0]["event"]["source"] == "pos" and entries[0]["event"]["location"] == "dc-2"
        assert entries[0]["policy_version"] == 1 and entries[0]["at"] == second_sale.occurred_at
        assert "reservation" in entries[1]["why"]
    assert a.http("/v1/channels/web/skus/LST-NEVER/history")[1]["error"] == "unknown_sku"
    assert b.http(f"/v1/channels/nope/skus/{HISTORY_SKU}/history")[0] == 404

    # -- GET /v1/alerts: what the topic holds, newest first, a page at a time -----------------
    with ChannelProducer(settings.bootstrap_servers, "market", settings.topics) as market:
        for sku in OVERSOLD:
            market.emit(EventKind.SOLD, sku, "dc-2", 100)
    topic = settings.topics.alerts

    def published() -> list[dict[str, Any]]:
        records = read_records(settings.bootstrap_servers, topic)
        return [decode_alert(value) for _, value, _ in records if value]

    def every_oversell() -> list[dict[str, Any]] | None:
        found = published()
        return found if sum(x["type"] == "OVERSELL" for x in found) >= len(OVERSOLD) else None

    on_topic = wait_for(every_oversell, 30, "the oversell alerts on the topic")
    for worker in (a, b):
        listed = every_page(worker, "/v1/alerts?limit=3")
        assert sorted(x["alert_id"] for x in listed) == sorted(x["alert_id"] for x in on_topic)
        stamps = [x["timestamp"] for x in listed]
        assert stamps == sorted(stamps, reverse=True)
    oversells = every_page(b, "/v1/alerts?type=OVERSELL&limit=2")
    assert sorted(x["sku"] for x in oversells) == OVERSOLD
    of_sku = every_page(a, f"/v1/alerts?sku={OVERSOLD[0]}")
    assert of_sku and {x["sku"] for x in of_sku} == {OVERSOLD[0]}
    listed = every_page(a, "/v1/alerts")
    since = listed[len(listed) // 2]["timestamp"]
    recent = every_page(a, f"/v1/alerts?since={since}")
    assert {x["alert_id"] for x in recent} == {
        x["alert_id"] for x in listed if x["timestamp"] >= since
    }

    # -- GET /: the index ------------------------------------------------------------------------
    status, index = a.http("/")
    assert status == 200 and index["dashboard"] == f"{a.url}/dashboard"
    assert {"/v1/skus", "/v1/reservations", "/v1/alerts"} <= {e["path"] for e in index["endpoints"]}

    # -- when a worker dies, a listing is a 503 until its partitions are served again; a page
    # that is answered is always whole
    b.stop(signal.SIGKILL)
    answers: list[int] = []

    def whole_again() -> bool:
        status, page = a.http("/v1/skus?limit=500")
        answers.append(status)
        if status == 200:
            assert [i["sku"] for i in page["items"]] == everything, "a partial page"
            return True
        assert status == 503 and page["error"] in (
            "worker_unavailable",
            "partitions_moving",
            "not_ready",
        ), page
        return False

    wait_for(whole_again, 120, "worker a to serve every partition", interval=0.5)
    assert 503 in answers, "the listing did not notice the dead worker"


def every_page_of_history(worker: WorkerProcess, path: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    status, page = worker.http(path)
    for _ in range(50):
        assert status == 200, page
        entries.extend(page["entries"])
        if page["next_cursor"] is None:
            return entries
        status, page = worker.http(f"{path}&cursor={page['next_cursor']}")
    raise AssertionError("paging did not end")


def _delete(worker: WorkerProcess, path: str) -> int:
    request = urllib.request.Request(f"{worker.url}{path}", method="DELETE")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
