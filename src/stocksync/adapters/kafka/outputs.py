"""Everything the worker writes to Kafka from a batch (table changelogs, projections, alerts,
replies, dead letters), sent with librdkafka: faust's producer costs about a hundred
microseconds of Python per record, librdkafka a couple.

The batch fold's OutputSink. Nothing is lost: the worker waits for every record of a batch to
be acknowledged before it asks faust for the next batch, and faust acks (then commits) a
batch's offsets only then.
Table changelogs go this way too, not through faust's producer: faust flushes its producer
before committing, but that flush gives up after 0.1 s without progress
(`ProducerBuffer.flush_atmost`), so under load it committed input offsets past changelog
records still in its buffer, and a SIGKILL then lost table changes for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog
from confluent_kafka import KafkaError, Message, Producer

from stocksync.codec.outputs import Headers
from stocksync.config import Settings
from stocksync.service.ports import Table

FLUSH_REPORT_S = 10.0

log = structlog.get_logger("stocksync.outputs")


class OutputsNotDelivered(RuntimeError):
    """Kafka refused records for good (after librdkafka's own retries): the worker stops
    before the batch is acknowledged, so a restart folds it again."""


class Outputs:
    def __init__(self, settings: Settings, changelogs: Mapping[Table, str]) -> None:
        self._changelogs = dict(changelogs)
        self._producer = Producer(
            {
                **settings.librdkafka_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 1,
                "partitioner": "murmur2_random",
                "client.id": f"{settings.app_id}-outputs",
            }
        )
        self._failures: list[str] = []
        # (changelog topic, partition) -> offset of its newest acknowledged record
        self._changelog_offsets: dict[tuple[str, int], int] = {}

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._failures.append(str(err))

    def _changelog_delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append(str(err))
            return
        offset = msg.offset()
        topic = msg.topic()
        partition = msg.partition()
        if offset is not None and topic is not None and partition is not None:
            key = (topic, partition)
            if offset > self._changelog_offsets.get(key, -1):
                self._changelog_offsets[key] = offset

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers | None = None,
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    topic, key=key, value=value, headers=headers, on_delivery=self._delivered
                )
                return
            except BufferError:
                self._producer.poll(0.01)

    def send_changelog(self, table: Table, partition: int, key: bytes, value: bytes) -> None:
        """A table change, on the changelog partition of the input partition it came from."""
        topic = self._changelogs[table]
        while True:
            try:
                self._producer.produce(
                    topic,
                    key=key,
                    value=value,
                    partition=partition,
                    on_delivery=self._changelog_delivered,
                )
                return
            except BufferError:
                self._producer.poll(0.01)

    async def delivered(self) -> None:
        """Wait, off the event loop, until everything sent so far is acknowledged. While Kafka
        is unreachable this keeps waiting (librdkafka keeps retrying), saying so every
        FLUSH_REPORT_S; records Kafka refused for good raise OutputsNotDelivered."""
        loop = asyncio.get_running_loop()
        waited = 0.0
        while len(self._producer) and not self._failures:
            await loop.run_in_executor(None, self._producer.flush, FLUSH_REPORT_S)
            if len(self._producer):
                waited += FLUSH_REPORT_S
                log.warning("outputs_waiting", queued=len(self._producer), seconds=waited)
        if self._failures:
            failures, self._failures = self._failures, []
            raise OutputsNotDelivered(f"{len(failures)} record(s) refused, first: {failures[:3]}")

    def delivered_now(self, timeout: float) -> bool:
        """Wait on this thread, at most `timeout` seconds, until everything sent so far is
        acknowledged (for a worker that is stopping). False if records are still waiting;
        records Kafka refused for good raise OutputsNotDelivered."""
        self._producer.flush(timeout)
        if self._failures:
            failures, self._failures = self._failures, []
            raise OutputsNotDelivered(f"{len(failures)} record(s) refused, first: {failures[:3]}")
        return len(self._producer) == 0

    def take_changelog_offsets(self) -> dict[tuple[str, int], int]:
        """The newest acknowledged changelog offset per partition since the last call."""
        offsets, self._changelog_offsets = self._changelog_offsets, {}
        return offsets
