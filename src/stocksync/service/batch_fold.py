"""The batch fold: input messages in, rows written, outputs sent. A plain function over the
RowStore and OutputSink ports; the worker calls it once per batch, unit tests call it over the
memory adapters.

Each SKU's row is read once and written once per batch, however many of its events the batch
holds; each applied event appends one history record; a channel's quantity is published once
per batch, with the batch's last value. A duplicate (a redelivery after a crash) rewrites the
row and its current quantities, because the records it caused may have died with the process
that folded it first; that is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field

import structlog

from stocksync.codec.outputs import (
    Headers,
    alert_headers,
    encode_alert,
    encode_dead_letter,
    encode_projection,
    projection_key,
)
from stocksync.codec.reservations import encode_reply
from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.domain.audit import audit_record
from stocksync.domain.effects import (
    ChannelQuantityChanged,
    CountNotMerged,
    Effect,
    OversellDetected,
    ReservationFulfilled,
    StockLevelCrossed,
    UnknownLocation,
    alert_type,
)
from stocksync.domain.events import InventoryEvent
from stocksync.domain.fold import apply_event, current_quantities
from stocksync.domain.reservations import (
    ReplyStatus,
    ReservationCommand,
    apply_command,
    fulfilled_reply,
)
from stocksync.domain.state import Published, SkuRow
from stocksync.domain.topology import Topology
from stocksync.service.admission import AdmissionRules, Rejected, admit
from stocksync.service.history import HistoryRetention, encode_record, history_key
from stocksync.service.ports import InputRecord, OutputSink, RowStore, Table
from stocksync.topics import TopicNames

log = structlog.get_logger("stocksync.fold")

# reservation index keys, for lookups by id (GET /v1/reservations/{id}); never for deciding
ANSWER_PREFIX = b"answer:"
ENDED_PREFIX = b"ended:"
# CONFIRMED too: rows written before confirmed holds stayed in the row know them only there
ENDED = frozenset(
    {
        ReplyStatus.CONFIRMED,
        ReplyStatus.RELEASED,
        ReplyStatus.EXPIRED,
        ReplyStatus.CANCELLED,
        ReplyStatus.FULFILLED,
    }
)
HOLDING = frozenset({ReplyStatus.HELD, ReplyStatus.EXTENDED})
# Every record the worker writes stays under Kafka's default max.message.bytes (1,048,588)
MAX_RECORD_BYTES = 1_000_000
MAX_REASON_CHARS = 2_000
MAX_DEAD_LETTER_KEY = 1_024  # bytes of an oversized input's key kept in its dead letter

COUNTERS = (
    "applied",
    "duplicates",
    "dead_lettered",
    "oversells",
    "alerts",
    "commands",
    "unknown_locations",
)


@dataclass(slots=True)
class FoldContext:
    """What a batch is folded with. `topology` is replaced when a new version is published;
    `counters` is what /metrics reads."""

    topology: Topology
    rules: AdmissionRules
    topics: TopicNames
    retention: HistoryRetention = field(default_factory=HistoryRetention)
    counters: MutableMapping[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    # told of every hold taken or extended: (expires_at, sku, reservation id)
    on_hold: Callable[[int, str, str], None] = lambda _at, _sku, _rid: None
    clock_ms: Callable[[], int] = lambda: 0  # the dead letters' timestamp only, never the fold's


@dataclass(slots=True)
class _PendingRow:
    """One SKU's row while a batch is folded into it, and what it will publish."""

    partition: int
    stored: bytes | None
    row: SkuRow | None
    dirty: bool = False  # the row changed: write it
    rewrite: bool = False  # a redelivery: write the stored row again (changelog repair)
    history: list[tuple[int, bytes]] = field(default_factory=list)  # (revision, record)
    projections: dict[str, ChannelQuantityChanged] = field(default_factory=dict)
    alerts: list[tuple[str, bytes]] = field(default_factory=list)  # (type, record)
    replies: list[tuple[bytes, bytes]] = field(default_factory=list)
    answers: dict[bytes, bytes] = field(default_factory=dict)
    initial_published: dict[str, Published] = field(default_factory=dict)


def fold_batch(
    records: Iterable[InputRecord], ctx: FoldContext, store: RowStore, sink: OutputSink
) -> None:
    """Fold input records in order. Records that fail admission are dead-lettered with the
    reason; a record the fold itself fails on is dead-lettered as `internal`."""
    pending: dict[bytes, _PendingRow] = {}
    rules = ctx.rules
    for record in records:
        try:
            decoded = admit(record.topic, record.partition, record.key, record.value, rules)
        except Rejected as rejected:
            dead_letter(record, rejected.error, rejected.reason, ctx, sink)
            continue
        key: bytes = record.key  # type: ignore[assignment]  # admitted: the SKU
        state = pending.get(key)
        if state is None:
            stored = store.get(Table.ROWS, record.partition, key)
            state = pending[key] = _PendingRow(
                record.partition, stored, row_from_bytes(stored) if stored is not None else None
            )
            if state.row is not None:
                state.initial_published = state.row.published  # rows are never changed in place
        try:
            if isinstance(decoded, ReservationCommand):
                _fold_command(state, decoded, record.offset, ctx)
            else:
                _fold_event(state, decoded, ctx)
        except Exception as exc:
            # faust would ack and skip the event; keep it, with the reason, instead.
            log.exception("event_failed", topic=record.topic, offset=record.offset)
            dead_letter(record, "internal", f"worker error: {exc!r}", ctx, sink)
    _flush(pending, ctx, store, sink)


def _fold_event(state: _PendingRow, event: InventoryEvent, ctx: FoldContext) -> None:
    topology = ctx.topology
    before = state.row
    result = apply_event(before, event, topology)
    state.row = result.row
    if not result.applied:
        # A duplicate is usually a redelivery after a crash: the records the event caused may
        # have died with the old process. Writing the row and the current quantities again is
        # idempotent and closes that gap before the source offset is committed.
        ctx.counters["duplicates"] += 1
        state.rewrite = True
        for change in current_quantities(
            result.row, topology, topology.channels_for(event.location)
        ):
            state.projections[change.channel] = change
        return
    ctx.counters["applied"] += 1
    state.dirty = True
    record = audit_record(before, event, result.row, result.effects, topology)
    state.history.append((result.row.revision, encode_record(record)))
    _collect(state, result.effects, result.row.revision, ctx)


def _fold_command(
    state: _PendingRow, command: ReservationCommand, offset: int, ctx: FoldContext
) -> None:
    # Only the row's own memory of answers decides whether a request was seen: the reservation
    # index is another table, and after a crash the two can be restored to different points.
    topology = ctx.topology
    result = apply_command(state.row, command, topology, offset)
    state.row = result.row
    reply = result.reply
    if reply is None or not result.applied:
        # A retry or a redelivery: the records its first decision caused (the row's changelog,
        # the quantities it changed) may have died with the process that made it. Send the
        # row and every channel's current quantity again; idempotent.
        state.rewrite = True
        published = [c for c in result.row.published if c in topology.channels]
        for change in current_quantities(result.row, topology, published):
            state.projections[change.channel] = change
    if reply is None:
        return  # a redelivery whose answer the row has forgotten
    encoded = encode_reply(reply)
    if reply.status is not ReplyStatus.KEY_REUSED:  # (the index keeps the first request's)
        # Written again for a retry or a redelivery too: the index's changelog records may
        # have died with the old process (the row's are repaired by the rewrite).
        state.answers[ANSWER_PREFIX + command.request_id.encode()] = encoded
        if reply.status in ENDED:
            state.answers[ENDED_PREFIX + reply.reservation_id.encode()] = encoded
    if result.applied:
        state.dirty = True
        ctx.counters["commands"] += 1
        if reply.status in HOLDING:
            ctx.on_hold(reply.expires_at, command.sku, reply.reservation_id)
    state.replies.append((command.request_id.encode(), encoded))
    _collect(state, result.effects, result.row.revision, ctx)


def _collect(
    state: _PendingRow, effects: Sequence[Effect], revision: int, ctx: FoldContext
) -> None:
    for effect in effects:
        if isinstance(effect, ChannelQuantityChanged):
            state.projections[effect.channel] = effect  # the batch's last value per channel
            continue
        if isinstance(effect, ReservationFulfilled):
            ended = fulfilled_reply(effect)
            state.answers[ENDED_PREFIX + effect.reservation_id.encode()] = encode_reply(ended)
            continue
        if isinstance(effect, OversellDetected):
            ctx.counters["oversells"] += 1
        elif isinstance(effect, UnknownLocation):
            ctx.counters["unknown_locations"] += 1
        elif not isinstance(effect, (StockLevelCrossed, CountNotMerged)):
            continue
        ctx.counters["alerts"] += 1
        state.alerts.append((alert_type(effect) or "", encode_alert(effect, revision)))


def _flush(
    pending: dict[bytes, _PendingRow], ctx: FoldContext, store: RowStore, sink: OutputSink
) -> None:
    """Write every changed row, history record and index entry (one write batch per table and
    partition), send their changelog records, then what the batch publishes."""
    writes: dict[tuple[Table, int], list[tuple[bytes, bytes]]] = {}

    def put(table: Table, partition: int, key: bytes, value: bytes) -> None:
        items = writes.get((table, partition))
        if items is None:
            items = writes[(table, partition)] = []
        items.append((key, value))

    # properties that build their string on every call: read once
    channel_atp, alerts_topic, replies = (
        ctx.topics.channel_atp,
        ctx.topics.alerts,
        ctx.topics.reservation_replies,
    )
    retention = ctx.retention
    outputs: list[tuple[str, bytes, bytes, Headers | None]] = []
    for key, state in pending.items():
        partition = state.partition
        if state.dirty and state.row is not None:
            put(Table.ROWS, partition, key, row_to_bytes(state.row))
            if state.history:
                writes.setdefault((Table.HISTORY, partition), []).extend(
                    (history_key(key, revision, retention), record)
                    for revision, record in state.history
                )
        elif state.rewrite and state.stored is not None:
            put(Table.ROWS, partition, key, state.stored)
        for index_key, encoded in state.answers.items():
            put(Table.INDEX, partition, index_key, encoded)
        initial = state.initial_published
        for channel, change in state.projections.items():
            if not state.rewrite and initial.get(channel) == Published(
                change.quantity, change.policy_version
            ):
                continue  # changed and changed back within the batch: nothing new to say
            outputs.append(
                (
                    channel_atp,
                    projection_key(channel, change.sku),
                    encode_projection(change),
                    None,
                )
            )
        for kind, alert in state.alerts:
            outputs.append((alerts_topic, key, alert, alert_headers(kind)))
        for request_id, encoded in state.replies:
            outputs.append((replies, request_id, encoded, None))
    for (table, partition), items in writes.items():
        store.write(table, partition, items)
        for key, value in items:
            sink.send_changelog(table, partition, key, value)
    for topic, key, value, headers in outputs:
        sink.send(topic, key, value, headers)


def dead_letter(
    record: InputRecord, error: str, reason: str, ctx: FoldContext, sink: OutputSink
) -> None:
    """Send a message that cannot be folded to the dead-letter topic, with the reason and its
    original bytes (cut, and the cut said, where they would not fit in one Kafka record)."""
    ctx.counters["dead_lettered"] += 1
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS] + "..."
    log.warning(
        "event_dead_lettered",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        error=error,
        reason=reason,
    )
    key, value = record.key, record.value
    # The record carries the key twice (as its key and inside the value) and the value once,
    # beside the reason, the topic and a few numbers.
    room = MAX_RECORD_BYTES - 4 * MAX_REASON_CHARS - 1024
    if 2 * len(key or b"") + len(value or b"") > room:
        reason = (
            f"{reason} (original key and value cut to fit one record: "
            f"{len(key or b'')} + {len(value or b'')} bytes)"
        )
        key = None if key is None else key[:MAX_DEAD_LETTER_KEY]
        value = None if value is None else value[: room - 2 * len(key or b"")]
    sink.send(
        ctx.topics.dead_letter,
        key,
        encode_dead_letter(
            reason=reason,
            error=error,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            value=value,
            at_ms=ctx.clock_ms(),
        ),
    )
