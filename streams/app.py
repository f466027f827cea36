"""The stocksync worker: one faust agent folds stock and sale events into the ATP table.

channel producer -> stock/sale topics -> fold_events agent -> atp table (rocksdict + changelog)
                                                          -> channel-atp projection topic
                                                          -> dead-letter topic (bad input)
The agent only decodes, calls stocksync.domain.fold.apply_event and publishes the effects.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import faust
import structlog
from aiokafka.partitioner import murmur2
from faust.types import EventT, StreamT

from stocksync.codec.avro import Undecodable
from stocksync.codec.events import decode_event
from stocksync.codec.outputs import encode_dead_letter, encode_projection, projection_key
from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.codec.schemas import UnknownSchema
from stocksync.config import Settings
from stocksync.domain.effects import ChannelQuantityChanged, OversellDetected
from stocksync.domain.events import InvalidEvent, InventoryEvent
from stocksync.domain.fold import apply_event, published_quantities
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology
from stocksync.topics import ATP_TABLE

log = structlog.get_logger("stocksync.worker")

MB = 1024 * 1024


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
        self.counters = {"applied": 0, "duplicates": 0, "dead_lettered": 0, "oversells": 0}
        topics = settings.topics
        self.app = faust.App(
            settings.app_id,
            broker=f"kafka://{settings.bootstrap_servers}",
            store="rocksdb://",  # driver chosen per table below: rocksdict
            datadir=str(settings.data_dir),
            # faust's own web server (and its /table endpoints that expose data) stays off;
            # stocksync serves its API with aiohttp (streams.http_service).
            web_enabled=False,
            # Advertised to the other workers through the assignor: where this worker's
            # HTTP API answers for the keys it owns.
            canonical_url=f"http://{settings.http_host}:{settings.http_port}",
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
        )
        self.app.conf.table_key_index_size = 100_000
        self.events_topic = self.app.topic(
            *topics.event_topics,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )
        self.projection_topic = self.app.topic(
            topics.channel_atp, key_serializer="raw", value_serializer="raw"
        )
        self.dead_letter_topic = self.app.topic(
            topics.dead_letter, key_serializer="raw", value_serializer="raw"
        )
        self.table = self.app.Table(
            ATP_TABLE,
            # bytes in, bytes out: faust picks the raw codec; rows are encoded by codec.rows.
            key_type=bytes,
            value_type=bytes,
            partitions=settings.partitions,
            options={
                "driver": "rocksdict",
                # faust's default is a 2 GiB block cache per partition.
                "block_cache_size": settings.rocksdb_cache_mb * MB,
                "block_cache_compressed_size": 8 * MB,
                "write_buffer_size": 16 * MB,
            },
        )
        self.app.agent(self.events_topic, name="fold_events")(self.fold_events)

    # -- the agent ---------------------------------------------------------------------------

    async def fold_events(self, stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            await self.process(event)

    async def process(self, event: EventT[bytes]) -> None:
        message = event.message
        try:
            inventory_event = self._decode(message)
            key = message.key or b""
            stored = self.table.get(key)
            row = row_from_bytes(stored) if stored is not None else None
            result = apply_event(row, inventory_event, self.current_topology)
            if result.applied:
                self.table[key] = row_to_bytes(result.row)
                self.counters["applied"] += 1
                effects: Sequence[Any] = result.effects
            else:
                effects = self._repair_after_duplicate(key, stored, result.row, inventory_event)
            for effect in effects:
                await self._publish(effect)
        except Rejected as rejected:
            await self._dead_letter(message, rejected.error, rejected.reason)
        except Exception as exc:
            # faust would ack and skip the event; keep it, with the reason, instead.
            log.exception("event_failed", topic=message.topic, offset=message.offset)
            await self._dead_letter(message, "internal", f"worker error: {exc!r}")

    def _repair_after_duplicate(
        self, key: bytes, stored: bytes | None, row: SkuRow, event: InventoryEvent
    ) -> list[Any]:
        # A duplicate is usually a redelivery after a crash: the changelog record and the
        # projections this event caused may have died in the producer buffer with the old
        # process. Sending the row and the published quantities again is idempotent and closes
        # that gap before the source offset is committed (faust flushes the producer first).
        self.counters["duplicates"] += 1
        if stored is not None:
            self.table[key] = stored
        return published_quantities(row, self.current_topology.channels_for(event.location))

    def _decode(self, message: Any) -> InventoryEvent:
        key: bytes | None = message.key
        try:
            inventory_event = decode_event(message.value)
        except Undecodable as exc:
            raise Rejected("undecodable", str(exc)) from None
        except UnknownSchema as exc:
            raise Rejected("unknown_schema", str(exc)) from None
        except InvalidEvent as exc:
            raise Rejected("invalid", str(exc)) from None
        if key != inventory_event.sku.encode():
            raise Rejected(
                "key_mismatch",
                f"message key {key!r} is not the event's sku {inventory_event.sku!r}; "
                f"key every event by its SKU",
            )
        expected = (murmur2(key) & 0x7FFFFFFF) % self.settings.partitions
        if message.partition != expected:
            raise Rejected(
                "wrong_partition",
                f"SKU {inventory_event.sku!r} arrived on partition {message.partition}, "
                f"murmur2 places it on {expected}: set partitioner=murmur2_random on the "
                f"producer",
            )
        return inventory_event

    async def _publish(self, effect: Any) -> None:
        if isinstance(effect, ChannelQuantityChanged):
            await self.projection_topic.send(
                key=projection_key(effect.channel, effect.sku), value=encode_projection(effect)
            )
        elif isinstance(effect, OversellDetected):
            self.counters["oversells"] += 1
            log.warning(
                "oversell_detected",
                sku=effect.sku,
                location=effect.location,
                source=effect.source,
                units=effect.units,
                event_id=effect.event_id,
            )

    async def _dead_letter(self, message: Any, error: str, reason: str) -> None:
        self.counters["dead_lettered"] += 1
        log.warning(
            "event_dead_lettered",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            error=error,
            reason=reason,
        )
        await self.dead_letter_topic.send(
            key=message.key,
            value=encode_dead_letter(
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

    def topology(self) -> Topology:
        return self.current_topology

    def health(self) -> dict[str, Any]:
        app = self.app
        assigned = sorted(
            tp.partition
            for tp in app.consumer.assignment()
            if tp.topic == self.settings.topics.stock_events
        ) if app.consumer else []
        recovered = app.tables.recovery.completed.is_set()
        ready = bool(assigned) and recovered and not app.rebalancing
        return {
            "ready": ready,
            "partitions": assigned,
            "recovered": recovered,
            "rebalancing": app.rebalancing,
            "topology_version": self.current_topology.version,
            **self.counters,
        }
