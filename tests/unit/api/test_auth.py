"""API keys of the HTTP API: 401 without a valid key, 403 for another channel's data, 429 for a
flood, 413 for a body over the limit. Against the real handlers on in-memory rows."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from builders import SKU, TOPOLOGY

from api.test_reservation_http import DomainReservations, stocked_service
from stocksync.api.auth import (
    ApiKeys,
    KeysFileError,
    TokenBucket,
    hash_key,
    load_keys,
    new_key_entry,
    parse_keys,
)
from stocksync.api.dashboard import LiveView, add_dashboard_routes
from stocksync.api.http import build_http_app
from stocksync.api.metrics import Metrics
from stocksync.api.reservations import add_reservation_routes

WEB_KEY = "web-secret"
POS_KEY = "pos-secret"
ADMIN_KEY = "admin-secret"


class FrozenClock:
    """Time stands still unless a test moves it: a flood is a flood however slow the machine."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def keys(clock: FrozenClock | None = None, burst: int = 100) -> ApiKeys:
    document: dict[str, list[dict[str, Any]]] = {
        "keys": [
            {"name": "web-checkout", "sha256": hash_key(WEB_KEY), "channel": "web"},
            {"name": "store-1-till", "sha256": hash_key(POS_KEY), "channel": "pos-store-1"},
            {"name": "ops", "sha256": hash_key(ADMIN_KEY), "channel": "*"},
        ]
    }
    for entry in document["keys"]:
        entry.update(rate_per_s=1, burst=burst)
    return parse_keys(
        document, origin="test", channels=TOPOLOGY.channels, clock=clock or FrozenClock()
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


Call = tuple[int, dict[str, Any], dict[str, str]]


def calls(
    requests: list[tuple[str, str, dict[str, Any]]],
    service: DomainReservations | None = None,
    api_keys: ApiKeys | None = None,
    metrics: Metrics | None = None,
    max_body_bytes: int = 256 * 1024,
) -> list[Call]:
    """Each (method, path, kwargs) against one app; (status, JSON body, headers) of each."""
    service = service or stocked_service()

    async def go() -> list[Call]:
        app = build_http_app(
            service,
            keys=api_keys if api_keys is not None else keys(),
            metrics=metrics,
            max_body_bytes=max_body_bytes,
        )
        add_reservation_routes(app, service, 0.5)
        add_dashboard_routes(app, service.row, service.topology, LiveView(), interval_s=0.05)
        out = []
        async with TestClient(TestServer(app)) as client:
            for method, path, kwargs in requests:
                response = await client.request(method, path, **kwargs)
                assert response.content_type == "application/json", await response.text()
                out.append((response.status, await response.json(), dict(response.headers)))
        return out

    return asyncio.run(go())


def call(method: str, path: str, **kwargs: Any) -> Call:
    return calls([(method, path, kwargs)])[0]


# --- 401 --------------------------------------------------------------------------------------


def test_a_request_without_a_key_is_401_and_says_how_to_send_one() -> None:
    status, body, headers = call("GET", f"/v1/atp/{SKU}")
    assert status == 401
    assert body["error"] == "unauthorized"
    assert "Authorization: Bearer" in body["message"]
    assert headers["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_key_is_401() -> None:
    for headers in (bearer("guess"), {"X-API-Key": "guess"}, {"Authorization": "Basic eDp5"}):
        status, body, _ = call("GET", f"/v1/atp/{SKU}", headers=headers)
        assert (status, body["error"]) == (401, "unauthorized"), headers


def test_a_key_is_accepted_as_bearer_token_or_x_api_key() -> None:
    for headers in (bearer(ADMIN_KEY), {"X-API-Key": ADMIN_KEY}):
        status, body, _ = call("GET", f"/v1/atp/{SKU}", headers=headers)
        assert status == 200, body
        assert set(body["channels"]) == {"web", "pos-store-1", "marketplace"}


def test_health_readiness_metrics_and_the_dashboard_page_need_no_key() -> None:
    async def go() -> list[int]:
        service = stocked_service()
        app = build_http_app(service, keys=keys(), metrics=Metrics())
        add_dashboard_routes(app, service.row, service.topology, LiveView())
        async with TestClient(TestServer(app)) as client:
            paths = ("/healthz", "/readyz", "/metrics", "/dashboard", "/dashboard/app.js")
            return [(await client.get(path)).status for path in paths]

    assert asyncio.run(go()) == [200, 200, 200, 200, 200]


def test_the_event_stream_needs_a_key() -> None:
    status, body, _ = call("GET", f"/v1/stream?sku={SKU}")
    assert (status, body["error"]) == (401, "unauthorized")


# --- 403: a channel sees and reserves only its own availability --------------------------------


def test_a_channel_key_asking_for_another_channel_is_403() -> None:
    status, body, _ = call("GET", f"/v1/atp/{SKU}?channel=marketplace", headers=bearer(WEB_KEY))
    assert status == 403
    assert body["error"] == "forbidden"
    assert "'web'" in body["message"] and "'marketplace'" in body["message"]


def test_a_channel_key_sees_its_own_channel() -> None:
    status, body, _ = call("GET", f"/v1/atp/{SKU}?channel=web", headers=bearer(WEB_KEY))
    assert status == 200
    assert (body["channel"], body["atp"]) == ("web", 35)


def test_a_channel_key_without_a_channel_gets_its_own_channel_only() -> None:
    status, body, _ = call("GET", f"/v1/atp/{SKU}", headers=bearer(POS_KEY))
    assert status == 200
    assert body["channel"] == "pos-store-1"
    assert "channels" not in body and "locations" in body  # location ids only, no stock
    assert body["locations"] == ["store-1"]


def test_a_channel_key_batch_is_scoped_to_its_channel() -> None:
    (other, _, _), (own, body, _) = calls(
        [
            (
                "POST",
                "/v1/atp/batch",
                {"json": {"skus": [SKU], "channel": "marketplace"}, "headers": bearer(WEB_KEY)},
            ),
            ("POST", "/v1/atp/batch", {"json": {"skus": [SKU]}, "headers": bearer(WEB_KEY)}),
        ]
    )
    assert other == 403
    assert own == 200
    assert body["items"][SKU]["channel"] == "web"


def test_history_shows_every_channel_so_a_channel_key_gets_403() -> None:
    (channel, body, _), (admin, _, _) = calls(
        [
            ("GET", f"/v1/atp/{SKU}/history", {"headers": bearer(WEB_KEY)}),
            ("GET", f"/v1/atp/{SKU}/history", {"headers": bearer(ADMIN_KEY)}),
        ]
    )
    assert (channel, body["error"]) == (403, "forbidden")
    assert admin == 404  # the in-memory reader keeps no history: past the key check


def test_a_channel_key_reserving_for_another_channel_is_403_and_nothing_is_held() -> None:
    service = stocked_service()
    ((status, body, _),) = calls(
        [
            (
                "POST",
                "/v1/reservations",
                {
                    "json": {"channel": "marketplace", "sku": SKU, "quantity": 1},
                    "headers": bearer(WEB_KEY),
                },
            )
        ],
        service,
    )
    assert (status, body["error"]) == (403, "forbidden")
    assert service.commands == []


def test_a_channel_sees_and_releases_only_its_own_reservations() -> None:
    service = stocked_service()
    reserve = {
        "json": {"channel": "web", "sku": SKU, "quantity": 2},
        "headers": {**bearer(WEB_KEY), "Idempotency-Key": "order-7"},
    }
    results = calls(
        [
            ("POST", "/v1/reservations", reserve),
            ("GET", "/v1/reservations/order-7", {"headers": bearer(POS_KEY)}),
            ("DELETE", "/v1/reservations/order-7", {"headers": bearer(POS_KEY)}),
            ("GET", "/v1/reservations/order-7", {"headers": bearer(WEB_KEY)}),
            ("GET", "/v1/reservations/order-7", {"headers": bearer(ADMIN_KEY)}),
        ],
        service,
    )
    assert [status for status, _, _ in results] == [201, 403, 403, 200, 200]
    assert results[3][1]["status"] == "held"


def test_a_channel_keys_event_stream_carries_its_own_channel_only() -> None:
    async def go() -> dict[str, Any]:
        service = stocked_service()
        app = build_http_app(service, keys=keys())
        add_dashboard_routes(app, service.row, service.topology, LiveView(), interval_s=0.05)
        async with TestClient(TestServer(app)) as client:
            response = await client.get(f"/v1/stream?sku={SKU}", headers=bearer(WEB_KEY))
            assert response.status == 200
            async for line in response.content:
                if line.startswith(b"data: "):
                    snapshot: dict[str, Any] = json.loads(line[6:])
                    return snapshot
        raise AssertionError("no snapshot")

    frame = asyncio.run(go())
    assert frame["scope"] == "web"
    assert frame["item"]["channel"] == "web"
    assert frame["item"]["atp"] == 35
    assert "channels" not in frame["item"]


# --- 429 --------------------------------------------------------------------------------------


def test_a_flood_from_one_key_gets_429_with_retry_after() -> None:
    clock = FrozenClock()
    flood = [("GET", f"/v1/atp/{SKU}", {"headers": bearer(WEB_KEY)})] * 5
    results = calls(flood, api_keys=keys(clock, burst=3))
    assert [status for status, _, _ in results] == [200, 200, 200, 429, 429]
    _, body, headers = results[3]
    assert body["error"] == "rate_limited"
    assert "web-checkout" in body["message"]
    assert headers["Retry-After"] == "1"


def test_the_limit_is_per_key_and_refills_with_time() -> None:
    clock = FrozenClock()
    api_keys = keys(clock, burst=1)

    async def go() -> list[int]:
        service = stocked_service()
        app = build_http_app(service, keys=api_keys)
        async with TestClient(TestServer(app)) as client:
            statuses = []
            for key, advance in ((WEB_KEY, 0), (WEB_KEY, 0), (POS_KEY, 0), (WEB_KEY, 1.0)):
                clock.now += advance
                response = await client.get(f"/v1/atp/{SKU}", headers=bearer(key))
                statuses.append(response.status)
            return statuses

    # the web key's second request is refused; the till's key is not; a second later web may
    assert asyncio.run(go()) == [200, 429, 200, 200]


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FrozenClock()
    bucket = TokenBucket(rate_per_s=2, burst=2, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.5]
    clock.now += 0.5
    assert bucket.take() == 0.0
    assert TokenBucket(rate_per_s=0, burst=1, clock=clock).take() == 0.0  # 0 = no limit


# --- 413 --------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_with_a_json_message() -> None:
    big = json.dumps({"skus": ["S" * 100] * 50}).encode()
    status, body, _ = calls(
        [("POST", "/v1/atp/batch", {"data": big, "headers": bearer(ADMIN_KEY)})],
        max_body_bytes=2048,
    )[0]
    assert status == 413
    assert body["error"] == "request_too_large"
    assert "2048-byte limit" in body["message"]
    assert "STOCKSYNC_HTTP_MAX_BODY_BYTES" in body["message"]


def test_a_streamed_body_over_the_limit_is_413_too() -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 1024

    status, body, _ = calls(
        [("POST", "/v1/reservations", {"data": chunks(), "headers": bearer(ADMIN_KEY)})],
        max_body_bytes=2048,
    )[0]
    assert (status, body["error"]) == (413, "request_too_large")


def test_an_unknown_route_is_a_json_404() -> None:
    status, body, _ = call("GET", "/v2/nothing", headers=bearer(ADMIN_KEY))
    assert status == 404
    assert body["error"] == "not_found"


# --- the keys file ----------------------------------------------------------------------------


def test_keys_file_stores_hashes_and_loads(tmp_path: Path) -> None:
    key, entry = new_key_entry("web-checkout", "web")
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n" + entry)
    assert key not in path.read_text()
    loaded = load_keys(path, channels=TOPOLOGY.channels)
    found = loaded.find(key)
    assert found is not None
    assert (found.name, found.channel, found.is_admin) == ("web-checkout", "web", False)
    assert loaded.find("other") is None


def test_keys_file_in_json_with_a_plain_key_for_development(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [{"name": "dev", "key": "dev-key", "channel": "*"}]}))
    found = load_keys(path).find("dev-key")
    assert found is not None and found.is_admin


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({}, "needs a non-empty `keys:` list"),
        ({"keys": [{"name": "a", "channel": "web"}]}, "keys[0] (a): give `sha256`"),
        ({"keys": [{"name": "a", "sha256": "abc", "channel": "web"}]}, "64 hex digits"),
        ({"keys": [{"name": "a", "key": "k"}]}, 'set `channel` to a channel id, or "*"'),
        ({"keys": [{"name": "a", "key": "k", "channel": "ebay"}]}, "'ebay' is not in the"),
        ({"keys": [{"key": "k", "channel": "web"}]}, "unique `name`"),
        ({"keys": [{"name": "a", "key": "k", "channel": "web", "rate": 1}]}, "unknown field"),
        (
            {
                "keys": [
                    {"name": "a", "key": "k", "channel": "web"},
                    {"name": "b", "key": "k", "channel": "web"},
                ]
            },
            "the same key as 'a'",
        ),
    ],
)
def test_keys_file_errors_name_the_entry_and_the_fix(document: Any, expected: str) -> None:
    with pytest.raises(KeysFileError) as raised:
        parse_keys(document, origin="keys.yaml", channels=TOPOLOGY.channels)
    assert str(raised.value).startswith("STOCKSYNC_API_KEYS_FILE: keys.yaml")
    assert expected in str(raised.value)


def test_a_missing_keys_file_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(KeysFileError, match="does not exist; create it"):
        load_keys(tmp_path / "nope.yaml")


def test_without_keys_every_request_is_served_as_before() -> None:
    async def go() -> int:
        service = stocked_service()
        async with TestClient(TestServer(build_http_app(service))) as client:
            return (await client.get(f"/v1/atp/{SKU}?channel=marketplace")).status

    assert asyncio.run(go()) == 200
