"""The simulated channel endpoints (sim/endpoints.py) over real HTTP, in-process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import aiohttp
from aiohttp import web

from sim.endpoints import ChannelEndpoint, EndpointKind, EndpointSpec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serving(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


async def endpoint_session(
    spec: EndpointSpec,
) -> AsyncIterator[tuple[ChannelEndpoint, aiohttp.ClientSession]]:
    endpoint = ChannelEndpoint(spec)
    runner = await serving(endpoint.app(), spec.port)
    try:
        async with aiohttp.ClientSession(base_url=spec.url) as session:
            yield endpoint, session
    finally:
        await runner.cleanup()


def put(session: aiohttp.ClientSession, sku: str, quantity: int, revision: int) -> Any:
    return session.put(
        f"/v1/inventory/{sku}",
        json={"quantity": quantity, "revision": revision, "policy_version": 1},
    )


def test_an_older_version_is_refused_and_recorded() -> None:
    async def scenario() -> None:
        spec = EndpointSpec("web", EndpointKind.WEBSHOP, free_port())
        async for endpoint, session in endpoint_session(spec):
            async with put(session, "A", 10, 5) as resp:
                assert resp.status == 200
                assert (await resp.json())["status"] == "applied"
            async with put(session, "A", 12, 4) as resp:
                assert resp.status == 409
                assert (await resp.json())["current"]["revision"] == 5
            async with put(session, "A", 10, 5) as resp:
                assert (await resp.json())["status"] == "unchanged"
            assert endpoint.listings["A"].quantity == 10
            assert endpoint.counters["stale_rejected"] == 1

    run(scenario)


def test_the_marketplace_answers_429_with_retry_after_beyond_its_rate() -> None:
    async def scenario() -> None:
        spec = EndpointSpec.of(
            {
                "channel": "amazon",
                "kind": "marketplace",
                "port": free_port(),
                "rate_per_s": 1.0,
                "burst": 2,
            }
        )
        async for endpoint, session in endpoint_session(spec):
            statuses = []
            for revision in range(1, 5):
                async with put(session, "A", 10, revision) as resp:
                    statuses.append(resp.status)
                    if resp.status == 429:
                        assert int(resp.headers["Retry-After"]) >= 1
            assert statuses[:2] == [200, 200]
            assert 429 in statuses[2:]
            assert endpoint.counters["rate_limited"] >= 1

    run(scenario)


def test_a_tampered_listing_is_reported_and_a_same_version_push_restores_it() -> None:
    async def scenario() -> None:
        reports: list[dict[str, Any]] = []

        async def receive(request: web.Request) -> web.Response:
            reports.append(await request.json())
            return web.json_response({"checked": 1})

        collector = web.Application()
        collector.router.add_post("/v1/reports", receive)
        report_port = free_port()
        collector_runner = await serving(collector, report_port)
        spec = EndpointSpec(
            "pos-store-1",
            EndpointKind.POS,
            free_port(),
            report_url=f"http://127.0.0.1:{report_port}/v1/reports",
        )
        try:
            async for endpoint, session in endpoint_session(spec):
                async with put(session, "A", 10, 3) as resp:
                    assert resp.status == 200
                async with session.put("/admin/inventory/A", json={"quantity": 99}) as resp:
                    assert resp.status == 200
                for _ in range(50):
                    if reports:
                        break
                    await asyncio.sleep(0.02)
                assert reports[0]["channel"] == "pos-store-1"
                assert reports[0]["items"] == [{"sku": "A", "quantity": 99}]
                async with put(session, "A", 10, 3) as resp:
                    assert (await resp.json())["status"] == "refreshed"
                assert endpoint.listings["A"].quantity == 10
        finally:
            await collector_runner.cleanup()

    run(scenario)
