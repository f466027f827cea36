"""Every Kafka client stocksync runs, configured in one place.

Security (TLS, SASL) comes from Settings.librdkafka_config(); the kinds below are the only ones
the project uses:
- `producer`: idempotent, acks=all, keys partitioned like the Java client and faust (murmur2),
  so a SKU's records land on the partition the worker that owns the SKU reads;
- `group_consumer`: a consumer of a named group that commits by hand (or never);
- `log_reader`: a consumer that reads a log without joining or committing anything, with a
  fresh group id (librdkafka needs one) and partition ends reported;
- `admin`.
And one way to read a log to its end: `read_range` over `watermarks`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from stocksync.config import Settings

# What every producer of stocksync needs, channel producers included: no duplicates or
# reordering on retries, nothing acknowledged before all in-sync replicas have it, and the
# partition of a key the same as the Java client's (faust's co-partitioning relies on it).
PRODUCER_GUARANTEES: Mapping[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "partitioner": "murmur2_random",
}
# librdkafka's own lines (a broker not answering, a retried idempotence PID) go through
# `logging`, so stocksync.logs renders them like every other line instead of librdkafka writing
# "%4|1795984786.955|GETPID|..." to stderr. They are handed over on poll() and flush(), which
# every producer and consumer here calls; an AdminClient is not polled, so it keeps printing.
LIBRDKAFKA_LOGGER = logging.getLogger("librdkafka")
READ_POLL_S = 0.5
READ_IDLE_LIMIT_S = 30.0  # reading a range gives up after this long without a record

Bounds = Mapping[tuple[str, int], tuple[int, int]]


class TopicMissing(RuntimeError):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic} does not exist: run `stocksync topics create`")
        self.topic = topic


def producer(settings: Settings, client_id: str, *, linger_ms: float = 5) -> Producer:
    return Producer(
        {
            **settings.librdkafka_config(),
            **PRODUCER_GUARANTEES,
            "linger.ms": linger_ms,
            "client.id": client_id,
            "logger": LIBRDKAFKA_LOGGER,
        }
    )


def group_consumer(
    settings: Settings,
    group_id: str,
    *,
    client_id: str | None = None,
    offset_reset: str = "earliest",
    **extra: Any,
) -> Consumer:
    """Offsets are committed by hand, only past what is done with, or not at all."""
    config: dict[str, Any] = {
        **settings.librdkafka_config(),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": offset_reset,
        "logger": LIBRDKAFKA_LOGGER,
        **extra,
    }
    if client_id is not None:
        config["client.id"] = client_id
    return Consumer(config)


def log_reader(settings: Settings, purpose: str, **extra: Any) -> Consumer:
    """Assigned, never subscribed: reads where it is told, commits nothing."""
    return group_consumer(
        settings,
        f"stocksync-{purpose}-{uuid.uuid4().hex}",
        **{"enable.partition.eof": True, **extra},
    )


def admin(settings: Settings, errors: list[str] | None = None) -> AdminClient:
    config = settings.librdkafka_config()
    if errors is not None:
        config["error_cb"] = lambda err: errors.append(str(err.str()))
    return AdminClient(config)


def partitions_of(consumer: Consumer, topic: str, timeout: float = 10) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=timeout)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        raise TopicMissing(topic)
    return sorted(found.partitions)


def watermarks(consumer: Consumer, topic: str, timeout: float = 10) -> dict[int, tuple[int, int]]:
    """partition -> (low, high) of a topic now."""
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
        for p in partitions_of(consumer, topic, timeout)
    }


def whole_log(consumer: Consumer, topic: str) -> dict[tuple[str, int], tuple[int, int]]:
    """The bounds of everything a topic holds now, for `read_range`."""
    return {(topic, p): marks for p, marks in watermarks(consumer, topic).items()}


def read_range(
    consumer: Consumer,
    bounds: Bounds,
    on_read: Callable[[int], None] = lambda n: None,
    idle_limit_s: float = READ_IDLE_LIMIT_S,
) -> Iterator[Message]:
    """Every record of the given (topic, partition)s from `low` up to (excluding) `high`, in
    offset order per partition. Stops early only when nothing arrives for `idle_limit_s`
    (records below `high` that a compaction removed never come)."""
    pending = {tp for tp, (low, high) in bounds.items() if high > low}
    if not pending:
        return
    consumer.assign([TopicPartition(t, p, bounds[(t, p)][0]) for t, p in pending])
    last_progress = time.monotonic()
    try:
        while pending:
            messages = consumer.consume(1000, READ_POLL_S)
            if not messages and time.monotonic() - last_progress > idle_limit_s:
                break
            read = 0
            for msg in messages:
                tp = (msg.topic() or "", msg.partition() or 0)
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(tp)
                        continue
                    raise RuntimeError(f"reading {tp[0]}[{tp[1]}]: {err.str()}")
                offset = msg.offset() or 0
                high = bounds[tp][1]
                if tp not in pending or offset >= high:
                    pending.discard(tp)
                    continue
                read += 1
                yield msg
                if offset >= high - 1:
                    pending.discard(tp)
            if read:
                last_progress = time.monotonic()
                on_read(read)
    finally:
        consumer.unassign()
