"""The connector's HTTP API (src/stocksync/connectors/admin_http.py) over aiohttp's test
client: reports in, status, published values, health and readiness."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from connectors.fakes import (
    CHANNEL,
    FakeProducer,
    acknowledge,
    connector_config,
    connector_state,
    q,
)
from stocksync.connectors.admin_http import AdminHttp
from stocksync.connectors.reports import ReportChecker
from stocksync.connectors.state import ConnectorState

Scenario = Callable[[TestClient[Any, Any], ConnectorState, FakeProducer], Awaitable[None]]


def with_client(scenario: Scenario) -> None:
    async def go() -> None:
        state, producer, config = connector_state(), FakeProducer(), connector_config()
        checker = ReportChecker(state, config, producer, "stocksync.alerts")
        app = AdminHttp(state, config, checker).app()
        async with TestClient(TestServer(app)) as client:
            await scenario(client, state, producer)

    asyncio.run(go())


def test_a_report_answers_which_skus_drift() -> None:
    async def scenario(
        client: TestClient[Any, Any], state: ConnectorState, producer: FakeProducer
    ) -> None:
        acknowledge(state, q("A", 19, 1))
        acknowledge(state, q("B", 10, 1))
        body = {
            "channel": CHANNEL,
            "reported_at": 1,
            "items": [{"sku": "A", "quantity": 40}, {"sku": "B", "quantity": 10}],
        }
        resp = await client.post("/v1/reports", json=body)
        assert resp.status == 200
        assert await resp.json() == {"checked": 2, "drift": ["A"], "ok": 1}
        assert len(producer.produced) == 1  # one DRIFT alert

    with_client(scenario)


def test_a_malformed_report_or_another_channels_is_refused() -> None:
    async def scenario(
        client: TestClient[Any, Any], state: ConnectorState, producer: FakeProducer
    ) -> None:
        bad = await client.post("/v1/reports", json={"items": [{"sku": "A"}]})
        assert bad.status == 400
        assert (await bad.json())["error"] == "invalid_request"
        other = await client.post("/v1/reports", json={"channel": "amazon", "items": []})
        assert other.status == 400
        assert (await other.json())["error"] == "wrong_channel"
        assert state.counters["reports"] == 0

    with_client(scenario)


def test_ready_only_once_the_ledger_is_restored_and_partitions_assigned() -> None:
    async def scenario(
        client: TestClient[Any, Any], state: ConnectorState, producer: FakeProducer
    ) -> None:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 503
        state.ready = True
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json())["ready"] is True

    with_client(scenario)


def test_status_shows_budget_backlog_and_exposure() -> None:
    async def scenario(
        client: TestClient[Any, Any], state: ConnectorState, producer: FakeProducer
    ) -> None:
        acknowledge(state, q("A", 10, 1))
        state.plan.offer(q("A", 4, 2), time.monotonic())  # the channel still shows 10
        state.counters["requests"] = 1
        resp = await client.get("/v1/status")
        status = await resp.json()
        assert status["channel"] == CHANNEL
        assert status["budget"] == {"rate_per_s": 5.0, "burst": 5}
        assert status["counters"]["requests"] == 1
        assert status["counters"]["plan"]["offered"] == 2
        assert (status["skus"], status["backlog"], status["in_flight"]) == (1, 1, 0)
        assert status["exposure"] == {
            "over_units": 6,
            "under_units": 0,
            "net_units": 6,
            "skus_over": 1,
            "skus_under": 0,
        }

    with_client(scenario)


def test_published_shows_what_the_channel_holds_and_what_is_coming() -> None:
    async def scenario(
        client: TestClient[Any, Any], state: ConnectorState, producer: FakeProducer
    ) -> None:
        acknowledge(state, q("A", 10, 1))
        state.plan.offer(q("A", 4, 2), time.monotonic())
        resp = await client.get("/v1/published/A")
        assert await resp.json() == {
            "acknowledged": {"quantity": 10, "revision": 1, "policy_version": 1},
            "pending": {"quantity": 4, "revision": 2, "policy_version": 1},
            "in_flight": None,
            "failures": 0,
        }
        assert (await client.get("/v1/published/NOPE")).status == 404

    with_client(scenario)
