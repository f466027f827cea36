"""Re-drive dead letters: produce each dead-lettered message's original bytes, with its
original key, to the input topic it came from (after the cause is fixed, e.g. a topology that
made events invalid).

A dead letter's reason class is its `error` field (undecodable, unknown_schema, invalid,
key_mismatch, wrong_partition, source_mismatch, internal); its `reason` field is the text for
humans. Progress is kept in Kafka, one consumer group per class, `<app id>-redrive-<class>`, on
the dead-letter topic: its committed offset says "every dead letter of this class before here
was re-driven (or cannot be)". It is committed only after Kafka acknowledged the re-produced
messages, so a second run never sends the same dead letter again, and a run limited to one
class (`--reason invalid`) leaves the other classes' dead letters for a later run. A message
re-driven while its cause persists is dead-lettered again, as a new dead letter.

Only the worker's inputs (stock events, sale events, reservation commands) are re-driven; a
dead letter from another topic or without its original bytes is reported and marked done.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from stocksync.adapters.kafka import clients
from stocksync.codec.outputs import decode_dead_letter
from stocksync.config import Settings
from stocksync.replay import read_until

REDRIVEN_HEADER = "stocksync-redriven-from"
FLUSH_TIMEOUT_S = 30.0


def progress_group(settings: Settings, kind: str) -> str:
    return f"{settings.app_id}-redrive-{re.sub(r'[^A-Za-z0-9._-]', '_', kind)}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    partition: int  # of the dead-letter topic
    offset: int
    kind: str  # the reason class: the record's `error` field
    reason: str  # for humans
    topic: str  # the original topic
    key: bytes | None
    value: bytes | None


@dataclass
class RedriveReport:
    read: int = 0  # dead letters read
    redriven: int = 0  # re-produced and acknowledged (or, dry run, would be)
    already: int = 0  # re-driven by an earlier run
    other_reason: int = 0  # left alone: --kind names another class
    not_redrivable: int = 0  # no original bytes, or not a worker input topic
    failed: list[str] = field(default_factory=list)  # deliveries Kafka refused
    left: int = 0  # not looked at because --limit was reached
    sent: list[DeadLetter] = field(default_factory=list)


class _Progress:
    """Committed offsets of the per-kind groups, read once, written after delivery."""

    def __init__(self, settings: Settings, dead_letter_topic: str) -> None:
        self.settings = settings
        self.topic = dead_letter_topic
        self.committed: dict[tuple[str, int], int] = {}

    def _consumer(self, kind: str) -> Consumer:
        return clients.group_consumer(self.settings, progress_group(self.settings, kind))

    def next_offset(self, kind: str, partition: int) -> int:
        if (kind, partition) not in self.committed:
            consumer = self._consumer(kind)
            try:
                tps = consumer.committed([TopicPartition(self.topic, partition)], timeout=10)
            finally:
                consumer.close()
            offset = tps[0].offset
            self.committed[(kind, partition)] = offset if offset >= 0 else 0
        return self.committed[(kind, partition)]

    def commit(self, kind: str, partition: int, offset: int) -> None:
        consumer = self._consumer(kind)
        try:
            consumer.commit(
                offsets=[TopicPartition(self.topic, partition, offset)], asynchronous=False
            )
        finally:
            consumer.close()
        self.committed[(kind, partition)] = offset


def _dead_letter(partition: int, offset: int, value: bytes | None) -> DeadLetter:
    record = decode_dead_letter(value or b"")
    return DeadLetter(
        partition=partition,
        offset=offset,
        kind=str(record["error"]),
        reason=str(record["reason"]),
        topic=str(record["topic"]),
        key=record["original_key"],
        value=record["original_value"],
    )


def redrive(
    settings: Settings,
    *,
    reason: str | None = None,
    limit: int = 0,
    dry_run: bool = False,
    on_total: Callable[[int], None] = lambda n: None,
    on_read: Callable[[int], None] = lambda n: None,
) -> RedriveReport:
    """Re-drive the dead letters not re-driven yet (of one reason class, at most `limit`)."""
    topics = settings.topics
    redrivable = set(topics.input_topics)
    report = RedriveReport()
    reader = clients.log_reader(settings, "redrive-reader")
    try:
        bounds = clients.whole_log(reader, topics.dead_letter)
        on_total(sum(high - low for low, high in bounds.values()))
        records = read_until(reader, bounds, on_read)
    finally:
        reader.close()

    progress = _Progress(settings, topics.dead_letter)
    producer = None if dry_run else _producer(settings)
    # per (class, partition): offsets handed to the producer in order, and those done at once
    handled: dict[tuple[str, int], list[int]] = {}
    outcome: dict[tuple[int, int], str | None] = {}  # (partition, offset) -> error or None

    def on_delivery(where: tuple[int, int]) -> Callable[[KafkaError | None, Message], None]:
        def delivered(err: KafkaError | None, msg: Message) -> None:
            outcome[where] = None if err is None else err.str()

        return delivered

    stop = False
    for (_, partition), messages in sorted(records.items()):
        for message in messages:
            if stop:
                report.left += 1
                continue
            report.read += 1
            try:
                letter = _dead_letter(partition, message.offset, message.value)
            except (ValueError, LookupError):
                report.not_redrivable += 1
                continue
            if reason is not None and letter.kind != reason:
                report.other_reason += 1
                continue
            if letter.offset < progress.next_offset(letter.kind, partition):
                report.already += 1
                continue
            where = (partition, letter.offset)
            if letter.value is None or letter.topic not in redrivable:
                report.not_redrivable += 1
                handled.setdefault((letter.kind, partition), []).append(letter.offset)
                outcome[where] = None
                continue
            if limit and report.redriven >= limit:
                stop = True
                report.read -= 1
                report.left += 1
                continue
            report.redriven += 1
            report.sent.append(letter)
            handled.setdefault((letter.kind, partition), []).append(letter.offset)
            if producer is None:
                outcome[where] = None
                continue
            producer.produce(
                letter.topic,
                key=letter.key,
                value=letter.value,
                headers=[(REDRIVEN_HEADER, f"{topics.dead_letter}:{partition}:{letter.offset}")],
                on_delivery=on_delivery(where),
            )
            producer.poll(0)
    if producer is not None:
        if producer.flush(FLUSH_TIMEOUT_S):
            report.failed.append(f"messages not acknowledged within {FLUSH_TIMEOUT_S}s")
        _commit_delivered(progress, handled, outcome, report)
        report.redriven = sum(
            1
            for letter in report.sent
            if outcome.get((letter.partition, letter.offset), "?") is None
        )
    return report


def _commit_delivered(
    progress: _Progress,
    handled: dict[tuple[str, int], list[int]],
    outcome: dict[tuple[int, int], str | None],
    report: RedriveReport,
) -> None:
    """Per class, commit past the delivered prefix: a failed delivery and everything after it
    stay for the next run."""
    for (kind, partition), offsets in handled.items():
        done_to = None
        for offset in offsets:
            if (partition, offset) not in outcome:
                break
            error = outcome[(partition, offset)]
            if error is not None:
                report.failed.append(f"dead letter {partition}:{offset}: {error}")
                break
            done_to = offset
        if done_to is not None:
            progress.commit(kind, partition, done_to + 1)


def _producer(settings: Settings) -> Producer:
    return clients.producer(settings, "stocksync-redrive")
