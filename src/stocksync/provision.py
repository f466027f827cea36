"""Create stocksync's topics explicitly, before any worker starts.

Event topics and the ATP changelog must have the same partition count (co-partitioning); a
topic auto-created with another count makes faust stop its agent with PartitionsMismatch.
Every topic gets STOCKSYNC_REPLICATION_FACTOR copies and, when replicated, a
min.insync.replicas that lets one broker fail while acks=all writes go on."""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    NewTopic,
    OffsetSpec,
    TopicMetadata,
)

from stocksync.adapters.kafka import clients
from stocksync.config import Settings

log = structlog.get_logger(__name__)

FOREVER = "-1"
DAY_MS = str(24 * 60 * 60 * 1000)
LEADERS_SLOW_S = 2.0  # waiting longer than this for new topics' leaders is logged at info

# Errors of a partition whose leadership is not settled yet (a topic just created, a leader
# moving) or of a broker that did not answer in time: asking again a moment later helps.
# librdkafka calls NOT_LEADER_FOR_PARTITION not retriable (KafkaError.retriable()), hence a list.
RETRIABLE_ERRORS = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.OFFSET_NOT_AVAILABLE,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


class TopicMismatch(RuntimeError):
    """An existing topic has a partition count that breaks co-partitioning."""


class ReplicationRefused(RuntimeError):
    """The replication settings cannot be met: more copies than brokers, or more in-sync
    replicas than copies."""


class KafkaUnreachable(RuntimeError):
    """The brokers did not answer, or refused this client (credentials, TLS)."""


class LeadersMissing(RuntimeError):
    """Partitions of topics just created have no serving leader: none within the deadline, or
    Kafka refused to say."""


def min_insync_replicas(settings: Settings) -> int | None:
    """The min.insync.replicas of the topics stocksync creates: the setting; else 2 when
    replicated (of 3 copies one broker may fail while writes go on, and an acknowledged write
    is on two); else None, the broker's own default."""
    if settings.min_insync_replicas is not None:
        return settings.min_insync_replicas
    if settings.replication_factor > 1:
        return min(2, settings.replication_factor)
    return None


def check_replication(settings: Settings, brokers: int | None = None) -> None:
    """Raise ReplicationRefused when the settings ask for what Kafka cannot give: more
    in-sync replicas than copies, or (given how many brokers answer) more copies than brokers.
    Kafka itself would refuse the second only topic by topic, or accept the first and then
    refuse every acks=all write with NOT_ENOUGH_REPLICAS."""
    factor = settings.replication_factor
    wanted_isr = settings.min_insync_replicas
    if wanted_isr is not None and wanted_isr > factor:
        raise ReplicationRefused(
            f"STOCKSYNC_MIN_INSYNC_REPLICAS={wanted_isr} is more than "
            f"STOCKSYNC_REPLICATION_FACTOR={factor}: no acks=all write could ever succeed; "
            f"set it to at most {factor}, or unset it (default: min(2, replication factor))"
        )
    if brokers is not None and brokers < factor:
        raise ReplicationRefused(
            f"STOCKSYNC_REPLICATION_FACTOR={factor} needs {factor} brokers, but the cluster at "
            f"{settings.bootstrap_servers} has {brokers} broker{'' if brokers == 1 else 's'} "
            f"up: set STOCKSYNC_REPLICATION_FACTOR to at most {brokers}, or start the missing "
            f"brokers and run `stocksync topics create` again"
        )


def topic_specs(settings: Settings) -> list[TopicSpec]:
    t = settings.topics
    n = settings.partitions
    # Given on every topic, not left to the broker's default: doctor checks it like the rest.
    isr = min_insync_replicas(settings)
    replicated = {} if isr is None else {"min.insync.replicas": str(isr)}
    log_config = {
        "cleanup.policy": "delete",
        "retention.ms": FOREVER,
        "retention.bytes": "-1",
        **replicated,
    }
    compacted = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", **replicated}
    return [
        # The event log is the source of truth: kept forever so the table can be rebuilt.
        TopicSpec(t.stock_events, n, dict(log_config)),
        TopicSpec(t.sale_events, n, dict(log_config)),
        *(TopicSpec(topic, n, dict(log_config)) for topic in t.source_topics()),
        TopicSpec(t.reservation_commands, n, dict(log_config)),
        TopicSpec(
            t.reservation_replies,
            n,
            {"cleanup.policy": "delete", "retention.ms": DAY_MS, **replicated},
        ),
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
    return clients.admin(settings, errors)


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create missing topics; check existing ones. Returns the names created, once every
    partition of them has a leader that serves it (or raises LeadersMissing after `timeout`)."""
    check_replication(settings)  # before asking Kafka anything: a settings error
    errors: list[str] = []
    admin = admin_client(settings, errors)
    specs = topic_specs(settings)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        # librdkafka's own answer is "transport failure"; the reason (a refused SASL login, a
        # TLS error) arrives through error_cb
        reason = errors[-1] if errors else str(exc)
        raise KafkaUnreachable(
            f"Kafka at {settings.bootstrap_servers} did not answer: {reason}; check "
            f"STOCKSYNC_BOOTSTRAP_SERVERS and the security settings (STOCKSYNC_SECURITY_PROTOCOL, "
            f"STOCKSYNC_SASL_USERNAME / _PASSWORD, STOCKSYNC_SSL_*)"
        ) from None
    existing = metadata.topics
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
    _warn_under_replicated(settings, [existing[s.name] for s in specs if s.name in existing])
    if missing:
        # The metadata lists the brokers that are up: those are the ones a new partition's
        # replicas can be placed on.
        check_replication(settings, len(metadata.brokers))
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
                if "INVALID_REPLICATION_FACTOR" in str(exc):
                    # a broker went down between the count above and the creation
                    raise ReplicationRefused(
                        f"Kafka refused to create {name} with STOCKSYNC_REPLICATION_FACTOR="
                        f"{settings.replication_factor}: {exc.args[0].str()}; set it to at most "
                        f"the number of brokers up, or start the missing brokers"
                    ) from None
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
            created.append(name)
            # per topic at debug only: `stocksync topics create` prints each topic in its table,
            # and one info line per topic as well showed every topic twice
            log.debug("topic_created", topic=name)
        wait_for_leaders(admin, created, timeout)
        log.info("topics_created", count=len(created), existing=len(specs) - len(missing))
    return created


def _warn_under_replicated(settings: Settings, topics: list[TopicMetadata]) -> None:
    """Topics that exist with fewer copies than STOCKSYNC_REPLICATION_FACTOR stay as they are
    (more copies take a partition reassignment, not a creation), but that is worth saying."""
    fewer = {
        topic.topic: copies
        for topic in topics
        if topic.partitions
        and (copies := min(len(p.replicas) for p in topic.partitions.values()))
        < settings.replication_factor
    }
    if fewer:
        log.warning(
            "topics_under_replicated",
            wanted=settings.replication_factor,
            topics=fewer,
            fix="reassign their partitions (kafka-reassign-partitions.sh) or recreate them",
        )


def wait_for_leaders(admin: AdminClient, topics: list[str], timeout: float = 30.0) -> None:
    """Wait, with backoff, until every partition of `topics` has a leader in the metadata and
    that leader answers for it (a ListOffsets request). A created topic's partitions show their
    leader in the metadata a moment before the broker takes them on: until then it answers
    NOT_LEADER_FOR_PARTITION. Raises LeadersMissing after `timeout` seconds."""
    started = time.monotonic()
    deadline = started + timeout
    delay = 0.05
    checks = 0
    logged = -1  # the pending count last logged: progress is logged when it changes
    slow_logged = False
    while True:
        request_timeout = max(1.0, min(5.0, deadline - time.monotonic()))
        pending = _partitions_without_leader(admin, topics, request_timeout)
        checks += 1
        waited = round(time.monotonic() - started, 2)
        if not pending:
            log.info("topics_leaders_waited", topics=len(topics), checks=checks, seconds=waited)
            return
        if time.monotonic() + delay > deadline:
            raise LeadersMissing(
                f"topics just created still lack a serving leader after {timeout:g}s: "
                f"{_first(pending)}; check that every broker of "
                f"STOCKSYNC_BOOTSTRAP_SERVERS runs and its controller quorum has a leader "
                f"(broker logs), and that STOCKSYNC_REPLICATION_FACTOR is at most the number "
                f"of brokers"
            )
        # the first moments after creating topics always find leaders settling: progress is
        # worth an info line only once the wait gets long (and then at once, changed or not)
        slow = waited >= LEADERS_SLOW_S
        if len(pending) != logged or (slow and not slow_logged):
            logged = len(pending)
            slow_logged = slow
            report = log.info if slow else log.debug
            report("topics_leaders_checked", pending=logged, first=_first(pending, 3))
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _partitions_without_leader(
    admin: AdminClient, topics: list[str], request_timeout: float
) -> dict[str, str]:
    """'topic[partition]' (or 'topic') -> why it has no serving leader yet."""
    try:
        metadata = admin.list_topics(timeout=request_timeout).topics
    except KafkaException as exc:
        _raise_unless_retriable(exc.args[0], "the metadata")
        return {topic: exc.args[0].name() for topic in topics}
    pending: dict[str, str] = {}
    led: list[TopicPartition] = []
    for topic in topics:
        described = metadata.get(topic)
        if described is not None and described.error is not None:
            _raise_unless_retriable(described.error, topic)
            pending[topic] = described.error.name()
            continue
        if described is None or not described.partitions:
            pending[topic] = "not in the metadata"
            continue
        for partition in described.partitions.values():
            where = f"{topic}[{partition.id}]"
            if partition.error is not None:
                _raise_unless_retriable(partition.error, where)
                pending[where] = partition.error.name()
            elif partition.leader < 0:
                pending[where] = "no leader"
            else:
                led.append(TopicPartition(topic, partition.id))
    if led:
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        futures = admin.list_offsets(dict.fromkeys(led, latest), request_timeout=request_timeout)
        for tp, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                where = f"{tp.topic}[{tp.partition}]"
                _raise_unless_retriable(exc.args[0], where)
                pending[where] = exc.args[0].name()
    return pending


def _raise_unless_retriable(error: KafkaError, where: str) -> None:
    if error.code() not in RETRIABLE_ERRORS:
        raise LeadersMissing(
            f"asking Kafka for the leader of {where}: {error.name()} ({error.str()}), an "
            f"error waiting does not cure; check this principal's ACLs (it needs DESCRIBE on "
            f"the topics) and the broker logs"
        )


def _first(pending: dict[str, str], count: int = 10) -> str:
    shown = ", ".join(f"{name} ({why})" for name, why in list(pending.items())[:count])
    return shown + (f" and {len(pending) - count} more" if len(pending) > count else "")


def delete_topics(settings: Settings, timeout: float = 30.0) -> None:
    admin = admin_client(settings)
    names = [s.name for s in topic_specs(settings)]
    existing = admin.list_topics(timeout=timeout).topics
    futures = admin.delete_topics([n for n in names if n in existing], operation_timeout=timeout)
    for future in futures.values():
        future.result(timeout)
