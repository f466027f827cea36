"""GET /metrics: the worker's counters, consumer lag, fold timings, HTTP latency, rejections and
reservation outcomes in Prometheus' text format (no Kafka: a fake WorkerStats)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from builders import SKU
from prometheus_client.parser import text_string_to_metric_families

from api.test_reservation_http import stocked_service
from stocksync.api.auth import hash_key, parse_keys
from stocksync.api.dashboard import EventRate, LiveView, RecentAlerts, snapshot
from stocksync.api.http import build_http_app
from stocksync.api.metrics import Metrics, PartitionLag
from stocksync.api.reservations import add_reservation_routes


class FakeStats:
    def __init__(self) -> None:
        self.values = {"applied": 120, "duplicates": 3, "dead_lettered": 2, "oversells": 1}
        self.values.update(alerts=4, commands=5, drift_alerts=1, future_thing=7)
        self.lags = [
            PartitionLag("s.stock-events", 0, highwater=100, committed=90),
            PartitionLag("s.stock-events", 1, highwater=50, committed=50),
            PartitionLag("s.sale-events", 0, highwater=None, committed=None),
        ]
        self.ready = True

    def counters(self) -> Mapping[str, int]:
        return self.values

    def partition_lag(self) -> list[PartitionLag]:
        return self.lags

    def health(self) -> dict[str, Any]:
        return {"ready": self.ready, "partitions": [0, 1], "topology_version": 3}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def scrape(metrics: Metrics, before: list[tuple[str, str, dict[str, Any]]] | None = None) -> str:
    async def go() -> str:
        service = stocked_service()
        api_keys = parse_keys(
            {"keys": [{"name": "web", "sha256": hash_key("k"), "channel": "web", "burst": 1}]},
            origin="test",
        )
        app = build_http_app(service, keys=api_keys, metrics=metrics)
        add_reservation_routes(app, service, 0.5, on_outcome=metrics.count_reservation)
        async with TestClient(TestServer(app)) as client:
            for method, path, kwargs in before or []:
                await client.request(method, path, **kwargs)
            response = await client.get("/metrics")
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=")
            return await response.text()

    return asyncio.run(go())


def test_worker_counters_are_exported_as_counters() -> None:
    metrics = Metrics()
    metrics.attach_worker(FakeStats())
    got = samples(scrape(metrics))
    assert got[("stocksync_events_applied_total", ())] == 120
    assert got[("stocksync_events_duplicate_total", ())] == 3
    assert got[("stocksync_dead_letters_total", ())] == 2
    assert got[("stocksync_oversells_total", ())] == 1
    assert got[("stocksync_alerts_total", ())] == 4
    assert got[("stocksync_reservation_commands_applied_total", ())] == 5
    assert got[("stocksync_drift_alerts_total", ())] == 1
    assert got[("stocksync_worker_future_thing_total", ())] == 7  # a new counter needs no code
    assert got[("stocksync_worker_ready", ())] == 1
    assert got[("stocksync_assigned_partitions", ())] == 2
    assert got[("stocksync_topology_version", ())] == 3


def test_consumer_lag_per_partition_and_in_total() -> None:
    metrics = Metrics()
    metrics.attach_worker(FakeStats())
    got = samples(scrape(metrics))
    p0 = (("partition", "0"), ("topic", "s.stock-events"))
    p1 = (("partition", "1"), ("topic", "s.stock-events"))
    assert got[("stocksync_consumer_lag", p0)] == 10
    assert got[("stocksync_consumer_lag", p1)] == 0
    assert got[("stocksync_consumer_highwater", p0)] == 100
    assert got[("stocksync_consumer_position", p0)] == 90
    unknown = (("partition", "0"), ("topic", "s.sale-events"))
    assert ("stocksync_consumer_lag", unknown) not in got  # no highwater yet: no figure
    assert got[("stocksync_consumer_lag_total", ())] == 10


def test_a_worker_still_starting_is_not_ready_and_the_scrape_still_answers() -> None:
    class Starting(FakeStats):
        def health(self) -> dict[str, Any]:
            raise RuntimeError("Consumer thread not yet started")

    metrics = Metrics()
    metrics.attach_worker(Starting())
    assert samples(scrape(metrics))[("stocksync_worker_ready", ())] == 0


def test_fold_batches_are_timed_with_size_and_event_age() -> None:
    metrics = Metrics()
    metrics.fold.observe(events=500, seconds=0.004, age_seconds=0.02)
    metrics.fold.observe(events=10, seconds=0.0002, age_seconds=None)
    got = samples(scrape(metrics))
    assert got[("stocksync_fold_batch_duration_seconds_count", ())] == 2
    assert got[("stocksync_fold_batch_duration_seconds_bucket", (("le", "0.005"),))] == 2
    assert got[("stocksync_fold_batch_duration_seconds_bucket", (("le", "0.001"),))] == 1
    assert got[("stocksync_fold_batch_events_sum", ())] == 510
    assert got[("stocksync_event_age_seconds_count", ())] == 1
    summary = metrics.fold.summary()
    assert summary["fold_p99_ms"] == 4.0
    assert summary["event_age_p50_ms"] == 20.0


def test_http_latency_rejections_and_reservation_outcomes_are_counted() -> None:
    metrics = Metrics()
    key = {"Authorization": "Bearer k"}
    reserve = {"channel": "web", "sku": SKU, "quantity": 1}
    text = scrape(
        metrics,
        [
            ("GET", f"/v1/atp/{SKU}", {}),  # 401: no key
            ("GET", f"/v1/atp/{SKU}", {"headers": {"Authorization": "Bearer nope"}}),
            ("POST", "/v1/reservations", {"json": reserve, "headers": key}),  # 201
            ("POST", "/v1/reservations", {"json": reserve, "headers": key}),  # 429: burst 1
        ],
    )
    got = samples(text)
    atp = (("method", "GET"), ("route", "/v1/atp/{sku}"), ("status", "401"))
    assert got[("stocksync_http_request_duration_seconds_count", atp)] == 2
    created = (("method", "POST"), ("route", "/v1/reservations"), ("status", "201"))
    assert got[("stocksync_http_request_duration_seconds_count", created)] == 1
    assert got[("stocksync_http_rejected_total", (("key", ""), ("reason", "missing_key")))] == 1
    assert got[("stocksync_http_rejected_total", (("key", ""), ("reason", "unknown_key")))] == 1
    limited = (("key", "web"), ("reason", "rate_limited"))
    assert got[("stocksync_http_rejected_total", limited)] == 1
    held = (("action", "reserve"), ("outcome", "held"))
    assert got[("stocksync_reservation_requests_total", held)] == 1


def test_alerts_seen_on_the_topic_are_counted_by_type() -> None:
    metrics = Metrics()
    metrics.alerts_observed.labels("DRIFT").inc()
    metrics.alerts_observed.labels("OVERSELL").inc(2)
    got = samples(scrape(metrics))
    assert got[("stocksync_alerts_observed_total", (("type", "DRIFT"),))] == 1
    assert got[("stocksync_alerts_observed_total", (("type", "OVERSELL"),))] == 2


def test_every_app_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.fold.observe(1, 0.001, None)
    assert samples(scrape(second))[("stocksync_fold_batch_duration_seconds_count", ())] == 0


# --- what the dashboard computes from the same sources -----------------------------------------


def test_event_rate_is_events_applied_per_second_over_the_window() -> None:
    now = [100.0]
    rate = EventRate(clock=lambda: now[0])
    assert rate.update(0) is None  # one sample: no rate yet
    now[0] += 1.0
    assert rate.update(50) == 50.0
    now[0] += 1.0
    assert rate.update(150) == 75.0
    now[0] += 10.0  # older samples leave the window
    assert rate.update(150) == 0.0


def test_recent_alerts_are_newest_first_deduplicated_and_split() -> None:
    alerts = RecentAlerts()
    given = [
        ("OVERSELL", {"location": "store-1"}),
        ("LOW_STOCK", {"channel": "web"}),
        ("OUT_OF_STOCK", {"channel": "marketplace"}),
        ("DRIFT", {"channel": "web"}),
    ]
    for i, (kind, where) in enumerate(given):
        alerts.add({"alert_id": f"A:{i}", "type": kind, "sku": SKU, **where, "message": kind})
    alerts.add({"alert_id": "A:0", "type": "OVERSELL", "sku": SKU, "location": "store-1"})
    alerts.add({"alert_id": "old", "type": "DRIFT", "sku": "B", "channel": "web"})
    assert [a["type"] for a in alerts.recent(critical=True)] == ["DRIFT", "DRIFT", "OVERSELL"]
    assert [a["type"] for a in alerts.recent(critical=False)] == ["OUT_OF_STOCK", "LOW_STOCK"]
    web = alerts.recent(channel="web", locations=frozenset({"dc-1", "store-1"}))
    assert [a["type"] for a in web] == ["DRIFT", "DRIFT", "LOW_STOCK", "OVERSELL"]


def test_a_snapshot_carries_availability_figures_and_alerts() -> None:
    service = stocked_service()
    stats = FakeStats()
    metrics = Metrics()
    metrics.fold.observe(10, 0.002, 0.01)
    alerts = RecentAlerts()
    alerts.add({"alert_id": "x", "type": "OVERSELL", "sku": SKU, "location": "dc-1"})
    alerts.add({"alert_id": "y", "type": "DRIFT", "sku": SKU, "channel": "marketplace"})
    for kind in ("OVERSELL", "OVERSELL", "DRIFT", "LOW_STOCK"):  # every alert on the topic
        alerts.count(kind)
    view = LiveView(stats, metrics.fold, alerts)
    frame = snapshot(view, service.row(SKU), service.topology(), SKU, None)
    assert frame["item"]["channels"]["web"]["atp"] == 35
    assert frame["item"]["locations"]["dc-1"]["on_hand"] == 30
    assert frame["system"]["applied"] == 120
    assert frame["system"]["lag_total"] == 10
    assert frame["system"]["latency"]["fold_p50_ms"] == 2.0
    assert [a["alert_id"] for a in frame["critical_alerts"]] == ["y", "x"]
    # the counters are the alerts the topic holds, not this process's: they survive a restart
    assert (frame["system"]["oversells"], frame["system"]["drift_alerts"]) == (2, 1)
    assert frame["system"]["alerts"] == 4
    scoped = snapshot(view, service.row(SKU), service.topology(), SKU, "pos-store-1")
    assert scoped["item"] == {
        "sku": SKU,
        "channel": "pos-store-1",
        "revision": 2,
        "atp": 5,
        "policy_version": 3,
        "locations": ["store-1"],
    }
    assert scoped["critical_alerts"] == []  # dc-1 does not sell for the till
