"""The stocksync worker: a faust app whose one agent folds stock and sale events and
reservation commands into the ATP table.

channel producer -> stock/sale/command topics -> fold_events agent -> ATP table (+ changelog)
                                                                  -> channel-atp projections
                                                                  -> alerts, replies, dead letters
faust provides the consumer group and its co-partitioning assignor, the tables' RocksDB stores,
their recovery from the changelogs, and timers. The agent receives one message per fetched
batch of a partition (streams.batch_transport) and hands the records to the service layer's
batch fold (stocksync.service.batch_fold), over the RocksDB row store and the librdkafka
output sink.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import os
import time
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, NoReturn

import structlog
from faust.types import TP, EventT, StreamT

from stocksync.adapters.kafka.outputs import Outputs, OutputsNotDelivered
from stocksync.adapters.store.rocksdb import RocksRowStore
from stocksync.codec.avro import decode
from stocksync.codec.outputs import encode_alert, encode_projection, projection_key
from stocksync.codec.reservations import encode_command, reply_from_record
from stocksync.codec.rows import holds_from_bytes, row_from_bytes
from stocksync.config import Settings
from stocksync.domain.effects import ChannelQuantityChanged, StockLevelCrossed
from stocksync.domain.fold import project_channels
from stocksync.domain.reservations import CommandKind, ReservationCommand, ReservationReply
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology
from stocksync.service.admission import admission_rules, murmur2_partition
from stocksync.service.batch_fold import (
    ANSWER_PREFIX,
    COUNTERS,
    ENDED_PREFIX,
    FoldContext,
    fold_batch,
)
from stocksync.service.history import HistoryPage, HistoryRetention, read_history
from stocksync.service.ports import Table
from stocksync.service.watchdog import Watchdog
from stocksync.topics import ATP_TABLE, HISTORY_TABLE, RESERVATION_INDEX_TABLE
from streams.batch_transport import SCHEME, BatchingApp
from streams.faust_fixes import keep_queued_input_on_resume
from streams.watermarks import HighWatermarks

log = structlog.get_logger("stocksync.worker")

MB = 1024 * 1024
REPROJECT_CHUNK = 500  # rows re-projected between yields to the event loop
EXPIRY_CHECK_SECONDS = 1.0
WATCHDOG_SECONDS = 1.0
MAX_PARTITION_BATCHES = 64  # fetched partition batches folded together (one delivery wait)
DEFAULT_HISTORY_PAGE = 20
FAUST_INTERNAL_KEY_PREFIX = b"__faust"
EXIT_OUTPUTS_LOST = 75  # EX_TEMPFAIL: restart the worker; nothing past its last commit is lost
EXIT_FOLD_FAILED = 70  # EX_SOFTWARE: the fold engine failed; nothing of the batch was acked


def fail_stop(event: str, error: str, exit_code: int) -> NoReturn:
    """Stop the process now, before faust can ack anything more: a restart folds again from
    the last committed offset. (Raising would not do: faust acks a take when the agent's
    generator is closed, and restarts a crashed agent.)"""
    log.critical(event, error=error, exit_code=exit_code)
    os._exit(exit_code)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("reprojection_failed", error=repr(task.exception()))


class Worker:
    """Holds the faust app, the fold's context and ports, and the pieces the HTTP API reads."""

    def __init__(self, settings: Settings, topology: Topology) -> None:
        self.settings = settings
        self._reprojection: asyncio.Future[None] | None = None
        self._gc_frozen = False
        topics = settings.topics
        self.topics = topics
        self.counters: dict[str, int] = {**dict.fromkeys(COUNTERS, 0), "input_gaps": 0}
        # (expires_at, sku, reservation id) of holds this worker owns; EXPIRE is written when due
        self.expiry_queue: list[tuple[int, str, str]] = []
        self.fold = FoldContext(
            topology=topology,
            rules=admission_rules(topics, settings.partitions),
            topics=topics,
            retention=HistoryRetention(
                per_sku=settings.history_per_sku, max_age_days=settings.history_max_age_days
            ),
            counters=self.counters,
            on_hold=lambda at, sku, rid: heapq.heappush(self.expiry_queue, (at, sku, rid)),
            clock_ms=lambda: int(time.time() * 1000),
        )
        # (topic, partition) -> (consumer generation, next offset expected): see _check_gap
        self._next_offsets: dict[tuple[str, int], tuple[int, int]] = {}
        # (topic, partition) -> the offset after the last record folded and delivered
        self.folded: dict[tuple[str, int], int] = {}
        self.assigned_inputs: frozenset[tuple[str, int]] = frozenset()  # read by a thread
        self.watermarks = HighWatermarks(settings, lambda: self.assigned_inputs)
        self.watchdog = Watchdog(settings.stall_after_s, settings.stall_fail_after_s)
        self._owners: dict[int, str] = {}
        self._owners_source: object = None
        # (events, seconds folding, age in seconds of the newest event) after each batch
        self.batch_observers: list[Callable[[int, float, float | None], None]] = []
        self.app = BatchingApp(
            settings.app_id,
            broker=f"{SCHEME}://{settings.bootstrap_servers}",
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
            # One fetch: up to batch_max records over the assigned partitions, each
            # partition's records handed to the agent as one message.
            broker_max_poll_records=settings.batch_max,
            consumer_max_fetch_size=8 * MB,
            stream_buffer_maxsize=1_000,
            producer_max_batch_size=512 * 1024,
        )
        self.app.conf.table_key_index_size = 100_000
        keep_queued_input_on_resume(self.app)
        self.app.batched_topics = frozenset(topics.input_topics)
        self.events_topic = self.app.topic(
            *topics.input_topics,
            key_type=bytes,
            value_type=None,
            key_serializer="raw",
            value_serializer="stocksync-batch",
            partitions=settings.partitions,
        )
        self.commands_topic = self.app.topic(
            topics.reservation_commands, key_serializer="raw", value_serializer="raw"
        )
        self.table = self._bytes_table(ATP_TABLE, cache_mb=settings.rocksdb_cache_mb)
        self.history = self._bytes_table(HISTORY_TABLE, cache_mb=8)
        self.reservation_index = self._bytes_table(RESERVATION_INDEX_TABLE, cache_mb=8)
        tables = {
            Table.ROWS: self.table,
            Table.HISTORY: self.history,
            Table.INDEX: self.reservation_index,
        }
        self._changelog_topics = {
            name: table.changelog_topic.get_topic_name() for name, table in tables.items()
        }
        self._stores = {self._changelog_topics[name]: t.data for name, t in tables.items()}
        self.outputs = Outputs(settings, self._changelog_topics)
        self.store = RocksRowStore(
            {name: _partition_databases(table) for name, table in tables.items()}
        )
        self.app.agent(self.events_topic, name="fold_events")(self.fold_events)
        self.app.timer(EXPIRY_CHECK_SECONDS)(self.expire_due_holds)
        self.app.timer(WATCHDOG_SECONDS)(self.watch_progress)

    @property
    def current_topology(self) -> Topology:
        return self.fold.topology

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

    async def fold_events(self, stream: StreamT[Any]) -> None:
        # Each event is one fetched batch of one input partition (streams.batch_transport).
        # faust acks the events taken when the next take is asked for, after this loop's body
        # returned: offsets never pass a record still being folded, nor a table change whose
        # changelog record is not on the broker.
        takes = stream.take_events(  # type: ignore[attr-defined]
            MAX_PARTITION_BATCHES, within=self.settings.batch_within_s
        )
        async for take in takes:
            if not self._gc_frozen:
                # Start-up is over (imports, faust's services, recovery): nothing allocated so
                # far will become garbage, so the collector need not scan it again.
                gc.freeze()
                self._gc_frozen = True
            started = time.perf_counter()
            records = self._admitted_batches(take)
            try:
                fold_batch(chain.from_iterable(records), self.fold, self.store, self.outputs)
            except Exception as exc:
                # The engine itself failed (a row it cannot read, a store that refuses a
                # write): nothing of this take may be acked, and going on would skip it.
                fail_stop("fold_failed", repr(exc), EXIT_FOLD_FAILED)
            if self.batch_observers:
                elapsed = time.perf_counter() - started
                newest = max((r[-1].timestamp or 0 for r in records), default=0) / 1000
                age = time.time() - newest if newest else None
                for observe in self.batch_observers:
                    observe(sum(map(len, records)), elapsed, age)
            # Before faust may ack this take (when the next one is asked for): every table
            # change, projection, alert, reply and dead letter it caused is on the broker.
            try:
                await self.outputs.delivered()
            except OutputsNotDelivered as exc:
                # Kafka refused records for good. Leaving the loop would not help: faust acks
                # a take when its generator is closed, so it would be committed without its
                # outputs. Stop at once instead; a restart folds it again.
                fail_stop("outputs_not_delivered", str(exc), EXIT_OUTPUTS_LOST)
            self._persisted(self.outputs.take_changelog_offsets())
            for take_event in take:
                message = take_event.message
                self.folded[(message.topic, message.partition)] = message.offset + 1

    def _admitted_batches(self, take: Sequence[EventT[Any]]) -> list[tuple[Any, ...]]:
        """The record batches of a take that belong to this worker's current assignment."""
        generation = self.app.consumer_generation_id
        out = []
        for event in take:
            message = event.message
            if message.generation_id != generation:
                self._leave_for_new_owner(message)
                continue
            records: tuple[Any, ...] = event.value  # type: ignore[assignment]
            self._check_gap(message, records[0].offset)
            out.append(records)
        return out

    def _persisted(self, offsets: dict[tuple[str, int], int]) -> None:
        """Tell each partition's RocksDB how far the changelog is known to be in it, as faust
        does for its own changelog writes: a restart then reads only the changelog after it."""
        for (topic, partition), offset in offsets.items():
            store = self._stores[topic]
            # A partition revoked meanwhile has its database closed: leave it closed.
            if partition in store._dbs:
                store.set_persisted_offset(TP(topic, partition), offset)

    def _leave_for_new_owner(self, message: Any) -> None:
        """A batch fetched before a rebalance that reached the agent after it (faust's take
        buffer can hold one): its partition may belong to another worker now, whose table and
        changelog this one must not write. It is not folded and, unlike what faust would do,
        not acked either: it is fetched again from the committed offset by whoever owns it."""
        message.acked = True  # faust's ack of the take then leaves its offset alone
        self.app.consumer.unacked.discard(message)
        log.info(
            "stale_message_left",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )

    def _check_gap(self, message: Any, first_offset: int) -> None:
        """Raise the alarm when input skips offsets: within one assignment a partition's
        batches arrive in offset order, each starting right after the last (earlier ones come
        again after a seek back; the producers write no transactions, whose markers would take
        offsets). A jump means faust dropped messages on the way to the agent, as its recovery
        once did (streams/faust_fixes.py): the table then misses what they carried."""
        tp = (message.topic, message.partition)
        generation = message.generation_id
        known = self._next_offsets.get(tp)
        if known is not None and known[0] == generation:
            expected: int | None = known[1]
        else:
            # The first batch of this assignment starts at the committed offset (the next to
            # read) when faust knows it; before the partition's first commit it cannot be told.
            committed = self.app.consumer._committed_offset  # type: ignore[attr-defined]
            expected = committed.get(message.tp)
        if expected is not None and first_offset > expected:
            self.counters["input_gaps"] += 1
            log.error(
                "input_gap",
                topic=message.topic,
                partition=message.partition,
                expected=expected,
                received=first_offset,
                missing=first_offset - expected,
            )
        self._next_offsets[tp] = (generation, message.offset + 1)

    # -- progress --------------------------------------------------------------------------

    def _serving(self) -> tuple[list[int], bool, bool]:
        """(assigned partitions of the stock topic, recovered, assigned and recovered and not
        rebalancing)."""
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
        return assigned, recovered, bool(assigned) and recovered and not app.rebalancing

    def input_positions(self) -> list[tuple[str, int, int | None, int | None]]:
        """(topic, partition, broker high watermark, next offset to fold) of every input
        partition this worker owns."""
        committed = self.app.consumer._committed_offset  # type: ignore[attr-defined]
        highs = self.watermarks.highs
        out = []
        for topic, partition in sorted(self.assigned_inputs):
            folded = self.folded.get((topic, partition))
            known = committed.get(TP(topic, partition))
            position = max((p for p in (folded, known) if p is not None), default=None)
            out.append((topic, partition, highs.get((topic, partition)), position))
        return out

    async def watch_progress(self) -> None:
        """Every second: is input waiting that nothing folds? (service.watchdog)"""
        consumer = self.app.consumer
        inputs = frozenset(self.topics.input_topics)
        self.assigned_inputs = frozenset(
            (tp.topic, tp.partition) for tp in consumer.assignment() if tp.topic in inputs
        )
        if not self._serving()[2]:
            self.watchdog.reset()
            return
        waiting = any(
            high is not None and (position or 0) < high
            for _topic, _partition, high, position in self.input_positions()
        )
        was = self.watchdog.verdict
        verdict = self.watchdog.observe(time.monotonic(), waiting, sum(self.folded.values()))
        if verdict.stalled and not was.stalled:
            log.error("fold_stalled", seconds=verdict.stalled_for_s, ready=False)
        if verdict.dead and not was.dead:
            log.critical("fold_dead", seconds=verdict.stalled_for_s, live=False)
        if was.stalled and not verdict.stalled:
            log.info("fold_resumed")

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
        self.fold.topology = topology
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
                    self.fold.counters["alerts"] += 1
                    self.outputs.send(
                        self.topics.alerts, effect.sku.encode(), encode_alert(effect, row.revision)
                    )
            done += 1
            if done % REPROJECT_CHUNK == 0:
                await asyncio.sleep(0)
        log.info("topology_reprojected", version=topology.version, rows=done)

    # -- what the HTTP API reads -------------------------------------------------------------

    def row(self, sku: str) -> SkuRow | None:
        key = sku.encode()
        stored = self.store.get(Table.ROWS, murmur2_partition(key, self.settings.partitions), key)
        return row_from_bytes(stored) if stored is not None else None

    def history_of(
        self, sku: str, limit: int = DEFAULT_HISTORY_PAGE, before: int | None = None
    ) -> HistoryPage | None:
        """A page of the SKU's audit trail, newest first; None for an unknown SKU."""
        row = self.row(sku)
        if row is None:
            return None
        key = sku.encode()
        partition = murmur2_partition(key, self.settings.partitions)
        return read_history(
            lambda k: self.store.get(Table.HISTORY, partition, k),
            key,
            row.revision,
            row.last_event_at,
            self.fold.retention,
            self.fold.topology,
            limit,
            before,
        )

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
        # index keys are request or reservation ids, not SKUs: any partition may hold one
        stored = self.reservation_index.get(key)
        return None if stored is None else reply_from_record(decode(stored)[1])

    def health(self) -> dict[str, Any]:
        assigned, recovered, serving = self._serving()
        verdict = self.watchdog.verdict
        return {
            "ready": serving and not verdict.stalled,
            "live": not verdict.dead,
            "stalled": verdict.stalled,
            "stalled_for_s": verdict.stalled_for_s,
            "partitions": assigned,
            "recovered": recovered,
            "rebalancing": self.app.rebalancing,
            "topology_version": self.current_topology.version,
            **self.counters,
        }


def _partition_databases(table: Any) -> Callable[[int], Any]:
    """A partition's RocksDB database of a faust table: for a partition this worker owns, the
    one faust opened and recovered; for another (an HTTP read while the assignment is not
    known), nothing is opened: an empty stand-in answers."""
    store = table.data

    def database(partition: int) -> Any:
        db = store._dbs.get(partition)
        if db is None:
            return _EMPTY
        return db

    return database


class _Empty:
    def get(self, _key: bytes) -> None:
        return None

    def write(self, _batch: Any) -> None:
        raise RuntimeError("a write to a partition this worker has not opened")


_EMPTY = _Empty()
