"""The stocksync worker: one faust agent folds stock and sale events into the ATP table.

channel producer -> stock/sale topics -> fold_events agent -> atp table (rocksdict + changelog)
                                                          -> channel-atp projection topic
                                                          -> dead-letter topic (bad input)
The agent only decodes, calls stocksync.domain.fold.apply_event and publishes the effects.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import faust
import msgspec
import structlog
from aiokafka.partitioner import murmur2
from faust.types import TP, EventT, StreamT

from stocksync.codec.avro import Undecodable, decode
from stocksync.codec.events import EVENT_SUBJECTS, record_to_event
from stocksync.codec.outputs import (
    encode_alert,
    encode_dead_letter,
    encode_projection,
    projection_key,
)
from stocksync.codec.reservations import (
    COMMAND_SUBJECT,
    command_from_record,
    encode_command,
    encode_reply,
    reply_from_record,
)
from stocksync.codec.rows import holds_from_bytes, row_from_bytes, row_to_bytes
from stocksync.codec.schemas import UnknownSchema
from stocksync.config import Settings
from stocksync.domain.audit import audit_entry
from stocksync.domain.effects import (
    ChannelQuantityChanged,
    CountNotMerged,
    Effect,
    OversellDetected,
    StockLevelCrossed,
)
from stocksync.domain.events import InvalidEvent, InventoryEvent
from stocksync.domain.fold import apply_event, current_quantities, project_channels
from stocksync.domain.reservations import (
    CommandKind,
    ReplyStatus,
    ReservationCommand,
    ReservationReply,
    apply_command,
)
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology
from stocksync.topics import ATP_TABLE, HISTORY_TABLE, RESERVATION_INDEX_TABLE
from streams.faust_fixes import keep_queued_input_on_resume
from streams.outputs import Outputs, OutputsNotDelivered

log = structlog.get_logger("stocksync.worker")

MB = 1024 * 1024
HISTORY_DEPTH = 20  # audit entries kept per SKU
REPROJECT_CHUNK = 500  # rows re-projected between yields to the event loop
EXPIRY_CHECK_SECONDS = 1.0
# reservation index keys, for lookups by id (GET /v1/reservations/{id}); never for deciding:
# the answer to each request id, and how each hold ended
ANSWER_PREFIX = b"answer:"
ENDED_PREFIX = b"ended:"
ENDED = frozenset({ReplyStatus.CONFIRMED, ReplyStatus.RELEASED, ReplyStatus.EXPIRED})
FAUST_INTERNAL_KEY_PREFIX = b"__faust"
EXIT_OUTPUTS_LOST = 75  # EX_TEMPFAIL: restart the worker; nothing past its last commit is lost


@lru_cache(maxsize=200_000)
def murmur2_partition(key: bytes, partitions: int) -> int:
    # aiokafka's murmur2 is pure Python (microseconds per key): remember hot SKUs.
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)


history_encoder = msgspec.json.Encoder(order="deterministic")
history_decoder = msgspec.json.Decoder(list[dict[str, Any]])


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("reprojection_failed", error=repr(task.exception()))


@dataclass(slots=True)
class PendingRow:
    """One SKU's row while a batch is folded into it, and what it will publish."""

    event: EventT[bytes]  # the latest event of the SKU in the batch: its partition
    stored: bytes | None
    row: SkuRow | None
    dirty: bool = False  # the row changed: write it and its history
    rewrite: bool = False  # a redelivery: write the stored row again (changelog repair)
    history: list[dict[str, Any]] = field(default_factory=list)
    projections: dict[str, ChannelQuantityChanged] = field(default_factory=dict)
    alerts: list[bytes] = field(default_factory=list)
    replies: list[tuple[bytes, bytes]] = field(default_factory=list)
    answers: dict[bytes, bytes] = field(default_factory=dict)  # reservation index (lookups)
    initial_published: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.row is not None:
            self.initial_published = dict(self.row.published)


class Rejected(Exception):
    """An input message that cannot be applied; it goes to the dead-letter topic."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


class Worker:
    """Holds the faust app and the pieces the HTTP API reads."""

    def __init__(self, settings: Settings, topology: Topology) -> None:
        self.settings = settings
        self.current_topology = topology
        self._reprojection: asyncio.Future[None] | None = None
        self.counters = {
            "applied": 0,
            "duplicates": 0,
            "dead_lettered": 0,
            "oversells": 0,
            "alerts": 0,
            "commands": 0,
            "input_gaps": 0,
        }
        # (topic, partition) -> (consumer generation, next offset expected): see _check_gap
        self._next_offsets: dict[tuple[str, int], tuple[int, int]] = {}
        topics = settings.topics
        self.topics = topics
        self.source_of_topic = topics.source_topics()
        self._owners: dict[int, str] = {}
        self._owners_source: object = None
        self.outputs = Outputs(settings)
        # (events, seconds folding, age in seconds of the newest event) after each batch
        self.batch_observers: list[Callable[[int, float, float | None], None]] = []
        self.app = faust.App(
            settings.app_id,
            broker=f"kafka://{settings.bootstrap_servers}",
            broker_credentials=settings.faust_broker_credentials(),
            store="rocksdb://",  # driver chosen per table below: rocksdict
            datadir=str(settings.data_dir),
            # faust's own web server (and its /table endpoints that expose data) stays off;
            # stocksync serves its API with aiohttp (streams.http_service).
            web_enabled=False,
            # Advertised to the other workers through the assignor: where this worker's
            # HTTP API answers for the keys it owns.
            canonical_url=settings.http_url,
            topic_allow_declare=False,  # topics are provisioned by `stocksync topics create`
            topic_partitions=settings.partitions,
            consumer_auto_offset_reset="earliest",
            stream_wait_empty=False,
            broker_session_timeout=10.0,
            broker_heartbeat_interval=1.0,
            producer_acks=-1,
            producer_linger=0.001,
            table_standby_replicas=0,
            stream_recovery_delay=0.0,
            logging_config=None,
            # Throughput: bigger fetches and stream buffers keep the agent fed; bigger producer
            # batches carry the changelog and projection records.
            broker_max_poll_records=5000,
            consumer_max_fetch_size=8 * MB,
            stream_buffer_maxsize=50_000,
            producer_max_batch_size=512 * 1024,
        )
        self.app.conf.table_key_index_size = 100_000
        keep_queued_input_on_resume(self.app)
        self.events_topic = self.app.topic(
            *topics.input_topics,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )
        self.commands_topic = self.app.topic(
            topics.reservation_commands, key_serializer="raw", value_serializer="raw"
        )
        # (expires_at, sku, reservation id) of holds this worker owns; EXPIRE is written when due
        self.expiry_queue: list[tuple[int, str, str]] = []
        self.table = self._bytes_table(ATP_TABLE, cache_mb=settings.rocksdb_cache_mb)
        self.history = self._bytes_table(HISTORY_TABLE, cache_mb=8)
        self.reservation_index = self._bytes_table(RESERVATION_INDEX_TABLE, cache_mb=8)
        # changelog topic -> the table's RocksDB store: rows are written through _put
        self._atp_log, self._history_log, self._index_log = (
            table.changelog_topic.get_topic_name()
            for table in (self.table, self.history, self.reservation_index)
        )
        self._stores = {
            self._atp_log: self.table.data,
            self._history_log: self.history.data,
            self._index_log: self.reservation_index.data,
        }
        self.app.agent(self.events_topic, name="fold_events")(self.fold_events)
        self.app.timer(EXPIRY_CHECK_SECONDS)(self.expire_due_holds)

    # -- the agent ---------------------------------------------------------------------------

    def _bytes_table(self, name: str, cache_mb: int) -> Any:
        """A RocksDB-backed table of raw bytes (faust picks the raw codec for bytes; values
        are encoded by stocksync's codecs), co-partitioned with the input topics."""
        return self.app.Table(
            name,
            key_type=bytes,
            value_type=bytes,
            partitions=self.settings.partitions,
            options={  # a fresh dict each time: faust's store pops keys out of it
                "driver": "rocksdict",
                # faust's default is a 2 GiB block cache per partition
                "block_cache_size": cache_mb * MB,
                "block_cache_compressed_size": 8 * MB,
                "write_buffer_size": (16 if cache_mb > 8 else 8) * MB,
            },
        )

    async def fold_events(self, stream: StreamT[bytes]) -> None:
        # Batches amortise the row codec, the RocksDB write and the changelog record over all
        # events of a SKU in the batch. faust acks a batch's events when the next is asked for,
        # after this loop's body returned, so offsets never pass an event still being folded
        # nor a table change whose changelog record is not on the broker.
        batches = stream.take_events(  # type: ignore[attr-defined]
            self.settings.batch_max, within=self.settings.batch_within_s
        )
        async for batch in batches:
            started = time.perf_counter()
            try:
                self.fold_batch(stream, batch)
            finally:
                stream._set_current_event(None)  # type: ignore[attr-defined]
            if self.batch_observers:
                elapsed = time.perf_counter() - started
                newest = max((e.message.timestamp or 0.0 for e in batch), default=0.0)
                age = time.time() - newest if newest else None
                for observe in self.batch_observers:
                    observe(len(batch), elapsed, age)
            # Before faust may ack this batch (when the next one is asked for): every table
            # change, projection, alert, reply and dead letter it caused is on the broker.
            try:
                await self.outputs.delivered()
            except OutputsNotDelivered as exc:
                # Kafka refused records for good. Leaving the loop would not help: faust acks
                # a batch when its generator is closed, so it would be committed without its
                # outputs. Stop at once instead; a restart folds it again from the committed
                # offset.
                log.critical("outputs_not_delivered", error=str(exc), exit_code=EXIT_OUTPUTS_LOST)
                os._exit(EXIT_OUTPUTS_LOST)
            self._persisted(self.outputs.take_changelog_offsets())

    def _persisted(self, offsets: dict[tuple[str, int], int]) -> None:
        """Tell each partition's RocksDB how far the changelog is known to be in it, as faust
        does for its own changelog writes: a restart then reads only the changelog after it."""
        for (topic, partition), offset in offsets.items():
            store = self._stores[topic]
            # A partition revoked meanwhile has its database closed: leave it closed.
            if partition in store._dbs:
                store.set_persisted_offset(TP(topic, partition), offset)

    def fold_batch(self, stream: StreamT[bytes], batch: Sequence[EventT[bytes]]) -> None:
        """Fold a batch synchronously: rows are read once, written once, and every message it
        causes is queued in order on the outputs producer."""
        pending: dict[bytes, PendingRow] = {}
        generation = self.app.consumer_generation_id
        for event in batch:
            message = event.message
            if message.generation_id != generation:
                self._leave_for_new_owner(message)
                continue
            self._check_gap(message)
            try:
                decoded = self._decode(message)
            except Rejected as rejected:
                self._dead_letter(message, rejected.error, rejected.reason)
                continue
            key = message.key or b""
            state = pending.get(key)
            if state is None:
                # Table reads and writes use the current event's partition (the SKU's).
                stream._set_current_event(event)  # type: ignore[attr-defined]
                stored = self.table.get(key)
                state = pending[key] = PendingRow(
                    event, stored, row_from_bytes(stored) if stored is not None else None
                )
            state.event = event
            try:
                if isinstance(decoded, ReservationCommand):
                    self._fold_command(state, decoded, message.offset)
                else:
                    self._fold_event(state, decoded)
            except Exception as exc:
                # faust would ack and skip the event; keep it, with the reason, instead.
                log.exception("event_failed", topic=message.topic, offset=message.offset)
                self._dead_letter(message, "internal", f"worker error: {exc!r}")
        for key, state in pending.items():
            stream._set_current_event(state.event)  # type: ignore[attr-defined]
            self._flush_row(key, state)

    def _leave_for_new_owner(self, message: Any) -> None:
        """A message fetched before a rebalance that reached the batch after it (faust's take
        buffer can hold one): its partition may belong to another worker now, whose table and
        changelog this one must not write. It is not folded and, unlike what faust would do,
        not acked either: it is fetched again from the committed offset by whoever owns it."""
        message.acked = True  # faust's ack of the batch then leaves its offset alone
        self.app.consumer.unacked.discard(message)
        log.info(
            "stale_message_left",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )

    def _check_gap(self, message: Any) -> None:
        """Raise the alarm when input skips offsets: within one assignment a partition's
        messages arrive in offset order, each the one after the last (earlier ones come again
        after a seek back; the producers write no transactions, whose markers would take
        offsets). A jump means faust dropped messages on the way to the agent, as its recovery
        once did (streams/faust_fixes.py): the table then misses what they carried."""
        tp = (message.topic, message.partition)
        generation = message.generation_id
        known = self._next_offsets.get(tp)
        if known is not None and known[0] == generation:
            expected: int | None = known[1]
        else:
            # The first message of this assignment: it is the committed offset (the next to
            # read) when faust knows it; before the partition's first commit it cannot be told.
            committed = self.app.consumer._committed_offset  # type: ignore[attr-defined]
            expected = committed.get(message.tp)
        if expected is not None and message.offset > expected:
            self.counters["input_gaps"] += 1
            log.error(
                "input_gap",
                topic=message.topic,
                partition=message.partition,
                expected=expected,
                received=message.offset,
                missing=message.offset - expected,
            )
        self._next_offsets[tp] = (generation, message.offset + 1)

    def _fold_event(self, state: PendingRow, event: InventoryEvent) -> None:
        topology = self.current_topology
        before = state.row
        result = apply_event(before, event, topology)
        state.row = result.row
        if not result.applied:
            # A duplicate is usually a redelivery after a crash: the changelog record and the
            # projections the event caused may have died with the old process. Writing the row
            # and the current quantities again is idempotent and closes that gap before the
            # source offset is committed.
            self.counters["duplicates"] += 1
            state.rewrite = True
            for change in current_quantities(
                result.row, topology, topology.channels_for(event.location)
            ):
                state.projections[change.channel] = change
            return
        self.counters["applied"] += 1
        state.dirty = True
        state.history.append(audit_entry(before, event, result.row, result.effects, topology))
        self._collect(state, result.effects, result.row.revision)

    def _fold_command(self, state: PendingRow, command: ReservationCommand, offset: int) -> None:
        # Only the row's own memory of answers decides whether a request was seen: the
        # reservation index is another table, and after a crash the two can be restored to
        # different points of the log.
        result = apply_command(state.row, command, self.current_topology, offset)
        state.row = result.row
        reply = result.reply
        if reply is None:
            # A redelivery whose answer the row has forgotten: the client retries with its key
            state.rewrite = True
            return
        encoded = encode_reply(reply)
        # Written again for a retry or a redelivery too: the index's changelog records may
        # have died with the old process (the row's are repaired by the rewrite).
        state.answers[ANSWER_PREFIX + command.request_id.encode()] = encoded
        if reply.status in ENDED:
            state.answers[ENDED_PREFIX + reply.reservation_id.encode()] = encoded
        if not result.applied:
            state.rewrite = True  # a retry or a redelivery: repair the changelog, answer again
        else:
            state.dirty = True
            self.counters["commands"] += 1
            if reply.status in (ReplyStatus.HELD, ReplyStatus.EXTENDED):
                heapq.heappush(
                    self.expiry_queue, (reply.expires_at, command.sku, reply.reservation_id)
                )
        state.replies.append((command.request_id.encode(), encoded))
        self._collect(state, result.effects, result.row.revision)

    def _collect(self, state: PendingRow, effects: Sequence[Effect], revision: int) -> None:
        for effect in effects:
            if isinstance(effect, ChannelQuantityChanged):
                state.projections[effect.channel] = effect  # the batch's last value per channel
                continue
            if isinstance(effect, OversellDetected):
                self.counters["oversells"] += 1
            elif not isinstance(effect, (StockLevelCrossed, CountNotMerged)):
                continue
            self.counters["alerts"] += 1
            state.alerts.append(encode_alert(effect, revision))

    def _put(self, changelog: str, key: bytes, value: bytes, partition: int) -> None:
        """Write a table row: into the partition's RocksDB (faust's store picks the partition
        of the current event) and to its changelog, sent with the batch's other outputs."""
        self._stores[changelog][key] = value
        self.outputs.send_changelog(changelog, partition, key, value)

    def _flush_row(self, key: bytes, state: PendingRow) -> None:
        partition = state.event.message.partition
        if state.dirty and state.row is not None:
            self._put(self._atp_log, key, row_to_bytes(state.row), partition)
            if state.history:
                self._append_history(key, state.history, partition)
        elif state.rewrite and state.stored is not None:
            self._put(self._atp_log, key, state.stored, partition)
        for index_key, encoded in state.answers.items():
            self._put(self._index_log, index_key, encoded, partition)
        initial = state.initial_published
        for channel, change in state.projections.items():
            if not state.rewrite and initial.get(channel) == (
                change.quantity,
                change.policy_version,
            ):
                continue  # changed and changed back within the batch: nothing new to say
            self.outputs.send(
                self.topics.channel_atp,
                projection_key(channel, change.sku),
                encode_projection(change),
            )
        for alert in state.alerts:
            self.outputs.send(self.topics.alerts, key, alert)
        for request_id, encoded in state.replies:
            self.outputs.send(self.topics.reservation_replies, request_id, encoded)

    def _decode(self, message: Any) -> InventoryEvent | ReservationCommand:
        key: bytes | None = message.key
        decoded: InventoryEvent | ReservationCommand
        try:
            subject, record = decode(message.value)
            if subject in EVENT_SUBJECTS:
                decoded = record_to_event(subject, record)
            elif subject == COMMAND_SUBJECT:
                decoded = command_from_record(record)
            else:
                raise InvalidEvent(f"a {subject} message does not belong on {message.topic}")
        except Undecodable as exc:
            raise Rejected("undecodable", str(exc)) from None
        except UnknownSchema as exc:
            raise Rejected("unknown_schema", str(exc)) from None
        except (InvalidEvent, ValueError, KeyError) as exc:
            raise Rejected("invalid", str(exc)) from None
        if isinstance(decoded, InventoryEvent):
            self._check_source(message.topic, decoded.source)
        if key != decoded.sku.encode():
            raise Rejected(
                "key_mismatch",
                f"message key {key!r} is not the message's sku {decoded.sku!r}; "
                f"key every event and command by its SKU",
            )
        expected = murmur2_partition(key, self.settings.partitions)
        if message.partition != expected:
            raise Rejected(
                "wrong_partition",
                f"SKU {decoded.sku!r} arrived on partition {message.partition}, "
                f"murmur2 places it on {expected}: set partitioner=murmur2_random on the "
                f"producer",
            )
        return decoded

    def _check_source(self, topic: str, source: str) -> None:
        """With source-owned topics, an event's source must be its topic's: Kafka ACLs decide
        who may write a topic, this decides that a topic speaks only for its source."""
        owner = self.source_of_topic.get(topic)
        if owner is not None and source != owner:
            raise Rejected(
                "source_mismatch",
                f"event of source {source!r} on {topic}, which only source {owner!r} may use",
            )
        if owner is None and source in self.topics.own_topic_sources:
            raise Rejected(
                "source_mismatch",
                f"source {source!r} has topics of its own ({self.topics.stock_events_of(source)}, "
                f"{self.topics.sale_events_of(source)}) and may not write to {topic}",
            )

    def _append_history(self, key: bytes, entries: list[dict[str, Any]], partition: int) -> None:
        stored = self.history.get(key)
        kept = history_decoder.decode(stored) if stored else []
        kept.extend(entries)
        self._put(self._history_log, key, history_encoder.encode(kept[-HISTORY_DEPTH:]), partition)

    # -- reservation expiry -----------------------------------------------------------------

    async def expire_due_holds(self) -> None:
        """Write an EXPIRE command for every hold whose time ran out. The wall clock is read
        here, outside the fold; the fold decides on the command's time, so a replay agrees."""
        now = int(time.time() * 1000)
        queue = self.expiry_queue
        while queue and queue[0][0] <= now:
            expires_at, sku, reservation_id = heapq.heappop(queue)
            command = ReservationCommand(
                request_id=f"expire:{reservation_id}:{expires_at}",
                kind=CommandKind.EXPIRE,
                sku=sku,
                reservation_id=reservation_id,
                issued_at=now,
            )
            await self.commands_topic.send(key=sku.encode(), value=encode_command(command))

    def load_expiry_queue(self) -> None:
        """After recovery: the holds in the table that need an expiry. One pass over each
        partition's RocksDB (a per-key table lookup probes every partition), reading only the
        SKU and holds of each row."""
        started = time.monotonic()
        rows = 0
        for stored in self.table.data.values():
            try:
                sku, holds = holds_from_bytes(stored)
            except ValueError as exc:
                log.error("row_unreadable", error=str(exc))
                continue
            rows += 1
            for reservation_id, hold in holds.items():
                heapq.heappush(self.expiry_queue, (hold.expires_at, sku, reservation_id))
        log.info(
            "expiry_queue_loaded",
            holds=len(self.expiry_queue),
            rows=rows,
            seconds=round(time.monotonic() - started, 3),
        )

    # -- configuration changes ---------------------------------------------------------------

    def on_topology(self, topology: Topology) -> None:
        """A newer topology version was published (called on the event loop)."""
        previous = self.current_topology
        self.current_topology = topology
        log.info("topology_applied", version=topology.version, previous=previous.version)
        self._reprojection = asyncio.ensure_future(self._reproject(topology))
        self._reprojection.add_done_callback(_log_failure)

    async def _reproject(self, topology: Topology) -> None:
        # Every channel quantity under the new policy, published now rather than at each SKU's
        # next event. Rows are read and their messages queued without yielding in between, so a
        # newer value from the agent can never be queued before an older one from here.
        channels = list(topology.channels)
        done = 0
        for key in list(self.table.keys()):
            if key.startswith(FAUST_INTERNAL_KEY_PREFIX) or self.current_topology is not topology:
                continue
            current = self.table.get(key)
            if current is None:
                continue
            try:
                row = row_from_bytes(current)
            except ValueError as exc:
                log.error("row_unreadable", key=key.decode(errors="replace"), error=str(exc))
                continue
            _, effects = project_channels(row, topology, channels)
            for effect in effects:
                if isinstance(effect, ChannelQuantityChanged):
                    self.outputs.send(
                        self.topics.channel_atp,
                        projection_key(effect.channel, effect.sku),
                        encode_projection(effect),
                    )
                elif isinstance(effect, StockLevelCrossed):
                    self.counters["alerts"] += 1
                    self.outputs.send(
                        self.topics.alerts, effect.sku.encode(), encode_alert(effect, row.revision)
                    )
            done += 1
            if done % REPROJECT_CHUNK == 0:
                await asyncio.sleep(0)
        log.info("topology_reprojected", version=topology.version, rows=done)

    def _dead_letter(self, message: Any, error: str, reason: str) -> None:
        self.counters["dead_lettered"] += 1
        log.warning(
            "event_dead_lettered",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            error=error,
            reason=reason,
        )
        self.outputs.send(
            self.topics.dead_letter,
            message.key,
            encode_dead_letter(
                reason=reason,
                error=error,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=message.value,
                at_ms=int(time.time() * 1000),
            ),
        )

    # -- what the HTTP API reads -------------------------------------------------------------

    def row(self, sku: str) -> SkuRow | None:
        stored = self.table.get(sku.encode())
        return row_from_bytes(stored) if stored is not None else None

    def history_of(self, sku: str) -> list[dict[str, Any]] | None:
        stored = self.history.get(sku.encode())
        return None if stored is None else list(reversed(history_decoder.decode(stored)))

    def topology(self) -> Topology:
        return self.current_topology

    def other_workers(self) -> list[str]:
        own = self.settings.http_url
        return sorted({url for url in self._partition_owners().values() if url != own})

    def owner_of(self, sku: str) -> str | None:
        """The HTTP URL of the worker that owns the SKU's partition, or None when it is this
        worker (or the assignment is not known yet: then this worker answers)."""
        url = self._partition_owners().get(
            murmur2_partition(sku.encode(), self.settings.partitions)
        )
        return None if url is None or url == self.settings.http_url else url

    def _partition_owners(self) -> dict[int, str]:
        """Partition -> owning worker's URL, rebuilt only when the assignor publishes a new
        distribution (it replaces the mapping on every rebalance): lookups stay O(1)."""
        distribution = self.app.router.tables_metadata()
        if distribution is not self._owners_source:
            changelog = self.settings.topics.atp_changelog
            self._owners = {
                partition: str(url).rstrip("/")
                for url, topics in distribution.items()
                for partition in topics.get(changelog, ())
            }
            self._owners_source = distribution
        return self._owners

    def reservation_reply(self, request_id: str) -> ReservationReply | None:
        """The recorded answer to a request (a RESERVE's request id is its reservation id)."""
        return self._indexed(ANSWER_PREFIX + request_id.encode())

    def reservation_end(self, reservation_id: str) -> ReservationReply | None:
        """How a hold ended: confirmed, released or expired."""
        return self._indexed(ENDED_PREFIX + reservation_id.encode())

    def _indexed(self, key: bytes) -> ReservationReply | None:
        stored = self.reservation_index.get(key)
        return None if stored is None else reply_from_record(decode(stored)[1])

    def health(self) -> dict[str, Any]:
        app = self.app
        assigned = (
            sorted(
                tp.partition
                for tp in app.consumer.assignment()
                if tp.topic == self.settings.topics.stock_events
            )
            if app.consumer
            else []
        )
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
        ready = bool(assigned) and recovered and not app.rebalancing
        return {
            "ready": ready,
            "partitions": assigned,
            "recovered": recovered,
            "rebalancing": app.rebalancing,
            "topology_version": self.current_topology.version,
            **self.counters,
        }
