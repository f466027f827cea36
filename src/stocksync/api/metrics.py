"""Prometheus metrics of a worker, served at GET /metrics (text exposition format).

The worker's own counters and its consumer positions are read at scrape time through a
`WorkerStats` (the faust side lives in streams/http_service.py); HTTP latency, rejections and
reservation outcomes are counted here, at the edge; fold batch timings are observed by
`FoldTimer`. Every worker has its own registry (no process-global state), so tests can build
as many apps as they like.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The worker's counters (streams/app.py Worker.counters) and the metric each becomes.
WORKER_COUNTERS: dict[str, tuple[str, str]] = {
    "applied": ("stocksync_events_applied", "Stock and sale events folded into the ATP table"),
    "duplicates": (
        "stocksync_events_duplicate",
        "Events recognised as already applied (redeliveries, replays): nothing changed",
    ),
    "dead_lettered": (
        "stocksync_dead_letters",
        "Messages sent to the dead-letter topic (undecodable, invalid, wrong key/partition)",
    ),
    "oversells": ("stocksync_oversells", "Sales applied without stock (OVERSELL alerts)"),
    "alerts": ("stocksync_alerts", "Alerts published (oversell, low/out/back-in stock, ...)"),
    "unknown_locations": (
        "stocksync_unknown_locations",
        (
            "SKU-locations first seen at a location the topology does not name "
            "(UNKNOWN_LOCATION alerts): units no channel sells"
        ),
    ),
    "commands": (
        "stocksync_reservation_commands_applied",
        "Reservation commands decided by this worker (reserve, release, confirm, extend, expire)",
    ),
    "input_gaps": (
        "stocksync_input_gaps",
        (
            "Times input skipped offsets on its way to the fold (messages lost before folding; "
            "should stay 0)"
        ),
    ),
    "drift_alerts": (
        "stocksync_drift_alerts",
        (
            "Channels found displaying a quantity that drifted from the published one (counted "
            "by this process)"
        ),
    ),
}

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
UNTIMED_ROUTES = frozenset({"/v1/stream"})  # long-lived: a duration says nothing
RECENT_BATCHES = 1024


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    highwater: int | None  # the offset the next produced message will get
    committed: int | None  # the next offset this worker will fold (committed or read + 1)

    @property
    def lag(self) -> int | None:
        if self.highwater is None:
            return None
        return max(0, self.highwater - (self.committed or 0))


class WorkerStats(Protocol):
    def counters(self) -> Mapping[str, int]: ...

    def partition_lag(self) -> list[PartitionLag]: ...

    def health(self) -> dict[str, Any]: ...


def safe_health(stats: WorkerStats) -> dict[str, Any]:
    """The worker's health, or not ready while its consumer is still starting."""
    try:
        return stats.health()
    except Exception:
        return {"ready": False}


def total_lag(lags: Iterable[PartitionLag]) -> int | None:
    known = [lag.lag for lag in lags if lag.lag is not None]
    return sum(known) if known else None


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class FoldTimer:
    """Observes each folded batch: its duration, its size, and how old its newest event was
    (Kafka timestamp to fold). Keeps the recent ones for the dashboard's quantiles."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "stocksync_fold_batch_duration_seconds",
            "Time to fold one batch of events into the table (decode, fold, write, queue)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.size = Histogram(
            "stocksync_fold_batch_events",
            "Events per folded batch",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.age = Histogram(
            "stocksync_event_age_seconds",
            "From an event's Kafka timestamp to its batch being folded (newest event of each "
            "batch): end-to-end freshness",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.recent: deque[tuple[float, float | None]] = deque(maxlen=RECENT_BATCHES)

    def observe(self, events: int, seconds: float, age_seconds: float | None) -> None:
        self.duration.observe(seconds)
        self.size.observe(events)
        if age_seconds is not None:
            age_seconds = max(0.0, age_seconds)
            self.age.observe(age_seconds)
        self.recent.append((seconds, age_seconds))

    def summary(self) -> dict[str, float | None]:
        """p50/p99 of the recent batches, in milliseconds."""
        durations = [d for d, _ in self.recent]
        ages = [a for _, a in self.recent if a is not None]

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 3)

        return {
            "fold_p50_ms": ms(quantile(durations, 0.5)),
            "fold_p99_ms": ms(quantile(durations, 0.99)),
            "event_age_p50_ms": ms(quantile(ages, 0.5)),
            "event_age_p99_ms": ms(quantile(ages, 0.99)),
        }


class WorkerCollector(Collector):
    """The worker's counters, readiness and consumer lag, read at scrape time."""

    def __init__(self, stats: WorkerStats) -> None:
        self.stats = stats

    def describe(self) -> Iterator[Metric]:
        return iter(())  # nothing is read at registration: the worker may not be started

    def collect(self) -> Iterator[Metric]:
        counters = dict(self.stats.counters())
        for key, value in sorted(counters.items()):
            name, doc = WORKER_COUNTERS.get(
                key, (f"stocksync_worker_{key}", f"Worker counter {key!r}")
            )
            yield CounterMetricFamily(name, doc, value=value)
        health = safe_health(self.stats)
        yield GaugeMetricFamily(
            "stocksync_worker_ready",
            "1 once partitions are assigned and the table recovered (as /readyz)",
            value=1 if health.get("ready") else 0,
        )
        partitions = health.get("partitions")
        if isinstance(partitions, list):
            yield GaugeMetricFamily(
                "stocksync_assigned_partitions",
                "Input partitions this worker owns",
                value=len(partitions),
            )
        version = health.get("topology_version")
        if isinstance(version, int):
            yield GaugeMetricFamily(
                "stocksync_topology_version", "Topology (policy) version in use", value=version
            )
        lag = GaugeMetricFamily(
            "stocksync_consumer_lag",
            "Messages on the partition not yet folded (high watermark - next offset)",
            labels=["topic", "partition"],
        )
        highwater = GaugeMetricFamily(
            "stocksync_consumer_highwater",
            "High watermark of the partition (offset of the next produced message)",
            labels=["topic", "partition"],
        )
        position = GaugeMetricFamily(
            "stocksync_consumer_position",
            "Next offset the worker will fold (committed, else read + 1)",
            labels=["topic", "partition"],
        )
        lags = self.stats.partition_lag()
        for item in lags:
            labels = [item.topic, str(item.partition)]
            if item.lag is not None:
                lag.add_metric(labels, item.lag)
            if item.highwater is not None:
                highwater.add_metric(labels, item.highwater)
            if item.committed is not None:
                position.add_metric(labels, item.committed)
        yield lag
        yield highwater
        yield position
        yield GaugeMetricFamily(
            "stocksync_consumer_lag_total",
            "Sum of stocksync_consumer_lag over this worker's input partitions",
            value=total_lag(lags) or 0,
        )


class Metrics:
    """One registry per app: the edge's own metrics, the fold timer, the worker collector."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_duration = Histogram(
            "stocksync_http_request_duration_seconds",
            "HTTP request latency by route, method and status",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.http_rejected = Counter(
            "stocksync_http_rejected",
            "Requests refused before a handler: missing_key, unknown_key, rate_limited, too_large",
            ["reason", "key"],
            registry=self.registry,
        )
        self.reservations = Counter(
            "stocksync_reservation_requests",
            "Reservation requests over HTTP by action and outcome",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.alerts_observed = Counter(
            "stocksync_alerts_observed",
            "Alerts published on the alerts topic since start, by type (DRIFT included: the "
            "connectors detect drift), for the SKUs whose partitions this worker owns",
            ["type"],
            registry=self.registry,
        )
        self.fold = FoldTimer(self.registry)

    def attach_worker(self, stats: WorkerStats) -> None:
        self.registry.register(WorkerCollector(stats))

    def count_rejection(self, reason: str, key: str) -> None:
        self.http_rejected.labels(reason, key).inc()

    def count_reservation(self, action: str, outcome: str) -> None:
        self.reservations.labels(action, outcome).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self) -> Middleware:
        @web.middleware
        async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                resource = request.match_info.route.resource
                route = resource.canonical if resource is not None else "unmatched"
                if route not in UNTIMED_ROUTES:
                    self.http_duration.labels(route, request.method, str(status)).observe(
                        time.perf_counter() - started
                    )

        return timed


def add_metrics_route(app: web.Application, metrics: Metrics) -> None:
    async def get_metrics(_request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/metrics", get_metrics)
