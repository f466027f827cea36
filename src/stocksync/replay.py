"""Rebuild ATP rows by folding the log from offset 0, outside the worker: the check that the
live table is what the log says.

`replay` folds (offset, payload) pairs in the order given (tests, one topic). `replay_log`
reads the stock, sale and reservation-command topics of a deployment from their first offset,
interleaves each partition's three streams by record timestamp (Kafka keeps each partition's
order; the order in which the worker interleaved the three topics is not recorded, and the
timestamp order is the one it most likely saw) and folds them as the worker does, skipping what
the worker dead-letters; to compare with the live table it folds only what the live rows had
folded (`replay_cut.ReplayCut`). `read_table` reads the live table from its compacted changelog.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stocksync.adapters.kafka import clients
from stocksync.domain.fold import apply_event
from stocksync.domain.reservations import ReservationCommand, apply_command
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology
from stocksync.replay_cut import ReplayCut
from stocksync.service.admission import (
    AdmissionRules,
    Admitted,
    Rejected,
    admission_rules,
    admit,
    decode_message,
    murmur2_partition,
)

if TYPE_CHECKING:
    from confluent_kafka import Consumer

    from stocksync.config import Settings

# Keys faust keeps in a table for itself (never a SKU).
FAUST_INTERNAL_KEY_PREFIX = b"__faust"
# A partition that delivers nothing for this long although its high watermark says more is
# there (e.g. offsets taken by transaction markers) is treated as read.
IDLE_LIMIT_S = 10.0


@dataclass(frozen=True, slots=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int  # epoch ms, the record's timestamp in Kafka
    key: bytes | None
    value: bytes | None


__all__ = ["murmur2_partition"]  # re-exported: where the worker expects a SKU


def _fold(
    rows: dict[str, SkuRow],
    decoded: Admitted,
    offset: int,
    topology: Topology,
) -> None:
    sku = decoded.sku
    try:
        if isinstance(decoded, ReservationCommand):
            rows[sku] = apply_command(rows.get(sku), decoded, topology, offset).row
        else:
            rows[sku] = apply_event(rows.get(sku), decoded, topology).row
    except Exception:  # the worker dead-letters it as "internal"
        return


def replay(messages: Iterable[tuple[int, bytes]], topology: Topology) -> dict[str, SkuRow]:
    """Fold (offset, payload) messages in the given order, exactly as the worker does:
    duplicate events ignored, retried requests answered from the row, commands keyed by their
    log offset. Offsets matter only for reservation commands."""
    rows: dict[str, SkuRow] = {}
    for offset, payload in messages:
        try:
            decoded = decode_message("replay", payload)
        except Rejected:
            continue
        _fold(rows, decoded, offset, topology)
    return rows


def replay_records(
    records: Iterable[LogRecord],
    topology: Topology,
    rules: AdmissionRules | int,
    skus: Collection[str] | None = None,
    rows: dict[str, SkuRow] | None = None,
    cut: ReplayCut | None = None,
    on_left_out: Callable[[LogRecord], None] = lambda r: None,
) -> dict[str, SkuRow]:
    """Fold records as the worker does, skipping what it dead-letters: admission is the
    worker's own (`rules`, or just the partition count). `skus` limits the replay to those
    SKUs; `rows` is folded into (and returned). With a `cut`, records beyond it (not folded
    by the live row yet) are left out and passed to `on_left_out`."""
    if isinstance(rules, int):
        rules = AdmissionRules(partitions=rules)
    rows = {} if rows is None else rows
    wanted = None if skus is None else {s.encode() for s in skus}
    for record in records:
        key = record.key
        if wanted is not None and key not in wanted:
            continue
        try:
            decoded = admit(record.topic, record.partition, key, record.value, rules)
        except Rejected:
            continue
        if cut is not None and not cut.includes(
            record.topic, record.partition, record.offset, decoded
        ):
            on_left_out(record)
            continue
        _fold(rows, decoded, record.offset, topology)
    return rows


def interleave(streams: Iterable[Iterable[LogRecord]]) -> Iterator[LogRecord]:
    """One order for several partitions' records: by timestamp, each partition's own order
    kept (a merge only ever takes the head of each stream), ties to the earlier stream."""
    return heapq.merge(*streams, key=lambda r: r.timestamp)


# -- reading a deployment's log --------------------------------------------------------------


def replay_consumer(settings: Settings) -> Consumer:
    return clients.log_reader(settings, "replay")


def read_until(
    consumer: Consumer,
    bounds: dict[tuple[str, int], tuple[int, int]],
    on_read: Callable[[int], None] = lambda n: None,
) -> dict[tuple[str, int], list[LogRecord]]:
    """Every record of the given (topic, partition)s from `low` up to (excluding) `high`."""
    out: dict[tuple[str, int], list[LogRecord]] = {tp: [] for tp in bounds}
    for msg in clients.read_range(consumer, bounds, on_read, IDLE_LIMIT_S):
        tp = (msg.topic() or "", msg.partition() or 0)
        ts = msg.timestamp()[1]
        out[tp].append(LogRecord(tp[0], tp[1], msg.offset() or 0, ts, msg.key(), msg.value()))
    return out


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """What a replay reads: the input topics' and the changelog's offsets at its start, and
    the worker group's committed input offsets (empty when not comparing)."""

    inputs: dict[tuple[str, int], tuple[int, int]]
    changelog: dict[tuple[str, int], tuple[int, int]]
    committed: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(h - lo for lo, h in (*self.inputs.values(), *self.changelog.values()))


def plan_replay(settings: Settings, consumer: Consumer, compare: bool = True) -> ReplayPlan:
    """Offsets in this order, each read after the one before (replay_cut explains why it
    matters): the worker's committed input offsets, the changelog's end, the inputs' ends."""
    topics = settings.topics
    partitions = {topic: clients.partitions_of(consumer, topic) for topic in topics.input_topics}
    committed = committed_offsets(settings, partitions) if compare else {}
    changelog = clients.whole_log(consumer, topics.atp_changelog) if compare else {}
    inputs = {
        (topic, p): marks
        for topic in topics.input_topics
        for p, marks in clients.watermarks(consumer, topic).items()
    }
    return ReplayPlan(inputs, changelog, committed)


@dataclass(slots=True)
class Replayed:
    rows: dict[str, SkuRow]
    left_out: int = 0  # input records beyond the cut: the live rows had not folded them yet


def replay_log(
    settings: Settings,
    topology: Topology,
    consumer: Consumer,
    plan: ReplayPlan,
    skus: Collection[str] | None = None,
    on_read: Callable[[int], None] = lambda n: None,
    cut: ReplayCut | None = None,
) -> Replayed:
    """Fold the input topics up to the plan's offsets (and within the `cut`, if given), one
    partition number at a time (a SKU's stock, sale and command records share a partition
    number), so memory holds one partition's records and the rows."""
    result = Replayed({})

    def left_out(_record: LogRecord) -> None:
        result.left_out += 1

    rules = admission_rules(settings.topics, settings.partitions)
    for p in sorted({p for _, p in plan.inputs}):
        bounds = {tp: marks for tp, marks in plan.inputs.items() if tp[1] == p}
        streams = read_until(consumer, bounds, on_read)
        ordered = interleave(streams[(t, p)] for t in settings.topics.input_topics)
        replay_records(ordered, topology, rules, skus, result.rows, cut, left_out)
    return result


def read_table(
    consumer: Consumer,
    plan: ReplayPlan,
    on_read: Callable[[int], None] = lambda n: None,
) -> dict[str, bytes]:
    """The live table from its compacted changelog: the last value per key (a tombstone
    deletes it), faust's own keys left out."""
    table: dict[str, bytes] = {}
    for records in read_until(consumer, plan.changelog, on_read).values():
        for record in records:
            key = record.key
            if key is None or key.startswith(FAUST_INTERNAL_KEY_PREFIX):
                continue
            sku = key.decode(errors="replace")
            if record.value is None:
                table.pop(sku, None)
            else:
                table[sku] = record.value
    return table


def committed_offsets(
    settings: Settings, partitions: Mapping[str, Iterable[int]]
) -> dict[tuple[str, int], int]:
    """The worker group's committed offset of each input partition (absent: none committed)."""
    from confluent_kafka import TopicPartition

    wanted = [TopicPartition(t, p) for t, ps in partitions.items() for p in ps]
    # Reads the group's committed offsets without joining it.
    consumer = clients.group_consumer(settings, settings.app_id)
    try:
        committed = consumer.committed(wanted, timeout=10)
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}
