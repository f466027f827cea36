"""What the service tests share: input records as the worker reads them, and the worker's
tables over the memory adapters."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from builders import SKU, TOPOLOGY

from stocksync.codec.avro import decode_as
from stocksync.codec.events import encode_event
from stocksync.codec.outputs import decode_dead_letter, decode_projection
from stocksync.codec.reservations import REPLY_SUBJECT, encode_command, reply_from_record
from stocksync.codec.rows import row_from_bytes
from stocksync.domain.effects import ChannelQuantityChanged
from stocksync.domain.events import STOCK_KINDS, InventoryEvent
from stocksync.domain.reservations import ReservationCommand, ReservationReply
from stocksync.domain.state import SkuRow
from stocksync.service.admission import AdmissionRules, murmur2_partition
from stocksync.service.batch_fold import FoldContext, fold_batch
from stocksync.service.history import HistoryPage, HistoryRetention, read_history
from stocksync.service.memory import MemoryRowStore, MemorySink
from stocksync.service.ports import Table
from stocksync.topics import TopicNames

PARTITIONS = 8
TOPICS = TopicNames()
# murmur2 over PARTITIONS: SKU-A -> 6, SKU-B -> 4 (as SKU-1), SKU-C -> 0, SKU-D -> 3
SPREAD_SKUS = ("SKU-A", "SKU-B", "SKU-C", "SKU-D")


def partition_of(sku: str) -> int:
    return murmur2_partition(sku.encode(), PARTITIONS)


@dataclass(frozen=True, slots=True)
class Record:
    """An input message (the InputRecord port; aiokafka's ConsumerRecord has this shape)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None = None


@dataclass
class InputLog:
    """The input topics as producers fill them: each record gets the next offset of its
    (topic, partition)."""

    next_offsets: defaultdict[tuple[str, int], int] = field(
        default_factory=lambda: defaultdict(int)
    )

    def raw(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> Record:
        offset = self.next_offsets[(topic, partition)]
        self.next_offsets[(topic, partition)] = offset + 1
        return Record(topic, partition, offset, key, value)

    def event(self, event: InventoryEvent, *, topic: str | None = None) -> Record:
        """An event keyed by its SKU, on its SKU's partition of its kind's topic."""
        if topic is None:
            topic = TOPICS.stock_events if event.kind in STOCK_KINDS else TOPICS.sale_events
        return self.raw(topic, partition_of(event.sku), event.sku.encode(), encode_event(event))

    def command(self, command: ReservationCommand, *, topic: str | None = None) -> Record:
        topic = TOPICS.reservation_commands if topic is None else topic
        key = command.sku.encode()
        return self.raw(topic, partition_of(command.sku), key, encode_command(command))


def fold_context(retention: HistoryRetention | None = None) -> FoldContext:
    """The fold's context as the worker builds it (streams/app.py), over the test topology."""
    rules = AdmissionRules(
        partitions=PARTITIONS,
        source_of_topic=TOPICS.source_topics(),
        own_topic_sources=frozenset(TOPICS.own_topic_sources),
        command_topics=frozenset({TOPICS.reservation_commands}),
    )
    ctx = FoldContext(topology=TOPOLOGY, rules=rules, topics=TOPICS)
    if retention is not None:
        ctx.retention = retention
    return ctx


@dataclass
class RecordingStore(MemoryRowStore):
    """The memory store, remembering each write batch: (table, partition, keys written)."""

    writes: list[tuple[Table, int, list[bytes]]] = field(default_factory=list)

    def write(self, table: Table, partition: int, items: Iterable[tuple[bytes, bytes]]) -> None:
        items = list(items)
        self.writes.append((table, partition, [key for key, _ in items]))
        super().write(table, partition, items)


@dataclass
class Tables:
    """The worker's tables over the memory adapters: fold a batch, read what it left."""

    ctx: FoldContext = field(default_factory=fold_context)
    store: RecordingStore = field(default_factory=RecordingStore)

    def fold(self, *records: Record) -> MemorySink:
        """Fold one batch; what it sent, and only that, is in the returned sink."""
        sink = MemorySink()
        fold_batch(records, self.ctx, self.store, sink)
        return sink

    def row_bytes(self, sku: str = SKU) -> bytes | None:
        return self.store.get(Table.ROWS, partition_of(sku), sku.encode())

    def row(self, sku: str = SKU) -> SkuRow:
        stored = self.row_bytes(sku)
        assert stored is not None, f"no row for {sku}"
        return row_from_bytes(stored)

    def history(self, sku: str = SKU, limit: int = 100, before: int | None = None) -> HistoryPage:
        """A page of the SKU's audit trail, read as the worker's HTTP API reads it."""
        row = self.row(sku)
        partition = partition_of(sku)
        return read_history(
            lambda key: self.store.get(Table.HISTORY, partition, key),
            sku.encode(),
            row.revision,
            row.last_event_at,
            self.ctx.retention,
            self.ctx.topology,
            limit,
            before,
        )


def projections(sink: MemorySink) -> list[ChannelQuantityChanged]:
    return [decode_projection(value) for _, value in sink.to(TOPICS.channel_atp)]


def quantities(sink: MemorySink) -> list[tuple[str, str, int]]:
    """(channel, sku, quantity) of each projection sent, in order."""
    return [(p.channel, p.sku, p.quantity) for p in projections(sink)]


def replies(sink: MemorySink) -> list[ReservationReply]:
    return [
        reply_from_record(decode_as(value, REPLY_SUBJECT))
        for _, value in sink.to(TOPICS.reservation_replies)
    ]


def dead_letters(sink: MemorySink) -> list[dict[str, object]]:
    return [decode_dead_letter(value) for _, value in sink.to(TOPICS.dead_letter)]
