"""Cold start: rebuild missing RocksDB partitions from their changelogs with librdkafka.

faust restores a changelog one record at a time through its event loop (about 14k rows/s
here). Before the worker joins its group, every table partition whose RocksDB folder does not
exist yet is read here instead, in large batches with confluent-kafka, and written with
RocksDB write batches; the offset of the last record read is stored under faust's own offset
key, so faust then reads only what was written to the changelog after it.

A partition is built in a sibling folder and renamed into place only when complete: a crash
mid-way leaves nothing faust would trust. Partitions that already have a folder (a warm
restart) are left to faust, which reads their tail.

Each worker restores every partition it lacks, not only those it will be assigned (the
assignment is not known before joining). With many workers that costs disk and start time;
STOCKSYNC_BULK_RESTORE=false leaves all of it to faust.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from rocksdict import Options, Rdict, WriteBatch

from stocksync.adapters.kafka import clients
from stocksync.config import Settings
from stocksync.provision import RETRIABLE_ERRORS

log = structlog.get_logger("stocksync.restore")

# faust's RocksDB store keeps the last applied changelog offset under this key (faust 0.15.3)
FAUST_OFFSET_KEY = b"__faust\0offset__"
BATCH = 10_000
# How long Kafka may answer a changelog read with errors waiting cures (a partition whose
# leadership is not settled: a topic just created, a leader moving) before the worker stops.
RETRY_SECONDS = 30.0

T = TypeVar("T")


class RestoreFailed(RuntimeError):
    """Kafka refused reading a changelog partition for good, or for longer than RETRY_SECONDS."""


def restore_missing_partitions(settings: Settings, tables: list[tuple[Any, str]]) -> int:
    """Restore, for each (faust table, changelog topic), the partitions without a folder.
    Returns the number of records written."""
    started = time.monotonic()
    consumer = clients.log_reader(
        settings,
        "bulk-restore",
        **{"fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": 16 * 1024 * 1024},
    )
    written = 0
    try:
        for table, topic in tables:
            for partition in range(settings.partitions):
                # faust's layout (RocksDB store, 0.15.3): <tabledir>/<table>-<partition>.db.
                # Not through table.data: creating the store before the app starts delays
                # faust's own start by seconds.
                path = Path(table.app.conf.tabledir) / f"{table.name}-{partition}.db"
                if path.exists():
                    continue
                written += _restore_partition(consumer, topic, partition, path)
    finally:
        consumer.close()
    if written:
        log.info("bulk_restored", records=written, seconds=round(time.monotonic() - started, 2))
    return written


def _restore_partition(consumer: Consumer, topic: str, partition: int, path: Path) -> int:
    low, high = _retrying(
        lambda: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10),
        topic,
        partition,
    )
    if high <= low:
        return 0  # an empty changelog: faust creates the folder
    building = path.with_name(f"{path.name}.restoring")
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    db = Rdict(str(building), Options(raw_mode=True))
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    last = -1
    count = 0

    def read_batch() -> None:
        """Write one consumed batch; then raise the error Kafka reported among it, if any."""
        nonlocal last, count
        batch = WriteBatch(raw_mode=True)
        failed: KafkaError | None = None
        for message in consumer.consume(BATCH, timeout=0.1):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    last = max(last, high - 1)
                else:
                    failed = error
                continue
            key, value = message.key(), message.value()
            if key is not None:
                if value is None:
                    batch.delete(key)  # a tombstone
                else:
                    batch.put(key, value)
            last = max(last, message.offset() or 0)
            count += 1
        db.write(batch)
        if failed is not None:
            raise KafkaException(failed)

    try:
        while last < high - 1:
            _retrying(read_batch, topic, partition)
        db.put(FAUST_OFFSET_KEY, str(last).encode())
    finally:
        consumer.unassign()
        db.close()
    building.rename(path)
    log.info("partition_restored", topic=topic, partition=partition, records=count, last=last)
    return count


def _retrying(call: Callable[[], T], topic: str, partition: int) -> T:
    """call(), again with exponential backoff while it raises a KafkaException whose error
    waiting may cure (RETRIABLE_ERRORS), for up to RETRY_SECONDS; then, or at once for any
    other error, RestoreFailed naming the partition and Kafka's error."""
    started = time.monotonic()
    delay = 0.05
    while True:
        try:
            return call()
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            retriable = error is not None and error.code() in RETRIABLE_ERRORS
            waited = time.monotonic() - started
            reason = f"{error.name()} ({error.str()})" if error is not None else str(exc)
            if not retriable or waited + delay > RETRY_SECONDS:
                log.critical("bulk_restore_failed", topic=topic, partition=partition, error=reason)
                still = f", still after {waited:.0f}s of retries" if retriable else ""
                raise RestoreFailed(
                    f"bulk restore: reading changelog {topic} partition {partition}: Kafka "
                    f"answered {reason}{still}; check the broker logs and that the topic has "
                    f"STOCKSYNC_PARTITIONS partitions (STOCKSYNC_BULK_RESTORE=false leaves the "
                    f"restore to faust)"
                ) from None
            log.info(
                "bulk_restore_retried",
                topic=topic,
                partition=partition,
                error=error.name() if error is not None else reason,
                delay=delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
