"""The HTTP adapter of the ATP table, against an in-memory reader (no Kafka, no faust)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from builders import TOPOLOGY, ev, fold

from stocksync.api.http import MAX_BATCH, build_http_app
from stocksync.domain.events import EventKind as K
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology
from stocksync.service.history import DEFAULT_PAGE, HistoryPage


class InMemoryAtpReader:
    """An AtpReader over a dict of rows."""

    def __init__(self, rows: dict[str, SkuRow], ready: bool = True) -> None:
        self.rows = rows
        self.ready = ready
        self.moving: set[str] = set()  # SKUs whose partition is being assigned or recovered

    def row(self, sku: str) -> SkuRow | None:
        return self.rows.get(sku)

    def topology(self) -> Topology:
        return TOPOLOGY

    def history_of(
        self, sku: str, limit: int = DEFAULT_PAGE, before: int | None = None
    ) -> HistoryPage | None:
        return None  # history pages are tested over the service's queries

    def health(self) -> dict[str, Any]:
        return {"ready": self.ready, "partitions": 4}

    def serves(self, sku: str) -> bool:
        return sku not in self.moving


def stocked_reader(ready: bool = True) -> InMemoryAtpReader:
    sku1, _ = fold(
        ev(K.RECEIVED, 30, loc="dc-1", sku="SKU-1", at=1000),
        ev(K.RECEIVED, 5, loc="store-1", sku="SKU-1", at=2000),
        ev(K.RESERVED, 2, loc="store-1", sku="SKU-1", source="web", at=3000),
    )
    sku2, _ = fold(ev(K.SOLD, 1, loc="dc-2", sku="SKU-2", source="pos"))
    return InMemoryAtpReader({"SKU-1": sku1, "SKU-2": sku2}, ready=ready)


def call(
    reader: InMemoryAtpReader, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    async def go() -> tuple[int, dict[str, Any]]:
        async with TestClient(TestServer(build_http_app(reader))) as client:
            response = await client.request(method, path, **kwargs)
            assert response.content_type == "application/json"
            return response.status, await response.json()

    return asyncio.run(go())


def test_sku_lookup_returns_every_location_and_channel() -> None:
    status, body = call(stocked_reader(), "GET", "/v1/atp/SKU-1")
    assert status == 200
    assert (body["sku"], body["revision"], body["last_event_at"]) == ("SKU-1", 3, 3000)
    assert body["locations"]["store-1"] == {
        "on_hand": 5,
        "reserved": 2,
        "damaged": 0,
        "in_transit": 0,
        "safety_stock": 0,
        "oversold": 0,
        "atp": 3,
    }
    assert body["locations"]["dc-1"]["atp"] == 30
    assert body["channels"] == {
        "marketplace": {"atp": 26, "policy_version": 3, "locations": ["dc-1", "dc-2"]},
        "pos-store-1": {"atp": 3, "policy_version": 3, "locations": ["store-1"]},
        "web": {"atp": 33, "policy_version": 3, "locations": ["dc-1", "dc-2", "store-1"]},
    }


def test_oversold_location_shows_the_shortfall_and_zero_atp() -> None:
    status, body = call(stocked_reader(), "GET", "/v1/atp/SKU-2")
    assert status == 200
    dc2 = body["locations"]["dc-2"]
    assert (dc2["on_hand"], dc2["oversold"], dc2["atp"], dc2["safety_stock"]) == (-1, 1, 0, 2)


def test_sku_lookup_for_one_channel() -> None:
    status, body = call(stocked_reader(), "GET", "/v1/atp/SKU-1?channel=marketplace")
    assert status == 200
    assert body == {
        "sku": "SKU-1",
        "channel": "marketplace",
        "revision": 3,
        "atp": 26,
        "policy_version": 3,
        "locations": ["dc-1", "dc-2"],
    }


def test_unknown_channel_is_a_400_listing_the_known_channels() -> None:
    status, body = call(stocked_reader(), "GET", "/v1/atp/SKU-1?channel=ebay")
    assert status == 400
    assert body["error"] == "unknown_channel"
    assert "'ebay'" in body["message"]
    assert body["known"] == ["marketplace", "pos-store-1", "web"]


def test_unknown_sku_is_a_404() -> None:
    status, body = call(stocked_reader(), "GET", "/v1/atp/SKU-404")
    assert status == 404
    assert body["error"] == "unknown_sku"
    assert body["sku"] == "SKU-404"
    assert "SKU-404" in body["message"]


def test_batch_returns_known_items_and_lists_unknown_skus() -> None:
    status, body = call(
        stocked_reader(),
        "POST",
        "/v1/atp/batch",
        json={"skus": ["SKU-1", "SKU-404", "SKU-2", "SKU-1"]},
    )
    assert status == 200
    assert sorted(body["items"]) == ["SKU-1", "SKU-2"]
    assert body["items"]["SKU-1"]["channels"]["web"]["atp"] == 33
    assert body["unknown"] == ["SKU-404"]


def test_batch_for_one_channel() -> None:
    status, body = call(
        stocked_reader(), "POST", "/v1/atp/batch", json={"skus": ["SKU-1"], "channel": "web"}
    )
    assert status == 200
    assert body["items"]["SKU-1"]["atp"] == 33
    assert body["items"]["SKU-1"]["channel"] == "web"


def test_batch_with_unknown_channel_is_a_400() -> None:
    status, body = call(
        stocked_reader(), "POST", "/v1/atp/batch", json={"skus": ["SKU-1"], "channel": "ebay"}
    )
    assert (status, body["error"]) == (400, "unknown_channel")


def test_batch_with_an_invalid_body_is_a_400_that_explains_the_shape() -> None:
    for payload in (b"not json", b"{}", b'{"skus": []}', b'{"skus": "SKU-1"}', b'{"sku": ["A"]}'):
        status, body = call(stocked_reader(), "POST", "/v1/atp/batch", data=payload)
        assert status == 400, payload
        assert body["error"] == "invalid_request"
        assert '"skus"' in body["message"]


def test_batch_of_more_than_1000_skus_is_a_400() -> None:
    skus = [f"SKU-{i}" for i in range(MAX_BATCH + 1)]
    status, body = call(stocked_reader(), "POST", "/v1/atp/batch", json={"skus": skus})
    assert status == 400
    assert body["message"].startswith("skus:")
    assert str(MAX_BATCH) in body["message"]


def test_batch_of_exactly_1000_skus_is_answered() -> None:
    skus = [f"SKU-{i}" for i in range(MAX_BATCH)]
    status, body = call(stocked_reader(), "POST", "/v1/atp/batch", json={"skus": skus})
    assert status == 200
    assert sorted(body["items"]) == ["SKU-1", "SKU-2"]
    assert len(body["unknown"]) == MAX_BATCH - 2


def test_readyz_is_503_until_the_worker_is_ready() -> None:
    status, body = call(stocked_reader(ready=False), "GET", "/readyz")
    assert status == 503
    assert body["ready"] is False


def test_readyz_is_200_once_ready_and_healthz_always_200() -> None:
    assert call(stocked_reader(ready=True), "GET", "/readyz") == (
        200,
        {"ready": True, "partitions": 4},
    )
    assert call(stocked_reader(ready=False), "GET", "/healthz") == (200, {"status": "ok"})


# --- the dashboard page and its event stream ---------------------------------------------------


def dashboard_app(reader: InMemoryAtpReader) -> Any:
    from stocksync.api.dashboard import LiveView, add_dashboard_routes

    app = build_http_app(reader)
    add_dashboard_routes(app, reader.row, reader.topology, LiveView(), interval_s=0.01)
    return app


def test_dashboard_page_and_its_script_are_served_without_a_build_step() -> None:
    async def go() -> list[tuple[int, str, str]]:
        reader = stocked_reader()
        async with TestClient(TestServer(dashboard_app(reader))) as client:
            out = []
            for path in ("/dashboard", "/dashboard/app.js", "/dashboard/dashboard.css"):
                response = await client.get(path)
                out.append((response.status, response.content_type, await response.text()))
            return out

    (page_status, page_type, page), (js_status, js_type, js), (css_status, _, _) = asyncio.run(go())
    assert (page_status, page_type) == (200, "text/html")
    assert '<script src="/dashboard/app.js">' in page
    assert "http://" not in page and "https://" not in page  # no CDN: works offline
    assert (js_status, js_type) == (200, "application/javascript")
    assert "/v1/stream" in js
    assert css_status == 200


def test_an_unknown_dashboard_file_is_a_json_404() -> None:
    for path in ("/dashboard/config.py", "/dashboard/../../config.py"):
        status, body = call(stocked_reader(), "GET", path)
        assert (status, body["error"]) == (404, "not_found"), path


def read_frames(reader: InMemoryAtpReader, query: str, count: int) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        async with TestClient(TestServer(dashboard_app(reader))) as client:
            response = await client.get(f"/v1/stream{query}")
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream"
            assert response.headers["Cache-Control"] == "no-cache"
            frames: list[dict[str, Any]] = []
            event = None
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    assert event == "snapshot"
                    frames.append(json.loads(line[6:]))
                    if len(frames) == count:
                        return frames  # the server's streams end when it shuts down
        raise AssertionError("the stream ended early")

    return asyncio.run(go())


def test_the_stream_pushes_snapshots_that_follow_the_table() -> None:
    reader = stocked_reader()
    first, second = read_frames(reader, "?sku=SKU-1", 2)
    assert first["sku"] == "SKU-1"
    assert first["scope"] is None
    assert first["item"]["channels"]["web"]["atp"] == 33
    assert first["item"]["locations"]["store-1"]["reserved"] == 2
    assert second["at"] >= first["at"]
    assert {"alerts", "critical_alerts", "system"} <= set(first)


def test_the_stream_for_an_unknown_sku_says_so() -> None:
    (frame,) = read_frames(stocked_reader(), "?sku=SKU-404", 1)
    assert (frame["sku"], frame["item"]) == ("SKU-404", None)


def test_a_sku_whose_partition_is_moving_is_503_with_retry_after_never_an_old_copy() -> None:
    reader = stocked_reader()
    reader.moving.add("SKU-1")

    async def go() -> list[tuple[int, str | None, dict[str, Any]]]:
        async with TestClient(TestServer(build_http_app(reader))) as client:
            out = []
            for method, path, body in (
                ("GET", "/v1/atp/SKU-1", None),
                ("GET", "/v1/atp/SKU-1/history", None),
                ("POST", "/v1/atp/batch", {"skus": ["SKU-2", "SKU-1"]}),
            ):
                response = await client.request(method, path, json=body)
                out.append(
                    (response.status, response.headers.get("Retry-After"), await response.json())
                )
            return out

    for status, retry, body in asyncio.run(go()):
        assert (status, retry, body["error"]) == (503, "1", "partition_moving")
        assert body["skus"] == ["SKU-1"]
    # a SKU whose partition is served is answered as ever
    assert call(reader, "GET", "/v1/atp/SKU-2")[0] == 200
