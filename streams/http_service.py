"""Runs the aiohttp API inside the worker's event loop, started and stopped with the app: ATP
queries, reservations, /metrics and the live dashboard. What the API needs from faust (counters,
consumer positions, fold timings, alerts) is gathered here, so stocksync.api knows no faust."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from aiohttp import web
from confluent_kafka import TopicPartition
from mode import Service

from stocksync.adapters.kafka import clients
from stocksync.adapters.kafka.alert_log import KafkaAlertLog
from stocksync.api.auth import ApiKeys
from stocksync.api.dashboard import ALERTS_KEPT, LiveView, RecentAlerts, add_dashboard_routes
from stocksync.api.http import build_http_app
from stocksync.api.imports import add_import_routes
from stocksync.api.listings import add_listing_routes
from stocksync.api.metrics import Metrics, PartitionLag
from stocksync.api.protocol_errors import app_runner
from stocksync.api.reservations import add_reservation_routes
from stocksync.codec.outputs import ALERT_TYPE_HEADER, decode_alert
from stocksync.config import Settings
from stocksync.domain.reservations import ReservationCommand, ReservationReply
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology

from .app import Worker
from .reservation_gateway import ReservationGateway

log = structlog.get_logger("stocksync.http")

ALERTS_BACKFILL = 20  # alerts per partition shown when the dashboard starts


class WorkerReader:
    """What the ATP handlers read: the tables through the worker's queries, its health."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.row = worker.queries.row
        self.history_of = worker.queries.history_of
        # the listings (api/listings.py)
        self.partition_count = worker.queries.partition_count
        self.partition_of = worker.queries.partition_of
        self.sku_slice = worker.queries.sku_slice
        self.reservation_slice = worker.queries.reservation_slice
        self.channel_history = worker.queries.channel_history

    def topology(self) -> Topology:
        return self.worker.topology()

    def health(self) -> dict[str, Any]:
        return self.worker.health()

    def serves(self, sku: str) -> bool:
        served = self.served_partitions()
        return served is not None and self.partition_of(sku) in served

    def served_partitions(self) -> list[int] | None:
        """The partitions this worker's tables serve; None while they are being assigned or
        recovered (a listing then answers 503 rather than a page with a hole)."""
        health = self.worker.health()
        if not health["recovered"] or health["rebalancing"]:
            return None
        return list(health["partitions"])


class WorkerReservations:
    """What the reservation handlers need: the gateway to the owning worker, and lookups."""

    def __init__(self, worker: Worker, gateway: ReservationGateway) -> None:
        self.worker = worker
        self.gateway = gateway

    async def request(self, command: ReservationCommand, timeout: float) -> ReservationReply | None:
        return await self.gateway.request(command, timeout)

    def reservation_reply(self, request_id: str) -> ReservationReply | None:
        return self.worker.queries.reservation_reply(request_id)

    def reservation_end(self, reservation_id: str) -> ReservationReply | None:
        return self.worker.queries.reservation_end(reservation_id)

    def row(self, sku: str) -> SkuRow | None:
        return self.worker.queries.row(sku)

    def topology(self) -> Topology:
        return self.worker.topology()


class FaustWorkerStats:
    """The worker's counters, readiness and consumer positions, for /metrics and the dashboard."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.input_topics = frozenset(worker.settings.topics.input_topics)

    def counters(self) -> Mapping[str, int]:
        return self.worker.counters

    def health(self) -> dict[str, Any]:
        return self.worker.health()

    def partition_lag(self) -> list[PartitionLag]:
        """The broker's high watermark against what the fold has done, per owned partition."""
        try:
            positions = self.worker.progress.positions()
        except Exception:  # the consumer is still starting
            return []
        return [PartitionLag(*item) for item in positions]


# (alert type, partition, new, the decoded record or None where only the type is needed)
FeedItem = tuple[str, int, bool, dict[str, Any] | None]
FEED_BATCH = 1000


class AlertFeed:
    """Reads the alerts topic from its beginning (the dashboard counts every alert it holds),
    then every new one, handed over in batches to `on_alerts([FeedItem, ...])` on the event
    loop (`new`: published after the feed started). Never commits; each worker reads every
    partition. A flash sale writes thousands of alerts a second: the feed hands them over a
    batch at a time, takes each alert's type from its header, and decodes only the newest
    ones, which the dashboard shows."""

    def __init__(self, settings: Settings, on_alerts: Callable[[list[FeedItem]], None]) -> None:
        self.settings = settings
        self.on_alerts = on_alerts
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        threading.Thread(target=self._run, name="alert-feed", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        topic = self.settings.topics.alerts
        try:
            consumer = clients.log_reader(
                self.settings, "alert-feed", **{"enable.partition.eof": False}
            )
            assignment = []
            started: dict[int, int] = {}
            for p, (low, high) in clients.watermarks(consumer, topic).items():
                started[p] = high
                assignment.append(TopicPartition(topic, p, low))
            consumer.assign(assignment)
        except Exception as exc:
            log.warning("alert_feed_unavailable", topic=topic, error=str(exc))
            return
        try:
            while not self._stop.is_set():
                messages = [
                    m for m in consumer.consume(FEED_BATCH, 0.2) if not m.error() and m.value()
                ]
                shown_from = len(messages) - ALERTS_KEPT
                batch: list[FeedItem] = []
                for i, msg in enumerate(messages):
                    kind = _alert_type(msg.headers())
                    partition = msg.partition() or 0
                    offset = msg.offset() or 0
                    begun = started.get(partition, 0)
                    new = offset >= begun
                    record = None
                    # older alerts are only counted (by their header): decoding a long topic
                    # would compete with the fold after every restart
                    if kind is None or (i >= shown_from and offset >= begun - ALERTS_BACKFILL):
                        try:
                            record = decode_alert(msg.value() or b"")
                        except Exception as exc:
                            log.warning("alert_undecodable", error=str(exc))
                            continue
                        kind = str(record.get("type"))
                    batch.append((kind, partition, new, record))
                if batch and self._loop is not None and not self._loop.is_closed():
                    self._loop.call_soon_threadsafe(self.on_alerts, batch)
        finally:
            consumer.close()


def _alert_type(headers: Any) -> str | None:
    """The type an alert's header names (librdkafka gives headers as a list of pairs)."""
    for name, value in headers or ():
        if name == ALERT_TYPE_HEADER and isinstance(value, bytes) and value:
            return value.decode()
    return None


class HttpService(Service):
    def __init__(
        self, worker: Worker, keys: ApiKeys | None, host: str, port: int, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.worker = worker
        self.host = host
        self.port = port
        settings = worker.settings
        self.gateway = ReservationGateway(settings)
        self.keys = keys  # None: the API needs no key
        self.metrics = Metrics()
        self.stats = FaustWorkerStats(worker)
        self.metrics.attach_worker(self.stats)
        worker.batch_observers.append(self.metrics.fold.observe)
        self.alerts = RecentAlerts()
        self.alert_feed = AlertFeed(settings, self.on_alerts)
        self._runner: web.AppRunner | None = None

    def on_alerts(self, batch: list[FeedItem]) -> None:
        try:
            owned = set(self.worker.health().get("partitions") or [])
        except Exception:  # the consumer is still starting
            owned = set()
        observed = self.metrics.alerts_observed
        for kind, partition, new, record in batch:
            self.alerts.count(kind)
            if record is not None:
                self.alerts.add(record)
            if new and partition in owned:  # alerts are keyed by SKU: co-partitioned
                observed.labels(kind).inc()

    async def on_start(self) -> None:
        loop = asyncio.get_running_loop()
        self.worker.progress.watermarks.start()
        self.gateway.start(loop)
        self.alert_feed.start(loop)
        settings = self.worker.settings
        app = build_http_app(
            WorkerReader(self.worker),
            keys=self.keys,
            metrics=self.metrics,
            max_body_bytes=settings.http_max_body_bytes,
            owners=self.worker.owners,
        )
        add_reservation_routes(
            app,
            WorkerReservations(self.worker, self.gateway),
            settings.reservation_timeout_s,
            on_outcome=self.metrics.count_reservation,
        )
        add_dashboard_routes(
            app,
            self.worker.queries.row,
            self.worker.topology,
            LiveView(self.stats, self.metrics.fold, self.alerts),
            interval_s=settings.dashboard_interval_s,
        )
        add_import_routes(app, settings, self.worker.topology)
        add_listing_routes(app, WorkerReader(self.worker), KafkaAlertLog(settings))
        self._runner = app_runner(app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        log.info(
            "http_started",
            url=f"http://{self.host}:{self.port}",
            dashboard=f"http://{self.host}:{self.port}/dashboard",
            api_keys=len(self.keys) if self.keys is not None else "off",
        )

    async def on_stop(self) -> None:
        self.worker.progress.watermarks.stop()
        self.gateway.stop()
        self.alert_feed.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            log.info("http_stopped")
