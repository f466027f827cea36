"""POST /v1/imports against a fake sink: the report as JSON, the body streamed to a spool file
under a limit of its own, operator keys only, every error in the API's JSON shape."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from builders import TOPOLOGY

from api.test_http import stocked_reader
from stocksync.api.auth import hash_key, parse_keys
from stocksync.api.http import build_http_app
from stocksync.api.imports import add_import_routes
from stocksync.channels.producer import DeliveryError, DeliveryFailed
from stocksync.channels.snapshot_sender import EventSink
from stocksync.config import load_settings
from stocksync.domain.events import EventKind, InventoryEvent
from stocksync.service.snapshot_import import Columns, ImportIdentity, SnapshotDigest

CSV = b"sku,location,on_hand,safety_stock\nA,dc-1,10,2\nB,dc 1,5,\nC,store-1,7,\n"
JSONL = b'{"Item": "A", "location": "dc-1", "Qty": 4}\n{"Item": "B", "location": "dc-2"}\n'
OPERATOR, WEB = "operator-key", "web-key"


class Sinks:
    """A sink per import, each keeping what it was sent; `refuse`: event ids Kafka refuses;
    `hold`: flush waits for it (an import in progress)."""

    def __init__(self) -> None:
        self.made: list[tuple[ImportIdentity, list[InventoryEvent]]] = []
        self.refuse: set[str] = set()
        self.hold: threading.Event | None = None

    def __call__(self, identity: ImportIdentity) -> EventSink:
        sent: list[InventoryEvent] = []
        self.made.append((identity, sent))
        sinks = self

        class Sink:
            def send(self, event: InventoryEvent) -> None:
                sent.append(event)

            def flush(self, timeout: float = 30.0) -> None:
                if sinks.hold is not None:
                    sinks.hold.wait(10)
                failures = [
                    DeliveryError(e.event_id, e.sku, "Broker: topic authorization failed")
                    for e in sent
                    if e.event_id in sinks.refuse
                ]
                if failures:
                    raise DeliveryFailed(failures)

        return Sink()


Scenario = Callable[[TestClient[Any, Any]], Awaitable[None]]


def serve(
    tmp_path: Path,
    scenario: Scenario,
    sinks: Sinks,
    *,
    with_keys: bool = False,
    import_max_bytes: int = 64 * 1024,
) -> None:
    settings = load_settings(
        data_dir=tmp_path / "state", import_max_bytes=import_max_bytes, http_max_body_bytes=1024
    )
    keys = None
    if with_keys:
        document = {
            "keys": [
                {"name": "ops", "sha256": hash_key(OPERATOR), "channel": "*"},
                {"name": "web", "sha256": hash_key(WEB), "channel": "web"},
            ]
        }
        keys = parse_keys(document, origin="test", channels=TOPOLOGY.channels)

    async def go() -> None:
        app = build_http_app(stocked_reader(), keys=keys, max_body_bytes=1024)
        add_import_routes(app, settings, lambda: TOPOLOGY, sink_for=sinks)
        async with TestClient(TestServer(app)) as client:
            await scenario(client)

    asyncio.run(go())


async def post(
    client: TestClient[Any, Any],
    body: bytes | AsyncIterator[bytes],
    content_type: str = "text/csv",
    query: str = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        f"/v1/imports{query}",
        data=body,
        headers={"Content-Type": content_type, **(headers or {})},
    )
    assert response.content_type == "application/json"
    answer: dict[str, Any] = await response.json()
    return response.status, answer


def test_a_csv_import_answers_its_report_and_leaves_no_spool_file(tmp_path: Path) -> None:
    sinks = Sinks()

    async def scenario(client: TestClient[Any, Any]) -> None:
        status, body = await post(client, CSV)
        assert status == 200, body
        assert (body["rows"], body["imported"], body["rejected"]) == (3, 2, 1)
        assert body["rejects"] == [
            {
                "line": 3,
                "reason": "location 'dc 1' has whitespace or ':' in it (a location id is one "
                "token, such as dc-east)",
                "sku": "B",
            }
        ]
        assert body["events"] == {"COUNTED": 2, "SAFETY_STOCK_SET": 1}

    serve(tmp_path, scenario, sinks)
    ((identity, sent),) = sinks.made
    assert [(e.sku, e.kind, e.quantity) for e in sent] == [
        ("A", EventKind.COUNTED, 10),
        ("A", EventKind.SAFETY_STOCK_SET, 2),
        ("C", EventKind.COUNTED, 7),
    ]
    assert {e.source for e in sent} == {identity.source}
    assert list((tmp_path / "state" / "imports").iterdir()) == []


def test_the_same_body_twice_sends_the_same_events(tmp_path: Path) -> None:
    sinks = Sinks()

    async def scenario(client: TestClient[Any, Any]) -> None:
        for _ in range(2):
            status, _body = await post(client, CSV, query="?as_of=2026-11-03T06:00:00Z")
            assert status == 200

    serve(tmp_path, scenario, sinks)
    (first_id, first), (second_id, second) = sinks.made
    assert first_id == second_id and first == second


def test_json_lines_with_a_column_mapping_and_a_body_over_the_api_limit(tmp_path: Path) -> None:
    # 3 KiB: over the API's 1 KiB body limit, which does not apply to imports
    body = JSONL + b"\n" * 3000
    sinks = Sinks()

    async def scenario(client: TestClient[Any, Any]) -> None:
        status, answer = await post(
            client,
            body,
            "application/x-ndjson",
            "?column=sku=Item&column=on_hand=Qty&show_rejects=0",
        )
        assert status == 200, answer
        assert (answer["rows"], answer["imported"], answer["rejected"]) == (2, 1, 1)
        assert answer["rejects"] == [] and answer["format"] == "jsonl"

    serve(tmp_path, scenario, sinks)
    assert [(e.sku, e.quantity) for e in sinks.made[0][1]] == [("A", 4)]


def test_a_body_over_the_import_limit_is_413_told_or_streamed(tmp_path: Path) -> None:
    big = CSV + b"Z,dc-1,1,\n" * 300  # about 3 KiB, limit 2 KiB

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 500):
            yield big[start : start + 500]

    async def scenario(client: TestClient[Any, Any]) -> None:
        for body in (big, chunks()):
            status, answer = await post(client, body)
            assert status == 413, answer
            assert answer["error"] == "request_too_large"
            assert "STOCKSYNC_IMPORT_MAX_BYTES" in answer["message"]
            assert answer["limit"] == 2048

    sinks = Sinks()
    serve(tmp_path, scenario, sinks, import_max_bytes=2048)
    assert sinks.made == []
    assert list((tmp_path / "state" / "imports").iterdir()) == []


def test_bad_requests_are_named(tmp_path: Path) -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        cases: list[tuple[bytes, str, str, int, str, str]] = [
            (CSV, "text/plain", "", 415, "unsupported_media_type", "text/csv"),
            (CSV, "text/csv", "?column=qty=Qty", 400, "bad_parameter", "unknown field 'qty'"),
            (CSV, "text/csv", "?colum=x", 400, "bad_parameter", "unknown parameter(s) colum"),
            (CSV, "text/csv", "?as_of=today", 400, "bad_parameter", "as_of 'today'"),
            (CSV, "text/csv", "?dry_run=yes", 400, "bad_parameter", "dry_run must be"),
            (b"sku,qty\n", "text/csv", "", 400, "bad_snapshot", "no column 'location'"),
            (b"", "text/csv", "", 400, "empty_body", "send the snapshot"),
        ]
        for body, content_type, query, status, code, words in cases:
            got, answer = await post(client, body, content_type, query)
            assert (got, answer["error"]) == (status, code), answer
            assert words in answer["message"]

    sinks = Sinks()
    serve(tmp_path, scenario, sinks)
    assert sinks.made == []


def test_only_an_operator_key_may_import(tmp_path: Path) -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        status, answer = await post(client, CSV, headers={"X-API-Key": WEB})
        assert (status, answer["error"]) == (403, "forbidden")
        assert "operator key" in answer["message"]
        status, _ = await post(client, CSV)
        assert status == 401
        status, _ = await post(client, CSV, headers={"Authorization": f"Bearer {OPERATOR}"})
        assert status == 200

    sinks = Sinks()
    serve(tmp_path, scenario, sinks, with_keys=True)
    assert len(sinks.made) == 1


def test_events_kafka_refused_make_a_503_with_the_report(tmp_path: Path) -> None:
    sinks = Sinks()

    digest = SnapshotDigest(Columns())
    digest.update(CSV)
    sinks.refuse.add(f"{digest.identity().source}:4:COUNTED")

    async def scenario(client: TestClient[Any, Any]) -> None:
        status, answer = await post(client, CSV)
        assert (status, answer["error"]) == (503, "not_delivered")
        assert "Kafka refused 1 event(s)" in answer["message"]
        assert (answer["imported"], answer["not_delivered_lines"]) == (1, [4])

    serve(tmp_path, scenario, sinks)


def test_a_dry_run_makes_no_sink(tmp_path: Path) -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        status, answer = await post(client, CSV, query="?dry_run=true")
        assert status == 200
        assert (answer["dry_run"], answer["valid"], answer["imported"]) == (True, 2, 0)

    sinks = Sinks()
    serve(tmp_path, scenario, sinks)
    assert sinks.made == []


def test_the_api_answers_while_an_import_runs_and_a_second_import_waits_its_turn(
    tmp_path: Path,
) -> None:
    sinks = Sinks()
    sinks.hold = threading.Event()

    async def scenario(client: TestClient[Any, Any]) -> None:
        running = asyncio.create_task(post(client, CSV))
        while not sinks.made:  # the import is on its thread, waiting in flush
            await asyncio.sleep(0.01)
        health = await client.get("/healthz")
        assert health.status == 200  # the event loop is free
        status, answer = await post(client, CSV)
        assert (status, answer["error"]) == (409, "import_running")
        assert sinks.hold is not None
        sinks.hold.set()
        status, _ = await running
        assert status == 200

    serve(tmp_path, scenario, sinks)
