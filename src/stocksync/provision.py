"""Create stocksync's topics explicitly, before any worker starts.

Event topics and the ATP changelog must have the same partition count (co-partitioning); a
topic auto-created with another count makes faust stop its agent with PartitionsMismatch."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from stocksync.config import Settings

log = structlog.get_logger(__name__)

FOREVER = "-1"
DAY_MS = str(24 * 60 * 60 * 1000)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


class TopicMismatch(RuntimeError):
    """An existing topic has a partition count that breaks co-partitioning."""


class KafkaUnreachable(RuntimeError):
    """The brokers did not answer, or refused this client (credentials, TLS)."""


def topic_specs(settings: Settings) -> list[TopicSpec]:
    t = settings.topics
    n = settings.partitions
    log_config = {"cleanup.policy": "delete", "retention.ms": FOREVER, "retention.bytes": "-1"}
    compacted = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
    return [
        # The event log is the source of truth: kept forever so the table can be rebuilt.
        TopicSpec(t.stock_events, n, dict(log_config)),
        TopicSpec(t.sale_events, n, dict(log_config)),
        *(TopicSpec(topic, n, dict(log_config)) for topic in t.source_topics()),
        TopicSpec(t.reservation_commands, n, dict(log_config)),
        TopicSpec(t.reservation_replies, n, {"cleanup.policy": "delete", "retention.ms": DAY_MS}),
        TopicSpec(t.atp_changelog, n, dict(compacted)),
        TopicSpec(t.reservation_index_changelog, n, dict(compacted)),
        TopicSpec(t.history_changelog, n, dict(compacted)),
        TopicSpec(t.alerts, n, dict(log_config)),
        TopicSpec(t.topology, 1, dict(compacted)),
        TopicSpec(t.channel_atp, n, dict(compacted)),
        # What each channel's connector got acknowledged, key '<channel>:<sku>' like channel-atp.
        TopicSpec(t.published_quantities, n, dict(compacted)),
        TopicSpec(t.dead_letter, 1, dict(log_config)),
        TopicSpec(t.assignor_leader, 1, dict(compacted)),
    ]


def admin_client(settings: Settings, errors: list[str] | None = None) -> AdminClient:
    config = settings.librdkafka_config()
    if errors is not None:
        config["error_cb"] = lambda err: errors.append(str(err.str()))
    return AdminClient(config)


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create missing topics; check existing ones. Returns the names created."""
    errors: list[str] = []
    admin = admin_client(settings, errors)
    specs = topic_specs(settings)
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        # librdkafka's own answer is "transport failure"; the reason (a refused SASL login, a
        # TLS error) arrives through error_cb
        reason = errors[-1] if errors else str(exc)
        raise KafkaUnreachable(
            f"Kafka at {settings.bootstrap_servers} did not answer: {reason}; check "
            f"STOCKSYNC_BOOTSTRAP_SERVERS and the security settings (STOCKSYNC_SECURITY_PROTOCOL, "
            f"STOCKSYNC_SASL_USERNAME / _PASSWORD, STOCKSYNC_SSL_*)"
        ) from None
    created: list[str] = []
    missing = [s for s in specs if s.name not in existing]
    for spec in specs:
        if spec.name in existing:
            have = len(existing[spec.name].partitions)
            if have != spec.partitions:
                raise TopicMismatch(
                    f"topic {spec.name} has {have} partitions, stocksync expects "
                    f"{spec.partitions} (STOCKSYNC_PARTITIONS); event topics and the "
                    f"changelog must match: use the existing count or recreate the topics"
                )
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=settings.replication_factor,
                    config=s.config,
                )
                for s in missing
            ],
            operation_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
            created.append(name)
            log.info("topic_created", topic=name)
    return created


def delete_topics(settings: Settings, timeout: float = 30.0) -> None:
    admin = admin_client(settings)
    names = [s.name for s in topic_specs(settings)]
    existing = admin.list_topics(timeout=timeout).topics
    futures = admin.delete_topics([n for n in names if n in existing], operation_timeout=timeout)
    for future in futures.values():
        future.result(timeout)
