"""The query endpoints over HTTP (aiohttp's TestServer), reading the real fold's tables over the
memory adapters: pages and cursors, filters, the JSON errors, API keys, and a listing served
by two workers that each hold half the partitions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from service.alert_log_support import MemoryAlertLog
from service.listing_support import ListingTables, MemoryReader, split
from service.support import PARTITIONS, partition_of

from stocksync.api.auth import ApiKeys, parse_keys
from stocksync.api.http import build_http_app
from stocksync.api.listings import add_listing_routes
from stocksync.api.reservations import add_reservation_routes
from stocksync.domain.reservations import ReservationCommand, ReservationReply
from stocksync.service.cursors import encode_cursor

KEYS = {
    "keys": [
        {"name": "web-checkout", "key": "web-secret", "channel": "web"},
        {"name": "ops", "key": "ops-secret", "channel": "*"},
    ]
}
WEB = {"X-API-Key": "web-secret"}
OPS = {"X-API-Key": "ops-secret"}
SKUS = {f"SKU-{i:02d}": 10 + i for i in range(12)}


class ReservationLookups:
    """The reservation service of the worker, for GET /v1/reservations/{id}: lookups only."""

    def __init__(self, reader: MemoryReader) -> None:
        self.reader = reader

    async def request(self, command: ReservationCommand, timeout: float) -> ReservationReply | None:
        raise AssertionError("the listing tests decide nothing")

    def reservation_reply(self, request_id: str) -> ReservationReply | None:
        return self.reader.queries.reservation_reply(request_id)

    def reservation_end(self, reservation_id: str) -> ReservationReply | None:
        return self.reader.queries.reservation_end(reservation_id)

    def row(self, sku: str) -> Any:
        return self.reader.row(sku)

    def topology(self) -> Any:
        return self.reader.topology()


def app_of(
    reader: MemoryReader,
    alerts: MemoryAlertLog | None = None,
    keys: ApiKeys | None = None,
    owners: Any = None,
) -> web.Application:
    app = build_http_app(reader, keys=keys, owners=owners)
    add_reservation_routes(app, ReservationLookups(reader), 0.5)
    add_listing_routes(app, reader, alerts if alerts is not None else MemoryAlertLog())
    return app


Call = Callable[..., Awaitable[tuple[int, Any]]]


def served(app: web.Application, test: Callable[[Call], Awaitable[None]]) -> None:
    async def go() -> None:
        async with TestClient(TestServer(app)) as client:

            async def call(path: str, **kwargs: Any) -> tuple[int, Any]:
                response = await client.get(path, **kwargs)
                assert response.content_type == "application/json", path
                body = await response.json()
                if response.status == 503:
                    assert response.headers["Retry-After"] == "1"
                return response.status, body

            await test(call)

    asyncio.run(go())


async def every_page(call: Call, path: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    separator = "&" if "?" in path else "?"
    status, page = await call(path, **kwargs)
    for _ in range(200):
        assert status == 200, page
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        status, page = await call(f"{path}{separator}cursor={page['next_cursor']}", **kwargs)
    raise AssertionError("paging did not end")


def keys() -> ApiKeys:
    return parse_keys(KEYS, origin="test")


# -- GET /v1/skus --------------------------------------------------------------------------------


def test_skus_come_a_page_at_a_time_in_key_order_with_their_channel_quantities() -> None:
    built = ListingTables.stocked(SKUS)

    async def test(call: Call) -> None:
        items = await every_page(call, "/v1/skus?limit=5")
        assert [item["sku"] for item in items] == sorted(SKUS)
        assert items[0] == {
            "sku": "SKU-00",
            "revision": 1,
            "last_event_at": items[0]["last_event_at"],
            # 10 at dc-1: marketplace keeps back 10% and 1 unit; pos-store-1 sells store-1 only
            "channels": {"marketplace": 8, "pos-store-1": 0, "web": 10},
        }
        status, page = await call("/v1/skus?limit=5")
        assert (status, len(page["items"])) == (200, 5)

    served(app_of(built.reader()), test)


def test_below_atp_lists_the_skus_a_channel_is_short_of() -> None:
    built = ListingTables.stocked(SKUS)

    async def test(call: Call) -> None:
        items = await every_page(call, "/v1/skus?below_atp=14&channel=web&limit=2")
        assert [(i["sku"], i["channels"]) for i in items] == [
            (f"SKU-{i:02d}", {"web": 10 + i}) for i in range(4)
        ]
        items = await every_page(call, "/v1/skus?prefix=SKU-1&limit=1")
        assert [i["sku"] for i in items] == ["SKU-10", "SKU-11"]

    served(app_of(built.reader()), test)


@pytest.mark.parametrize(
    ("query", "code", "parameter"),
    [
        ("below_atp=3", "bad_parameter", "below_atp"),
        ("below_atp=-1&channel=web", "bad_parameter", "below_atp"),
        ("limit=0", "bad_parameter", "limit"),
        ("limit=501", "bad_parameter", "limit"),
        ("limit=ten", "bad_parameter", "limit"),
        ("cursor=bm90IGEgY3Vyc29y", "bad_cursor", "cursor"),
        ("cursor=%25%25%25", "bad_cursor", "cursor"),
        ("channel=nowhere", "unknown_channel", None),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(query: str, code: str, parameter: str | None) -> None:
    async def test(call: Call) -> None:
        status, body = await call(f"/v1/skus?{query}")
        assert (status, body["error"]) == (400, code), body
        assert body.get("parameter") == parameter
        assert body["message"]

    served(app_of(ListingTables.stocked(SKUS).reader()), test)


def test_a_cursor_is_refused_with_other_filters_or_on_another_listing() -> None:
    async def test(call: Call) -> None:
        status, page = await call("/v1/skus?limit=2&prefix=SKU")
        cursor = page["next_cursor"]
        status, body = await call(f"/v1/skus?limit=2&prefix=SKU-1&cursor={cursor}")
        assert (status, body["error"], body["parameter"]) == (400, "bad_cursor", "cursor")
        assert "other filters" in body["message"]
        status, body = await call(f"/v1/reservations?cursor={cursor}")
        assert (status, body["error"]) == (400, "bad_cursor")
        # a cursor of the right listing whose position is not one
        forged = encode_cursor("skus", {"prefix": "", "below_atp": None, "channel": None}, [1])
        status, body = await call(f"/v1/skus?cursor={forged}")
        assert (status, body["error"]) == (400, "bad_cursor")
        # and the page size may change between pages
        status, page = await call(f"/v1/skus?limit=7&prefix=SKU&cursor={cursor}")
        assert status == 200 and page["items"][0]["sku"] == "SKU-02"

    served(app_of(ListingTables.stocked(SKUS).reader()), test)


def test_a_channel_key_sees_its_own_channel_only() -> None:
    built = ListingTables.stocked(SKUS)

    async def test(call: Call) -> None:
        items = await every_page(call, "/v1/skus?below_atp=12", headers=WEB)
        assert [(i["sku"], i["channels"]) for i in items] == [
            ("SKU-00", {"web": 10}),
            ("SKU-01", {"web": 11}),
        ]
        status, body = await call("/v1/skus?channel=marketplace", headers=WEB)
        assert (status, body["error"]) == (403, "forbidden")
        status, body = await call("/v1/skus")
        assert (status, body["error"]) == (401, "unauthorized")
        status, page = await call("/v1/skus?limit=1", headers=OPS)
        assert status == 200 and len(page["items"][0]["channels"]) == 3

    served(app_of(built.reader(), keys=keys()), test)


def test_a_worker_whose_partitions_are_moving_answers_503_with_retry_after() -> None:
    built = ListingTables.stocked(SKUS)

    async def test(call: Call) -> None:
        for path in ("/v1/skus", "/v1/reservations"):
            status, body = await call(path)
            assert (status, body["error"]) == (503, "not_ready")

    served(app_of(MemoryReader(built.tables, moving=True)), test)


# -- GET /v1/reservations ------------------------------------------------------------------------


def reservations_made() -> ListingTables:
    built = ListingTables.stocked({"SKU-A": 50, "SKU-B": 50, "SKU-C": 50})
    built.reservation("SKU-B", "b-held", "held")
    built.reservation("SKU-A", "a-confirmed", "confirmed")
    built.reservation("SKU-A", "a-held", "held", channel="marketplace")
    built.reservation("SKU-C", "c-released", "released")
    built.reservation("SKU-A", "a-cancelled", "cancelled")
    built.reservation("SKU-B", "b-expired", "expired", channel="marketplace")
    return built


def test_reservations_are_listed_live_then_ended_each_as_its_own_lookup_shows_it() -> None:
    built = reservations_made()

    async def test(call: Call) -> None:
        items = await every_page(call, "/v1/reservations?limit=2")
        assert [(i["reservation_id"], i["status"]) for i in items] == [
            ("a-confirmed", "confirmed"),
            ("a-held", "held"),
            ("b-held", "held"),
            ("a-cancelled", "cancelled"),
            ("b-expired", "expired"),
            ("c-released", "released"),
        ]
        for item in items:
            status, alone = await call(f"/v1/reservations/{item['reservation_id']}")
            assert (status, alone) == (200, item)

    served(app_of(built.reader()), test)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=held", ["a-held", "b-held"]),
        ("status=expired", ["b-expired"]),
        ("channel=marketplace", ["a-held", "b-expired"]),
        ("sku=SKU-A", ["a-confirmed", "a-held", "a-cancelled"]),
        ("sku=SKU-A&status=cancelled", ["a-cancelled"]),
    ],
)
def test_reservations_filtered(query: str, expected: list[str]) -> None:
    async def test(call: Call) -> None:
        items = await every_page(call, f"/v1/reservations?limit=1&{query}")
        assert [i["reservation_id"] for i in items] == expected

    served(app_of(reservations_made().reader()), test)


def test_reservations_of_a_channel_key_are_its_channels() -> None:
    async def test(call: Call) -> None:
        items = await every_page(call, "/v1/reservations", headers=WEB)
        assert {i["channel"] for i in items} == {"web"}
        assert len(items) == 4
        status, body = await call("/v1/reservations?channel=marketplace", headers=WEB)
        assert (status, body["error"]) == (403, "forbidden")
        status, body = await call("/v1/reservations?status=lost", headers=WEB)
        assert (status, body["error"], body["parameter"]) == (400, "bad_parameter", "status")
        assert "released" in body["known"]

    served(app_of(reservations_made().reader(), keys=keys()), test)


# -- GET /v1/channels/{channel}/skus/{sku}/history -----------------------------------------------


def test_channel_history_pages_and_its_errors() -> None:
    built = ListingTables.stocked({"SKU-A": 10})
    built.reservation("SKU-A", "hold-1", "held", qty=4)

    async def test(call: Call) -> None:
        path = "/v1/channels/web/skus/SKU-A/history"
        status, first = await call(f"{path}?limit=1", headers=WEB)
        assert status == 200, first
        assert (first["sku"], first["channel"], len(first["entries"])) == ("SKU-A", "web", 1)
        assert (first["entries"][0]["previous"], first["entries"][0]["quantity"]) == (10, 6)
        status, second = await call(f"{path}?limit=1&cursor={first['next_cursor']}", headers=WEB)
        assert status == 200 and second["next_cursor"] is None
        assert second["entries"][0]["event"]["type"] == "RECEIVED"
        status, body = await call("/v1/channels/web/skus/NOPE/history", headers=WEB)
        assert (status, body["error"]) == (404, "unknown_sku")
        status, body = await call("/v1/channels/nowhere/skus/SKU-A/history", headers=OPS)
        assert (status, body["error"]) == (404, "unknown_channel")
        status, body = await call("/v1/channels/marketplace/skus/SKU-A/history", headers=WEB)
        assert (status, body["error"]) == (403, "forbidden")
        status, body = await call(f"{path}?cursor=xyz", headers=WEB)
        assert (status, body["error"]) == (400, "bad_cursor")

    served(app_of(built.reader(), keys=keys()), test)


# -- GET /v1/alerts ------------------------------------------------------------------------------


def test_alerts_newest_first_a_page_at_a_time() -> None:
    alert_log = MemoryAlertLog()
    for i in range(12):
        alert_log.append(f"SKU-{i % 4}", "LOW_STOCK" if i % 3 else "OVERSELL", 1000 + i)

    async def test(call: Call) -> None:
        items = await every_page(call, "/v1/alerts?limit=5")
        assert [i["timestamp"] for i in items] == list(range(1011, 999, -1))
        status, page = await call("/v1/alerts")
        assert page["order"] == "newest_first"
        oversells = await every_page(call, "/v1/alerts?type=OVERSELL&limit=2")
        assert {i["type"] for i in oversells} == {"OVERSELL"} and len(oversells) == 4
        recent = await every_page(call, "/v1/alerts?since=1008")
        assert len(recent) == 4
        # RFC 3339: 1970-01-01T00:00:01.008Z is 1008 ms
        assert await every_page(call, "/v1/alerts?since=1970-01-01T00:00:01.008Z") == recent
        status, body = await call("/v1/alerts?since=yesterday")
        assert (status, body["error"], body["parameter"]) == (400, "bad_parameter", "since")
        status, body = await call("/v1/alerts?since=2026-01-01T00:00:00")
        assert (status, body["parameter"]) == (400, "since")  # no offset: which zone?
        status, body = await call("/v1/alerts?type=FIRE")
        assert (status, body["parameter"]) == (400, "type")

    served(app_of(ListingTables.stocked({}).reader(), alert_log), test)


def test_a_channel_key_sees_the_alerts_about_its_channel() -> None:
    alert_log = MemoryAlertLog()
    for i in range(8):
        alert_log.append("SKU-A", "LOW_STOCK" if i % 4 else "OVERSELL", i)

    async def test(call: Call) -> None:
        items = await every_page(call, "/v1/alerts", headers=WEB)
        assert items and {i["channel"] for i in items} == {"web"}
        status, body = await call("/v1/alerts?channel=marketplace", headers=WEB)
        assert (status, body["error"]) == (403, "forbidden")

    served(app_of(ListingTables.stocked({}).reader(), alert_log, keys()), test)


def test_alerts_out_of_reach_are_a_503_with_retry_after() -> None:
    async def test(call: Call) -> None:
        status, body = await call("/v1/alerts")
        assert (status, body["error"]) == (503, "alerts_unavailable")

    served(app_of(ListingTables.stocked({}).reader(), MemoryAlertLog(broken=True)), test)


# -- GET / ---------------------------------------------------------------------------------------


def test_the_index_lists_every_route_and_needs_no_key() -> None:
    async def test(call: Call) -> None:
        status, body = await call("/")
        assert status == 200
        assert body["dashboard"].endswith("/dashboard")
        listed = {(e["method"], e["path"]): e["description"] for e in body["endpoints"]}
        for route in [
            ("GET", "/v1/skus"),
            ("GET", "/v1/reservations"),
            ("POST", "/v1/reservations"),
            ("GET", "/v1/alerts"),
            ("GET", "/v1/channels/{channel}/skus/{sku}/history"),
            ("GET", "/v1/atp/{sku}"),
        ]:
            assert listed[route], route
        assert ("HEAD", "/v1/skus") not in listed

    served(app_of(ListingTables.stocked({}).reader(), keys=keys()), test)


# -- two workers ---------------------------------------------------------------------------------


@dataclass
class Owners:
    """The partition owners as one worker sees them: the other worker's partitions and URL."""

    theirs: set[int]
    url: str = ""
    others: list[str] = field(default_factory=list)

    def owner_of(self, sku: str) -> str | None:
        return self.url if partition_of(sku) in self.theirs else None

    def other_workers(self) -> list[str]:
        return self.others


def two_workers(
    built: ListingTables,
    test: Callable[[Call, Call], Awaitable[None]],
    overlap: bool = False,
    second_down: bool = False,
) -> None:
    mine, theirs = split(range(PARTITIONS), 2)
    if overlap:
        theirs = [*theirs, mine[0]]
    a_owners, b_owners = Owners(set(theirs)), Owners(set(mine))
    a = app_of(built.reader(mine), owners=a_owners)
    b = app_of(built.reader(theirs), owners=b_owners)

    async def go() -> None:
        async with TestClient(TestServer(a)) as client_a, TestClient(TestServer(b)) as client_b:
            a_owners.url = str(client_b.make_url("")).rstrip("/")
            b_owners.url = str(client_a.make_url("")).rstrip("/")
            a_owners.others, b_owners.others = [a_owners.url], [b_owners.url]
            if second_down:
                await client_b.server.close()

            def caller(client: TestClient[Any, Any]) -> Call:
                async def call(path: str, **kwargs: Any) -> tuple[int, Any]:
                    response = await client.get(path, **kwargs)
                    if response.status == 503:
                        assert response.headers["Retry-After"] == "1"
                    return response.status, await response.json()

                return call

            await test(caller(client_a), caller(client_b))

    asyncio.run(go())


def test_two_workers_each_page_through_every_sku_and_reservation() -> None:
    built = ListingTables.stocked({**SKUS, "SKU-A": 50, "SKU-B": 50, "SKU-C": 50})
    built.reservation("SKU-B", "b-held", "held")
    built.reservation("SKU-A", "a-confirmed", "confirmed")
    built.reservation("SKU-C", "c-released", "released")

    async def test(a: Call, b: Call) -> None:
        everything = sorted([*SKUS, "SKU-A", "SKU-B", "SKU-C"])
        for worker in (a, b):
            for limit in (1, 4, 100):
                items = await every_page(worker, f"/v1/skus?limit={limit}")
                assert [i["sku"] for i in items] == everything
            items = await every_page(worker, "/v1/reservations?limit=1")
            assert [i["reservation_id"] for i in items] == ["a-confirmed", "b-held", "c-released"]
            for sku in ("SKU-A", "SKU-B", "SKU-C"):
                items = await every_page(worker, f"/v1/reservations?sku={sku}")
                assert {i["sku"] for i in items} == {sku}

    two_workers(built, test)


def test_a_page_is_never_partial_a_worker_that_does_not_answer_is_a_503() -> None:
    built = ListingTables.stocked(SKUS)

    async def test(a: Call, _b: Call) -> None:
        status, body = await a("/v1/skus")
        assert (status, body["error"]) == (503, "worker_unavailable")
        assert body["worker"]

    two_workers(built, test, second_down=True)


def test_partitions_served_twice_are_a_503_until_the_rebalance_settles() -> None:
    built = ListingTables.stocked(SKUS)

    async def test(a: Call, _b: Call) -> None:
        status, body = await a("/v1/skus")
        assert (status, body["error"]) == (503, "partitions_moving")
        assert body["doubled"]

    two_workers(built, test, overlap=True)
