"""Everything the worker writes to Kafka from a batch (table changelogs, projections, alerts,
replies, dead letters), sent with librdkafka: faust's producer costs about a hundred
microseconds of Python per record, librdkafka a couple.

The batch fold's OutputSink. Nothing is lost: the records of one take form a DeliveryGroup,
and the worker acks the take's input (so faust may commit it) only once Kafka acknowledged
every record of its group. Groups are waited for in the order they were sealed, so the next
take can be folded while the previous one's records are still on their way.
Table changelogs go this way too, not through faust's producer: faust flushes its producer
before committing, but that flush gives up after 0.1 s without progress
(`ProducerBuffer.flush_atmost`), so under load it committed input offsets past changelog
records still in its buffer, and a SIGKILL then lost table changes for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog
from confluent_kafka import KafkaError, Message

from stocksync.adapters.kafka import clients
from stocksync.codec.outputs import Headers
from stocksync.config import Settings
from stocksync.service.ports import Table

FLUSH_REPORT_S = 10.0
PUMP_S = 0.001  # how often delivery reports are served while a group is waiting for them
QUEUE_FULL_WAIT_S = 0.005

log = structlog.get_logger("stocksync.outputs")


class OutputsNotDelivered(RuntimeError):
    """Kafka refused records for good (after librdkafka's own retries): the worker stops
    before the batch is acknowledged, so a restart folds it again."""


class DeliveryGroup:
    """The records sent for one take: complete once Kafka answered for every one of them.
    Counted on the event loop's thread: delivery reports are served there (Outputs.serve)."""

    __slots__ = ("_done", "answered", "changelog_offsets", "failures", "sealed", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.answered = 0
        self.sealed = False
        self.failures: list[str] = []
        # (changelog topic, partition) -> offset of its newest acknowledged record
        self.changelog_offsets: dict[tuple[str, int], int] = {}
        self._done: asyncio.Future[None] | None = None

    @property
    def complete(self) -> bool:
        return self.sealed and self.answered == self.sent

    def seal(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        self._done = loop.create_future()
        self.sealed = True
        if self.answered == self.sent:
            self._done.set_result(None)
        return self._done

    def on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.failures.append(str(err))
        self.answered += 1
        if self.sealed and self.answered == self.sent:
            self._signal()

    def on_changelog_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            offset, topic, partition = msg.offset(), msg.topic(), msg.partition()
            if offset is not None and topic is not None and partition is not None:
                key = (topic, partition)
                if offset > self.changelog_offsets.get(key, -1):
                    self.changelog_offsets[key] = offset
        self.on_delivery(err, msg)

    def _signal(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)


class Outputs:
    def __init__(self, settings: Settings, changelogs: Mapping[Table, str]) -> None:
        self._changelogs = dict(changelogs)
        self._producer = clients.producer(settings, f"{settings.app_id}-outputs", linger_ms=1)
        self._group = DeliveryGroup()
        # Delivery reports are served on the event loop's thread, between folds and every
        # PUMP_S while a group waits: one Python callback per record, which on a thread of its
        # own contended for the GIL with the fold (a third of the worker's throughput).
        self._waiting = 0
        self._pump: asyncio.TimerHandle | None = None

    def serve(self) -> None:
        """Serve the delivery reports that have arrived (never blocks)."""
        self._producer.poll(0)

    def _pump_reports(self) -> None:
        self._pump = None
        self.serve()
        if self._waiting:
            self._pump = asyncio.get_running_loop().call_later(PUMP_S, self._pump_reports)

    def _done_waiting(self, _done: object) -> None:
        self._waiting -= 1

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers | None = None,
    ) -> None:
        group = self._group
        while True:
            try:
                self._producer.produce(
                    topic, key=key, value=value, headers=headers, on_delivery=group.on_delivery
                )
                group.sent += 1
                return
            except BufferError:
                self._queue_full()

    def send_changelog(self, table: Table, partition: int, key: bytes, value: bytes) -> None:
        """A table change, on the changelog partition of the input partition it came from."""
        topic = self._changelogs[table]
        group = self._group
        while True:
            try:
                self._producer.produce(
                    topic,
                    key=key,
                    value=value,
                    partition=partition,
                    on_delivery=group.on_changelog_delivery,
                )
                group.sent += 1
                return
            except BufferError:
                self._queue_full()

    def _queue_full(self) -> None:
        # librdkafka's queue is full: it frees up as acknowledgements arrive.
        self._producer.poll(QUEUE_FULL_WAIT_S)

    def seal(self) -> tuple[DeliveryGroup, asyncio.Future[None]]:
        """End the current group (the records of one take) and start the next; the future is
        done once Kafka answered for every record of the group (see `settle`)."""
        group, self._group = self._group, DeliveryGroup()
        loop = asyncio.get_running_loop()
        done = group.seal(loop)
        if not done.done():
            self._waiting += 1
            done.add_done_callback(self._done_waiting)
            if self._pump is None:
                self._pump = loop.call_later(PUMP_S, self._pump_reports)
        return group, done

    async def wait(self, group: DeliveryGroup, done: asyncio.Future[None]) -> None:
        """Wait until Kafka answered for every record of the group. While Kafka is unreachable
        this keeps waiting (librdkafka keeps retrying), saying so every FLUSH_REPORT_S."""
        waited = 0.0
        while not done.done():
            try:
                await asyncio.wait_for(asyncio.shield(done), FLUSH_REPORT_S)
            except TimeoutError:
                waited += FLUSH_REPORT_S
                log.warning("outputs_waiting", queued=len(self._producer), seconds=waited)
        settle(group)

    def delivered_now(self, timeout: float) -> bool:
        """Wait on this thread, at most `timeout` seconds, until everything sent so far is
        answered (for a worker that is stopping). False if records are still waiting; records
        Kafka refused for good raise OutputsNotDelivered (see `settle`)."""
        self._producer.flush(timeout)
        return len(self._producer) == 0


def settle(group: DeliveryGroup) -> None:
    """A complete group is delivered, unless Kafka refused records of it for good."""
    if group.failures:
        raise OutputsNotDelivered(
            f"{len(group.failures)} record(s) refused, first: {group.failures[:3]}"
        )
