"""Gather what `stocksync doctor` checks: the thin adapter over Kafka (admin client, a raw
ApiVersions probe per broker, a reader of each topic's newest records) and the workers' HTTP
endpoints. Every failure becomes a fact with its error; nothing here decides anything."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING

from confluent_kafka import KafkaException
from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]
from prometheus_client.parser import text_string_to_metric_families

from stocksync.adapters.kafka import api_versions, clients
from stocksync.codec.avro import HEADER, MAGIC
from stocksync.codec.connectors import LEDGER_SUBJECT
from stocksync.codec.events import SALE_SUBJECT, STOCK_SUBJECT, decode_event
from stocksync.codec.outputs import ALERT_SUBJECT, CHANNEL_ATP_SUBJECT, DEAD_LETTER_SUBJECT
from stocksync.codec.reservations import COMMAND_SUBJECT, REPLY_SUBJECT
from stocksync.codec.schemas import UnknownSchema, registry
from stocksync.doctor.facts import (
    BrokerFacts,
    Expectations,
    Facts,
    NodeFacts,
    Sample,
    TopicFacts,
    WorkerFacts,
)
from stocksync.domain.events import InvalidEvent
from stocksync.provision import topic_specs

if TYPE_CHECKING:
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient

    from stocksync.config import Settings

LAG_METRIC = "stocksync_consumer_lag_total"
# a partition that delivers nothing this long although its watermarks say records are there
# (compacted away, transaction markers) is taken as read
SAMPLE_IDLE_S = 3.0


def expectations(settings: Settings, max_lag: int, max_skew_s: float) -> Expectations:
    """What the deployment's settings and the project's contracts say there should be."""
    t = settings.topics
    own_stock = {t.stock_events_of(s): STOCK_SUBJECT for s in t.own_topic_sources}
    own_sale = {t.sale_events_of(s): SALE_SUBJECT for s in t.own_topic_sources}
    return Expectations(
        topics=tuple(topic_specs(settings)),
        co_partitioned=(
            *t.input_topics,
            t.atp_changelog,
            t.history_changelog,
            t.reservation_index_changelog,
        ),
        subjects={
            t.stock_events: STOCK_SUBJECT,
            t.sale_events: SALE_SUBJECT,
            **own_stock,
            **own_sale,
            t.reservation_commands: COMMAND_SUBJECT,
            t.reservation_replies: REPLY_SUBJECT,
            t.channel_atp: CHANNEL_ATP_SUBJECT,
            t.alerts: ALERT_SUBJECT,
            t.dead_letter: DEAD_LETTER_SUBJECT,
            t.published_quantities: LEDGER_SUBJECT,
        },
        schemas={v.id: (v.subject, v.version) for v in registry().by_id.values()},
        event_topics=(t.stock_events, t.sale_events, *own_stock, *own_sale),
        max_lag=max_lag,
        max_skew_ms=int(max_skew_s * 1000),
    )


def gather(
    settings: Settings,
    expect: Expectations,
    worker_urls: Sequence[str],
    sample_size: int,
    timeout: float,
) -> Facts:
    errors: list[str] = []
    admin = clients.admin(settings, errors)
    broker = _broker(settings, admin, errors, timeout)
    workers = tuple(_worker(url, timeout) for url in worker_urls)
    if broker.error is not None:
        return Facts(now_ms=_now_ms(), broker=broker, topics=None, workers=workers)
    topics = _topics(admin, [s.name for s in expect.topics], timeout)
    consumer = clients.log_reader(settings, "doctor")
    try:
        wanted = [topic for topic in expect.subjects if topic in topics]
        samples, sample_errors = _samples(consumer, wanted, set(expect.event_topics), sample_size)
    finally:
        consumer.close()
    return Facts(
        now_ms=_now_ms(),
        broker=broker,
        topics=topics,
        workers=workers,
        samples=samples,
        sample_errors=sample_errors,
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- Kafka ------------------------------------------------------------------------------------


def _broker(
    settings: Settings, admin: AdminClient, errors: list[str], timeout: float
) -> BrokerFacts:
    bootstrap = settings.bootstrap_servers
    try:
        cluster = admin.describe_cluster(request_timeout=timeout).result(timeout)
    except KafkaException as exc:
        # librdkafka's own answer is a bare "transport failure"; the reason (refused, TLS,
        # SASL) arrives through error_cb
        return BrokerFacts(bootstrap, error=errors[-1] if errors else str(exc.args[0]))
    tls = settings.ssl_context() if settings.uses_tls else None
    nodes = []
    for node in sorted(cluster.nodes, key=lambda n: n.id):
        address = f"{node.host}:{node.port}"
        try:
            versions = api_versions.probe(node.host, node.port, timeout, tls)
        except (OSError, api_versions.ApiVersionsError) as exc:
            nodes.append(NodeFacts(node.id, address, error=str(exc)))
        else:
            nodes.append(NodeFacts(node.id, address, versions))
    return BrokerFacts(bootstrap, cluster_id=cluster.cluster_id, nodes=tuple(nodes))


def _topics(admin: AdminClient, names: list[str], timeout: float) -> dict[str, TopicFacts]:
    listed = admin.list_topics(timeout=timeout).topics
    present = [name for name in names if name in listed]
    resources = [ConfigResource("topic", name) for name in present]
    futures = admin.describe_configs(resources, request_timeout=timeout) if resources else {}
    out = {}
    for resource, future in futures.items():
        name = resource.name
        partitions = len(listed[name].partitions)
        try:
            entries = future.result(timeout)
        except KafkaException as exc:
            out[name] = TopicFacts(name, partitions, config_error=str(exc.args[0]))
            continue
        config = {key: entry.value for key, entry in entries.items() if entry.value is not None}
        out[name] = TopicFacts(name, partitions, config)
    return out


def _samples(
    consumer: Consumer, topics: list[str], event_topics: set[str], size: int
) -> tuple[dict[str, tuple[Sample, ...]], dict[str, str]]:
    """The newest `size` records of each partition of each topic."""
    samples: dict[str, tuple[Sample, ...]] = {}
    errors: dict[str, str] = {}
    for topic in topics:
        try:
            bounds = {
                (topic, p): (max(low, high - size), high)
                for p, (low, high) in clients.watermarks(consumer, topic).items()
            }
            read = clients.read_range(consumer, bounds, idle_limit_s=SAMPLE_IDLE_S)
            samples[topic] = tuple(
                _sample(topic, msg.partition() or 0, msg.offset() or 0, msg.value(), event_topics)
                for msg in read
                if msg.value() is not None  # a tombstone has no schema
            )
        except (KafkaException, RuntimeError) as exc:
            errors[topic] = str(exc)
    return samples, errors


def _sample(
    topic: str, partition: int, offset: int, value: bytes | None, event_topics: set[str]
) -> Sample:
    payload = value or b""
    if len(payload) < HEADER.size or payload[0] != MAGIC:
        return Sample(topic, partition, offset, schema_id=None)
    schema_id = HEADER.unpack_from(payload)[1]
    if topic not in event_topics:
        return Sample(topic, partition, offset, schema_id)
    try:
        event = decode_event(payload)
    except (ValueError, UnknownSchema, InvalidEvent):  # the schema check names the problem
        return Sample(topic, partition, offset, schema_id)
    return Sample(topic, partition, offset, schema_id, event.occurred_at, event.source)


# -- workers ----------------------------------------------------------------------------------


def _worker(url: str, timeout: float) -> WorkerFacts:
    base = url.rstrip("/")
    try:
        status, body = _get(f"{base}/readyz", timeout)
    except (urllib.error.URLError, OSError) as exc:
        return WorkerFacts(base, error=str(getattr(exc, "reason", exc)))
    try:
        health = json.loads(body)
    except ValueError:
        return WorkerFacts(base, error=f"/readyz answered {status} without JSON")
    lag, metrics_error = _lag(base, timeout)
    return WorkerFacts(
        base,
        status=status,
        health=health if isinstance(health, dict) else {},
        lag=lag,
        metrics_error=metrics_error,
    )


def _lag(base: str, timeout: float) -> tuple[float | None, str | None]:
    try:
        status, body = _get(f"{base}/metrics", timeout)
    except (urllib.error.URLError, OSError) as exc:
        return None, f"/metrics: {getattr(exc, 'reason', exc)}"
    if status != 200:
        return None, f"/metrics answered {status}"
    try:
        for family in text_string_to_metric_families(body.decode(errors="replace")):
            for sample in family.samples:
                if sample.name == LAG_METRIC:
                    return float(sample.value), None
    except ValueError as exc:
        return None, f"/metrics is not Prometheus text: {exc}"
    return None, None


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
            return status, response.read()
    except urllib.error.HTTPError as exc:  # 503 from /readyz is an answer
        return exc.code, exc.read()
