"""Reads a stock snapshot file and sends its events: what `stocksync import` and
`POST /v1/imports` run. Rows are parsed, checked and turned into events by the pure
service/snapshot_import.py; this module reads the bytes, sends the events with the
ChannelProducer's guarantees (idempotent, acks=all, murmur2), encoding and topics, and waits
until Kafka has answered for every event, so nothing is lost silently: the report counts what
was refused.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog
from confluent_kafka import KafkaError, Message, Producer

from stocksync.adapters.kafka import clients
from stocksync.adapters.kafka.clients import PRODUCER_GUARANTEES, TopicMissing
from stocksync.channels.producer import DeliveryError, DeliveryFailed
from stocksync.codec.events import decode_event, encode_event
from stocksync.config import Settings
from stocksync.domain.events import STOCK_KINDS, InventoryEvent, validate_event
from stocksync.service.snapshot_import import (
    Columns,
    Format,
    ImportIdentity,
    ImportReport,
    Parsed,
    Rejection,
    SnapshotDigest,
    SnapshotImport,
    csv_rows,
    jsonl_rows,
)

log = structlog.get_logger(__name__)

READ_CHUNK = 1 << 20
PROGRESS_EVERY_ROWS = 2_000
# librdkafka answers for every message within message.timeout.ms (a refusal at the latest);
# the flush waits a little longer, so no event is left without an answer.
MESSAGE_TIMEOUT_MS = 120_000
FLUSH_TIMEOUT_S = MESSAGE_TIMEOUT_MS / 1000 + 30
# Bulk sending: fuller batches than a channel's 2 ms linger, more room in the local queue.
BULK_PRODUCER_CONFIG: dict[str, Any] = {
    "linger.ms": 25,
    "queue.buffering.max.messages": 500_000,
    "message.timeout.ms": MESSAGE_TIMEOUT_MS,
}


class EventSink(Protocol):
    """Where an import's events go: a BulkSender (a ChannelProducer would do too), or a fake
    in the tests. `flush` waits for Kafka's answers and raises DeliveryFailed naming what it
    refused."""

    def send(self, event: InventoryEvent) -> None: ...

    def flush(self, timeout: float = ...) -> None: ...


@dataclass(frozen=True, slots=True)
class ImportOptions:
    format: Format
    columns: Columns
    as_of_ms: int
    dry_run: bool = False
    keep_rejections: int = 100  # rejected rows kept for the report (all go to `on_reject`)


@dataclass(frozen=True, slots=True)
class FileSummary:
    identity: ImportIdentity
    lines: int  # newlines in the file: about the rows to come, for a progress bar
    size: int


def summarize(path: Path, columns: Columns) -> FileSummary:
    """The import's identity (the digest of the bytes) and the file's line count, in one
    read."""
    digest = SnapshotDigest(columns)
    lines = size = 0
    last = b"\n"
    with path.open("rb") as raw:
        while chunk := raw.read(READ_CHUNK):
            digest.update(chunk)
            lines += chunk.count(b"\n")
            size += len(chunk)
            last = chunk[-1:]
    if last != b"\n":
        lines += 1  # the last line has no newline of its own
    return FileSummary(digest.identity(), lines, size)


def read_rows(path: Path, fmt: Format, columns: Columns) -> Iterator[Parsed]:
    """The file's rows, checked. Bytes that are not UTF-8 are kept as lone surrogates so the
    row they are in is refused by its line, not the whole file."""
    if fmt == "csv":
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as text:
            yield from csv_rows(text, columns)
    else:
        with path.open("rb") as raw:
            yield from jsonl_rows(raw, columns)


def open_rows(path: Path, fmt: Format, columns: Columns) -> Iterator[Parsed]:
    """`read_rows` with the header already read: a missing column raises SnapshotError here,
    before anything connects to Kafka."""
    rows = read_rows(path, fmt, columns)
    first = next(rows, None)
    return rows if first is None else itertools.chain((first,), rows)


def check_topic(settings: Settings, topic: str, timeout: float = 10.0) -> None:
    """TopicMissing if the topic is not there (a producer would wait minutes for it), a
    KafkaException if the broker does not answer."""
    metadata = clients.admin(settings).list_topics(topic, timeout=timeout)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        raise TopicMissing(topic)


class BulkSender:
    """The ChannelProducer's guarantees (idempotent, acks=all, murmur2), encoding and topics,
    for a million events at a time: Kafka reports only the events it refuses (a Python callback
    per acknowledged event cost a third of an import's time) and delivery reports are served
    every POLL_EVERY events rather than after each. An EventSink."""

    POLL_EVERY = 1_000

    def __init__(
        self, settings: Settings, source: str, config: Mapping[str, Any] | None = None
    ) -> None:
        self.topics = settings.topics
        self._failures: list[DeliveryError] = []
        self._producer = Producer(
            {
                **settings.librdkafka_config(),
                **BULK_PRODUCER_CONFIG,
                "client.id": f"stocksync-{source}",
                **(config or {}),
                "delivery.report.only.error": True,
                "on_delivery": self._refused,
                **PRODUCER_GUARANTEES,
            }
        )
        self._unpolled = 0

    def _refused(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        try:
            event_id = decode_event(msg.value()).event_id  # our own bytes: always decodable
        except Exception:
            event_id = "?"
        sku = (msg.key() or b"?").decode(errors="replace")
        self._failures.append(DeliveryError(event_id, sku, str(err)))
        if len(self._failures) == 1:
            log.warning("import_delivery_failed", event_id=event_id, error=str(err))

    def send(self, event: InventoryEvent) -> None:
        validate_event(event)
        source = event.source
        topics = self.topics
        topic = (
            topics.stock_events_of(source)
            if event.kind in STOCK_KINDS
            else topics.sale_events_of(source)
        )
        payload = encode_event(event)
        key = event.sku.encode()
        produce = self._producer.produce
        while True:
            try:
                produce(topic, key=key, value=payload)
                break
            except BufferError:
                # Local queue full: serve delivery reports until there is room.
                self._producer.poll(0.05)
        self._unpolled += 1
        if self._unpolled >= self.POLL_EVERY:
            self._unpolled = 0
            self._producer.poll(0)

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        """Wait for Kafka's answer on every event; DeliveryFailed names those it refused."""
        remaining = self._producer.flush(timeout)
        failures, self._failures = self._failures, []
        if remaining:
            failures.append(DeliveryError("?", "?", f"{remaining} still queued after {timeout}s"))
        if failures:
            raise DeliveryFailed(failures)


def import_producer(settings: Settings, identity: ImportIdentity) -> EventSink:
    return BulkSender(settings, identity.source)


def run_import(
    rows: Iterator[Parsed],
    identity: ImportIdentity,
    options: ImportOptions,
    sink: EventSink | None,
    *,
    known_locations: Collection[str] | None = None,
    on_reject: Callable[[Rejection], None] | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> ImportReport:
    """Send the events of every good row to `sink` (None: a dry run, nothing is sent), wait
    for Kafka's answers and report. `on_reject` gets every refused row (also a row whose event
    Kafka refused), `on_rows(n)` is called as rows are read."""
    started = time.monotonic()
    state = SnapshotImport(
        identity,
        options.format,
        options.as_of_ms,
        known_locations=known_locations,
        keep_rejections=options.keep_rejections,
        dry_run=sink is None or options.dry_run,
    )
    log.info(
        "import_started",
        source=identity.source,
        format=options.format,
        dry_run=state.dry_run,
        as_of=options.as_of_ms,
    )
    take = state.take
    send = None if state.dry_run or sink is None else sink.send
    count = 0
    for parsed in rows:
        outcome = take(parsed)
        if isinstance(outcome, Rejection):
            if on_reject is not None:
                on_reject(outcome)
        elif send is not None:
            for event in outcome:
                send(event)
        count += 1
        if count == PROGRESS_EVERY_ROWS:
            if on_rows is not None:
                on_rows(count)
            count = 0
    if on_rows is not None and count:
        on_rows(count)
    if send is not None and sink is not None:
        for failure in _flush(sink):
            refused = state.refused(failure.event_id, failure.sku, failure.error)
            if refused is not None and on_reject is not None:
                on_reject(refused)
    report = state.report(time.monotonic() - started)
    log.info(
        "import_finished",
        source=report.source,
        rows=report.rows,
        imported=report.imported,
        rejected=report.rejected,
        not_delivered=report.not_delivered,
        seconds=round(report.seconds, 3),
    )
    return report


def _flush(sink: EventSink) -> list[DeliveryError]:
    try:
        sink.flush(FLUSH_TIMEOUT_S)
    except DeliveryFailed as exc:
        return exc.failures
    return []
