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
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, NoReturn

import structlog
from faust.types import TP, EventT, StreamT

from stocksync.adapters.kafka.outputs import DeliveryGroup, Outputs, OutputsNotDelivered, settle
from stocksync.adapters.store.rocksdb import RocksRowStore
from stocksync.codec.outputs import encode_alert, encode_projection, projection_key
from stocksync.codec.rows import row_from_bytes
from stocksync.config import Settings
from stocksync.domain.effects import ChannelQuantityChanged, StockLevelCrossed
from stocksync.domain.fold import project_channels
from stocksync.domain.topology import Topology
from stocksync.service.admission import admission_rules
from stocksync.service.batch_fold import COUNTERS, FoldContext, fold_batch
from stocksync.service.history import HistoryRetention
from stocksync.service.ports import Table
from stocksync.service.queries import TableQueries
from stocksync.topics import ATP_TABLE, HISTORY_TABLE, RESERVATION_INDEX_TABLE

from .batch_transport import SCHEME, BatchingApp
from .credentials import broker_credentials
from .expiry import HoldExpiry
from .faust_fixes import keep_queued_input_on_resume
from .ownership import PartitionOwners
from .progress import InputProgress

log = structlog.get_logger("stocksync.worker")

MB = 1024 * 1024
REPROJECT_CHUNK = 500  # rows re-projected between yields to the event loop
EXPIRY_CHECK_SECONDS = 1.0
WATCHDOG_SECONDS = 1.0
STOP_DELIVERY_S = 30.0  # a stopping worker waits this long for a take's outputs
MAX_PARTITION_BATCHES = 64  # fetched partition batches folded together (one delivery group)
# Takes whose outputs may still be on their way while the next one is folded: the fold does
# not wait for Kafka's acknowledgements, and a slow broker still holds it back soon.
PIPELINE_DEPTH = 2
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
        # (delivery group, its future, the take) of takes folded and not yet acked, oldest first
        self._in_flight: deque[
            tuple[DeliveryGroup, asyncio.Future[None], Sequence[EventT[Any]]]
        ] = deque()
        topics = settings.topics
        self.topics = topics
        self.counters: dict[str, int] = {**dict.fromkeys(COUNTERS, 0), "input_gaps": 0}
        self.fold = FoldContext(
            topology=topology,
            rules=admission_rules(topics, settings.partitions),
            topics=topics,
            retention=HistoryRetention(
                per_sku=settings.history_per_sku, max_age_days=settings.history_max_age_days
            ),
            counters=self.counters,
            on_hold=self._hold_taken,
            clock_ms=lambda: int(time.time() * 1000),
        )
        # (events, seconds folding, age in seconds of the newest event) after each batch
        self.batch_observers: list[Callable[[int, float, float | None], None]] = []
        self.app = BatchingApp(
            settings.app_id,
            broker=f"{SCHEME}://{settings.bootstrap_servers}",
            broker_credentials=broker_credentials(settings),
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
            topic_replication_factor=settings.replication_factor,
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
        # faust opens and closes each partition's database as partitions come and go
        self.store = RocksRowStore({name: t.data._dbs for name, t in tables.items()})
        self.queries = TableQueries(
            self.store, settings.partitions, self.fold.retention, lambda: self.fold.topology
        )
        self.owners = PartitionOwners(self.app, settings)
        self.progress = InputProgress(self.app, settings, self.counters)
        self._was_serving = False  # as watch_progress last saw it, and the partitions then
        self._served: list[int] = []
        self.expiry = HoldExpiry(self.commands_topic)
        self.app.agent(self.events_topic, name="fold_events")(self.fold_events)
        self.app.timer(EXPIRY_CHECK_SECONDS)(self.expiry.expire_due)
        self.app.timer(WATCHDOG_SECONDS)(self.watch_progress)

    def _hold_taken(self, expires_at: int, sku: str, reservation_id: str) -> None:
        self.expiry.hold_taken(expires_at, sku, reservation_id)

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
        # A take is acked (so faust may commit its offsets) only once every table change,
        # projection, alert, reply and dead letter it caused is on the broker; meanwhile the
        # next take is folded. faust acks a take itself when the next one is asked for: each
        # of its messages holds one more reference until then, so faust's ack is never the last.
        takes = stream.take_events(  # type: ignore[attr-defined]
            MAX_PARTITION_BATCHES, within=self.settings.batch_within_s
        )
        try:
            async for take in takes:
                for event in take:
                    event.message.incref()
                self._fold_take(take)
                group, done = self.outputs.seal()
                self._in_flight.append((group, done, take))
                done.add_done_callback(self._settle_delivered)
                self.outputs.serve()  # reports that arrived while this take was folded
                while len(self._in_flight) > PIPELINE_DEPTH:
                    await self._wait_oldest()
        except asyncio.CancelledError:
            # The worker is stopping. faust commits acked offsets on its way out: the takes
            # still in flight are acked only once their outputs are on the broker.
            self._settle_before_stop()
            raise

    def _fold_take(self, take: Sequence[EventT[Any]]) -> None:
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

    async def _wait_oldest(self) -> None:
        group, done, _ = self._in_flight[0]
        try:
            await self.outputs.wait(group, done)
        except OutputsNotDelivered as exc:
            fail_stop("outputs_not_delivered", str(exc), EXIT_OUTPUTS_LOST)
        self._settle_delivered()

    def _settle_delivered(self, _done: object = None) -> None:
        """Ack, oldest first, every take whose outputs are all on the broker. Kafka refusing
        records for good stops the worker at once (leaving the loop would not help: faust acks
        a take when its generator is closed, so it would be committed without its outputs);
        a restart folds the take again."""
        while self._in_flight and self._in_flight[0][0].complete:
            group, _, take = self._in_flight.popleft()
            try:
                settle(group)
            except OutputsNotDelivered as exc:
                fail_stop("outputs_not_delivered", str(exc), EXIT_OUTPUTS_LOST)
            self._persisted(group.changelog_offsets)
            for event in take:
                event.ack()
            self.progress.delivered(take)

    def _settle_before_stop(self) -> None:
        if not self._in_flight:
            return
        if not self.outputs.delivered_now(STOP_DELIVERY_S):
            fail_stop(
                "outputs_not_delivered",
                f"records still unacknowledged {STOP_DELIVERY_S:.0f} s into the stop",
                EXIT_OUTPUTS_LOST,
            )
        self._settle_delivered()
        log.info("outputs_delivered_before_stop")

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
            self.progress.check_gap(message, records[0].offset)
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

    async def watch_progress(self) -> None:
        assigned, _recovered, serving = self._serving()
        # faust's and aiokafka's info lines about joins, assignments and recovery are off by
        # default (stocksync.logs): this line says when the worker starts and stops serving
        if serving != self._was_serving or (serving and assigned != self._served):
            self._was_serving, self._served = serving, assigned
            if serving:
                log.info("worker_serving", partitions=assigned)
            else:
                log.info("worker_not_serving", rebalancing=bool(self.app.rebalancing))
        self.progress.watch(serving=serving)

    # -- configuration changes ---------------------------------------------------------------

    def on_topology(self, topology: Topology) -> None:
        """A newer topology version was published (called on the event loop)."""
        previous = self.fold.topology
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
            if key.startswith(FAUST_INTERNAL_KEY_PREFIX) or self.fold.topology is not topology:
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

    # -- what the HTTP API reads besides the tables (TableQueries) --------------------------

    def topology(self) -> Topology:
        return self.fold.topology

    def health(self) -> dict[str, Any]:
        assigned, recovered, serving = self._serving()
        verdict = self.progress.verdict
        return {
            "ready": serving and not verdict.stalled,
            "live": not verdict.dead,
            "stalled": verdict.stalled,
            "stalled_for_s": verdict.stalled_for_s,
            "partitions": assigned,
            "recovered": recovered,
            "rebalancing": self.app.rebalancing,
            "topology_version": self.fold.topology.version,
            **self.counters,
        }
