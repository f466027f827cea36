"""Bad input is dead-lettered without stopping anything; a failure of the fold engine itself
stops the worker before anything is acknowledged, and the repaired worker folds it once."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]
from rocksdict import Options, Rdict

from stocksync.bootstrap import file_topology
from stocksync.channels.producer import ChannelProducer
from stocksync.codec.events import encode_event
from stocksync.codec.outputs import decode_dead_letter
from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.config import Settings
from stocksync.domain.events import EventKind, InventoryEvent
from stocksync.domain.limits import REASON_MAX, too_long
from stocksync.replay import replay
from stocksync.service.admission import murmur2_partition
from stocksync.streams.app import EXIT_FOLD_FAILED
from stocksync.streams.bulk_restore import FAUST_OFFSET_KEY
from stocksync.topics import ATP_TABLE
from tests.integration.support import (
    WorkerProcess,
    read_log,
    read_topic,
    unique_settings,
    wait_for,
)

pytestmark = pytest.mark.integration

# Kafka's default limit on one record batch: the broker's message.max.bytes, which every topic
# stocksync creates inherits as max.message.bytes (topic_specs sets none; the test checks).
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
# A 1 MB reason that still fits one Kafka record: 1,000,000 ASCII characters plus the Avro
# header and fields (~80 bytes), the key and the batch framing (~100 bytes) stay under the
# broker's default 1,048,588 bytes, so Kafka takes it and it is the worker that must refuse it.
HUGE_REASON_CHARS = 1_000_000
LONG_REASON_CHARS = 60 * 1024
LONG_REASON_EVENTS = 20
# Everything a worker logs when an agent or service crashes, is restarted by its supervisor,
# or the process stops on a failure (mode: "Crashed reason=...", "Restarting dead ...").
CRASH_MARKERS = (
    "Traceback",
    "Crashed reason",
    "Restarting dead",
    "Max restarts exceeded",
    "fold_failed",
    "outputs_not_delivered",
    "event_failed",
)


# -- looking under the worker: offsets, RocksDB folders, exits --------------------------------


def skus_by_partition(prefix: str, partitions: int, per_partition: int = 1) -> dict[int, list[str]]:
    """`per_partition` SKUs named `<prefix>-<n>` for every partition, placed as the worker
    expects them (murmur2 of the key, like Kafka's Java client and faust)."""
    found: dict[int, list[str]] = {p: [] for p in range(partitions)}
    n = 0
    while any(len(skus) < per_partition for skus in found.values()):
        sku = f"{prefix}-{n}"
        skus = found[murmur2_partition(sku.encode(), partitions)]
        if len(skus) < per_partition:
            skus.append(sku)
        n += 1
    return found


def high_watermark(settings: Settings, topic: str, partition: int) -> int:
    """The offset the next record written to a topic partition gets."""
    consumer = Consumer({**settings.librdkafka_config(), "group.id": f"test-{uuid.uuid4().hex}"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        consumer.close()
    return int(high)


def committed_offset(settings: Settings, topic: str, partition: int) -> int:
    """The worker's consumer group's committed offset of a partition (the next offset it will
    read; negative when nothing was committed), read without joining the group."""
    consumer = Consumer(
        {**settings.librdkafka_config(), "group.id": settings.app_id, "enable.auto.commit": False}
    )
    try:
        [tp] = consumer.committed([TopicPartition(topic, partition)], timeout=10)
    finally:
        consumer.close()
    assert tp.error is None, f"committed offset of {topic}[{partition}]: {tp.error}"
    return int(tp.offset)


def table_partition_path(settings: Settings, table: str, partition: int) -> Path:
    """The RocksDB folder of one partition of a worker's table: faust keeps it as
    <tabledir>/<table>-<partition>.db, its tabledir under the worker's data dir
    (<data_dir>/v1/tables here)."""
    found = sorted(settings.data_dir.rglob(f"{table}-{partition}.db"))
    assert len(found) == 1, (
        f"expected one {table}-{partition}.db under {settings.data_dir}: {found}"
    )
    return found[0]


def rows_in(path: Path) -> dict[str, bytes]:
    """The SKU rows of a stopped worker's RocksDB partition folder (faust's keys left out)."""
    db = Rdict(str(path), Options(raw_mode=True))
    try:
        # rocksdict types a key as any of its pickled-mode key types; in raw mode it is bytes
        return {
            bytes(k).decode(): bytes(v)  # type: ignore[arg-type]
            for k, v in db.items()
            if not bytes(k).startswith(b"__")  # type: ignore[arg-type]
        }
    finally:
        db.close()


def topic_max_message_bytes(settings: Settings, topic: str) -> int:
    """The largest record batch the broker accepts on a topic (its max.message.bytes)."""
    admin = AdminClient(settings.librdkafka_config())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(10)
    return int(configs["max.message.bytes"].value)


def wait_exit(worker: WorkerProcess, timeout: float) -> int:
    """The exit code of a worker expected to stop on its own within `timeout` seconds."""
    assert worker.process is not None
    try:
        return worker.process.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"worker still running after {timeout}s\n--- worker log ---\n{worker.tail()}"
        ) from None


@pytest.fixture()
def settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    return unique_settings(kafka_bootstrap, tmp_path / "state")


@pytest.fixture()
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, tmp_path / "worker.log")
    yield process
    if process.process is not None and process.process.poll() is None:
        process.stop(signal.SIGTERM)


def event(sku: str, seq: int, quantity: int = 1, reason: str | None = None) -> InventoryEvent:
    return InventoryEvent(
        event_id=str(uuid.uuid4()),
        source="wms",
        source_seq=seq,
        sku=sku,
        location="dc-1",
        quantity=quantity,
        occurred_at=int(time.time() * 1000),
        kind=EventKind.RECEIVED,
        reason=reason,
    )


class RawProducer:
    """A client that skips ChannelProducer's checks (it refuses an over-long reason before
    sending): fastavro-encoded bytes straight to the topic, keyed and placed like stocksync's."""

    def __init__(self, settings: Settings) -> None:
        self.producer = Producer(
            {
                **settings.librdkafka_config(),
                "partitioner": "murmur2_random",
                "enable.idempotence": True,
                "acks": "all",
                # librdkafka refuses a value over 1,000,000 bytes by default; the broker allows
                # up to its own default limit
                "message.max.bytes": KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
            }
        )
        self.topic = settings.topics.stock_events
        self.sent: dict[str, tuple[bytes, int, int]] = {}  # event id -> (value, partition, offset)
        self.errors: list[str] = []

    def send(self, event: InventoryEvent) -> bytes:
        value = encode_event(event)

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                self.errors.append(f"{event.event_id}: {err}")
            else:
                self.sent[event.event_id] = (value, msg.partition() or 0, msg.offset() or 0)

        self.producer.produce(
            self.topic, key=event.sku.encode(), value=value, on_delivery=delivered
        )
        self.producer.poll(0)
        return value

    def flush(self) -> None:
        assert self.producer.flush(30) == 0, "records still queued after 30 s"
        assert not self.errors, self.errors


def assert_never_restarted(worker: WorkerProcess, pid: int) -> None:
    assert worker.process is not None
    assert worker.process.poll() is None, f"worker exited:\n{worker.tail()}"
    assert worker.process.pid == pid and len(worker.starts) == 1
    log = worker.log_path.read_text(errors="replace")
    assert log.count("worker_starting") == 1, worker.tail()
    for marker in CRASH_MARKERS:
        assert marker not in log, f"{marker!r} in the worker log:\n{worker.tail()}"


def test_oversized_reasons_are_dead_lettered_and_every_partition_keeps_folding(
    worker: WorkerProcess, settings: Settings
) -> None:
    worker.start()
    assert worker.process is not None
    pid = worker.process.pid
    raw = RawProducer(settings)

    # given one event with a 1 MB reason and twenty events of one SKU with 60 KB reasons
    huge = event("HUGE-REASON", 1, reason="h" * HUGE_REASON_CHARS)
    huge_value = raw.send(huge)
    raw.flush()  # alone in its record batch
    assert len(huge_value) + 200 < topic_max_message_bytes(settings, settings.topics.stock_events)
    long = [
        event("LONG-REASON", seq, reason="x" * LONG_REASON_CHARS)
        for seq in range(1, LONG_REASON_EVENTS + 1)
    ]
    for refused in long:
        raw.send(refused)
    raw.flush()

    # when a good event follows on every partition
    good = {p: skus[0] for p, skus in skus_by_partition("GOOD", settings.partitions).items()}
    for p, sku in good.items():
        raw.send(event(sku, 1, quantity=10 + p))
    raw.flush()

    # then every partition folded its good event
    for p, sku in good.items():
        view = worker.wait_revision(sku, 1)
        assert view["locations"]["dc-1"]["on_hand"] == 10 + p
    # and the refused events left nothing in the table
    assert worker.atp("HUGE-REASON")[0] == 404
    assert worker.atp("LONG-REASON")[0] == 404

    # and each is on the dead-letter topic as invalid, naming the field and the limit
    expected = 1 + LONG_REASON_EVENTS
    letters = [
        decode_dead_letter(value or b"")
        for _, value in read_topic(
            settings.bootstrap_servers, settings.topics.dead_letter, expect=expected, timeout=30
        )
    ]
    assert len(letters) == expected
    by_offset = {(letter["partition"], letter["offset"]): letter for letter in letters}
    for refused, chars in [(huge, HUGE_REASON_CHARS), *((e, LONG_REASON_CHARS) for e in long)]:
        value, partition, offset = raw.sent[refused.event_id]
        letter = by_offset[(partition, offset)]
        assert letter["error"] == "invalid"
        assert letter["topic"] == settings.topics.stock_events
        assert letter["original_key"] == refused.sku.encode()
        assert letter["reason"].startswith(too_long("reason", chars, REASON_MAX)), letter["reason"]
        assert f"the limit is {REASON_MAX}" in letter["reason"]
        if refused is huge:
            # too big to carry whole in a dead letter: cut, and the cut said
            assert "cut to fit one record" in letter["reason"]
            assert 0 < len(letter["original_value"]) < len(value)
            assert value.startswith(letter["original_value"])
        else:
            assert letter["original_value"] == value

    # and the worker never stopped, crashed or restarted its agent, and is ready
    health = worker.health()
    assert health is not None and health["ready"] is True
    assert health["partitions"] == list(range(settings.partitions))
    assert health["dead_lettered"] == expected and health["applied"] == len(good)
    assert_never_restarted(worker, pid)


def test_a_fold_engine_failure_stops_the_worker_before_acking_and_a_restart_folds_the_batch_once(
    worker: WorkerProcess, settings: Settings
) -> None:
    topics = settings.topics
    bootstrap = settings.bootstrap_servers
    partition = 0
    broken, *neighbours = skus_by_partition("ENGINE", settings.partitions, 3)[partition]
    skus = [broken, *neighbours]

    # given a worker that folded two receipts of three SKUs on one partition, stopped cleanly
    worker.start()
    wms = ChannelProducer(bootstrap, "wms", topics)
    for sku in skus:
        wms.emit(EventKind.RECEIVED, sku, "dc-1", 5)
        wms.emit(EventKind.RECEIVED, sku, "dc-2", 3)
    wms.flush()
    for sku in skus:
        worker.wait_revision(sku, 2)
    # (a row shows over HTTP before its batch is done: wait for the commit that follows it, or
    # a SIGTERM meanwhile leaves the changelog offset unrecorded in RocksDB, and the restart
    # would then restore the whole changelog over the row this test breaks)
    input_end = high_watermark(settings, topics.stock_events, partition)
    wait_for(
        lambda: committed_offset(settings, topics.stock_events, partition) == input_end,
        30,
        "the batch to be committed",
        interval=0.25,
    )
    assert worker.stop(signal.SIGTERM) == 0, worker.tail()

    # and one SKU's row in its RocksDB replaced by bytes that are no row (a disk fault, a bug)
    folder = table_partition_path(settings, ATP_TABLE, partition)
    changelog_last = high_watermark(settings, topics.atp_changelog, partition) - 1
    db = Rdict(str(folder), Options(raw_mode=True))
    try:
        # (a restart reads only the changelog after this offset, so the broken row stays)
        assert db.get(FAUST_OFFSET_KEY) == str(changelog_last).encode()
        # rocksdict types db[key] as maybe None; a missing key raises KeyError instead
        assert row_from_bytes(bytes(db[broken.encode()])).sku == broken  # type: ignore[arg-type]
        db[broken.encode()] = b"\xc1 not a stocksync row"
    finally:
        db.close()

    # when it starts again and an event for that SKU arrives, then events for its neighbours
    worker.start()
    failing_offset = high_watermark(settings, topics.stock_events, partition)
    assert committed_offset(settings, topics.stock_events, partition) == failing_offset
    changelog_end = high_watermark(settings, topics.atp_changelog, partition)
    wms = ChannelProducer(bootstrap, "wms", topics)
    failing = wms.emit(EventKind.RECEIVED, broken, "dc-1", 7)
    for sku in neighbours:
        wms.emit(EventKind.RECEIVED, sku, "dc-1", 7)
    wms.flush()

    # then the worker stops on its own with the fold engine's exit code, saying why
    assert wait_exit(worker, 30) == EXIT_FOLD_FAILED, worker.tail()
    log = worker.log_path.read_text(errors="replace")
    assert "fold_failed" in log and "not a format-4 row" in log, worker.tail()
    # and nothing of the failing batch was acknowledged, nor written to the changelog
    assert committed_offset(settings, topics.stock_events, partition) == failing_offset
    assert high_watermark(settings, topics.atp_changelog, partition) == changelog_end

    # when an operator deletes that partition's RocksDB folder and starts the worker again
    shutil.rmtree(folder)
    logged_before = len(log)
    worker.start()
    assert "bulk_restored" in worker.log_path.read_text(errors="replace")[logged_before:]

    # then the batch is folded, once: each SKU has its three receipts and no more
    for sku in skus:
        view = worker.wait_revision(sku, 3)
        assert view["revision"] == 3
        assert view["locations"]["dc-1"]["on_hand"] == 12
        assert view["locations"]["dc-2"]["on_hand"] == 3
    status, history = worker.http(f"/v1/atp/{broken}/history")
    assert status == 200, history
    assert [e["event_id"] for e in history["entries"]].count(failing.event_id) == 1
    health = worker.health()
    assert health is not None and health["duplicates"] == 0 and health["applied"] == 3

    # and the table equals a replay of the log, byte for byte: in the changelog ...
    replayed = {
        sku: row_to_bytes(row)
        for sku, row in replay(
            read_log(bootstrap, topics.stock_events), file_topology(settings)
        ).items()
    }
    assert sorted(replayed) == sorted(skus)

    def changelog() -> dict[str, bytes]:
        return {
            k.decode(): v
            for k, v in read_topic(bootstrap, topics.atp_changelog)
            if k is not None and v is not None and not k.startswith(b"__")
        }

    wait_for(lambda: changelog() == replayed, 30, "the changelog's rows to equal the replay")
    # ... and in the rebuilt RocksDB partition the worker reads from
    assert worker.stop(signal.SIGTERM) == 0, worker.tail()
    assert rows_in(table_partition_path(settings, ATP_TABLE, partition)) == replayed
