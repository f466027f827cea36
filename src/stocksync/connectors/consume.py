"""Consuming the projection `<prefix>channel-atp` and committing its offsets.

Every message read is recorded in the offset tracker; a value of this channel that the ledger
does not cover yet is *held* until the channel acknowledged it (or a newer value) and the
ledger has the record. Commits therefore never pass an unacknowledged value.

All consumer calls run on one thread of their own: librdkafka blocks, the event loop must not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Literal, Protocol

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from stocksync.codec.outputs import decode_projection
from stocksync.connectors.plan import Quantity
from stocksync.connectors.state import ConnectorState

log = structlog.get_logger("stocksync.connector")

CONSUME_BATCH = 500
CONSUME_TIMEOUT_S = 0.25


class ConsumedRecord(Protocol):
    """The part of confluent_kafka.Message the consumer reads (tests pass plain objects)."""

    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def offset(self) -> int | None: ...
    def partition(self) -> int | None: ...
    def error(self) -> KafkaError | None: ...


class ProjectionSource(Protocol):
    """The part of confluent_kafka.Consumer used once it is subscribed."""

    def consume(self, num_messages: int, timeout: float) -> Sequence[ConsumedRecord]: ...
    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[False]) -> object: ...
    def close(self) -> None: ...


class ProjectionConsumer:
    def __init__(self, state: ConnectorState, channel: str, topic: str) -> None:
        self.state = state
        self.topic = topic
        self._key_prefix = f"{channel}:".encode()
        self.consumer: ProjectionSource | None = None
        self.assigned: set[int] = set()
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="connector-consumer")

    def subscribe(self, consumer: Consumer, loop: asyncio.AbstractEventLoop) -> None:
        self.consumer = consumer
        consumer.subscribe(
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=partial(self._on_revoke, loop),
        )

    # -- group membership (called by librdkafka on the consumer thread) --------------------------

    def _on_assign(self, _consumer: Consumer, parts: list[TopicPartition]) -> None:
        self.assigned.update(tp.partition for tp in parts)
        self.state.ready = True
        log.info("partitions_assigned", partitions=sorted(tp.partition for tp in parts))

    def _on_revoke(
        self, loop: asyncio.AbstractEventLoop, _consumer: Consumer, parts: list[TopicPartition]
    ) -> None:
        for tp in parts:
            self.assigned.discard(tp.partition)
            loop.call_soon_threadsafe(self.state.tracker.forget, tp.partition)
        log.info("partitions_revoked", partitions=sorted(tp.partition for tp in parts))

    # -- reading --------------------------------------------------------------------------------

    async def consume_forever(self) -> None:
        assert self.consumer is not None
        loop = asyncio.get_running_loop()
        consume = partial(self.consumer.consume, CONSUME_BATCH, CONSUME_TIMEOUT_S)
        while True:
            messages = await loop.run_in_executor(self.thread, consume)
            now = time.monotonic()
            offered = False
            for msg in messages:
                offered = self.take(msg, now) or offered
            if offered:
                self.state.wake.set()

    def take(self, msg: ConsumedRecord, now: float) -> bool:
        """Record one message; True when it gave the plan a new value to send."""
        error = msg.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer_error", error=str(error))
            return False
        tracker = self.state.tracker
        partition, offset = msg.partition() or 0, msg.offset() or 0
        key, value = msg.key(), msg.value()
        if not key or not key.startswith(self._key_prefix) or value is None:
            tracker.read(partition, offset)  # another channel's value
            return False
        try:
            change = decode_projection(value)
        except Exception as exc:
            log.error("projection_unreadable", partition=partition, offset=offset, error=repr(exc))
            tracker.read(partition, offset)
            return False
        quantity = Quantity(
            change.sku, change.quantity, change.revision, change.policy_version, change.as_of
        )
        if self.state.plan.is_settled(quantity.sku, quantity.version):
            self.state.counters["skipped_acknowledged"] += 1
            tracker.read(partition, offset)
            return False
        tracker.hold(partition, offset, quantity.sku, quantity.version)
        return self.state.plan.offer(quantity, now)

    # -- committing -----------------------------------------------------------------------------

    async def commit(self) -> None:
        """Commit the tracker's positions of the partitions this consumer still owns. Call it
        only after the ledger released what it durably recorded (LedgerWriter.flush)."""
        tracker = self.state.tracker
        positions = {p: o for p, o in tracker.to_commit().items() if p in self.assigned}
        if not positions or self.consumer is None:
            return
        offsets = [TopicPartition(self.topic, p, o) for p, o in positions.items()]
        commit = partial(self.consumer.commit, offsets=offsets, asynchronous=False)
        try:
            await asyncio.get_running_loop().run_in_executor(self.thread, commit)
        except KafkaException as exc:
            log.warning("commit_failed", error=str(exc))
            return
        tracker.committed(positions)

    async def close(self) -> None:
        if self.consumer is not None:
            await asyncio.get_running_loop().run_in_executor(self.thread, self.consumer.close)

    def shutdown_thread(self) -> None:
        self.thread.shutdown(wait=False)
