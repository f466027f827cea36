"""The worker's outgoing records that are not table changelogs (projections, alerts, replies,
dead letters), sent with librdkafka: faust's producer costs about a hundred microseconds of
Python per record, librdkafka a couple.

Nothing is lost: fold_events waits for every record of a batch to be acknowledged before it
asks faust for the next batch, and faust acks (then commits) a batch's offsets only then.
"""

from __future__ import annotations

import asyncio

from confluent_kafka import KafkaError, Message, Producer

from stocksync.config import Settings


class OutputsNotDelivered(RuntimeError):
    """Kafka refused records; the batch is not acknowledged, so it will be folded again."""


class Outputs:
    def __init__(self, settings: Settings) -> None:
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

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._failures.append(str(err))

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=self._delivered)
                return
            except BufferError:
                self._producer.poll(0.01)

    async def delivered(self) -> None:
        """Wait, off the event loop, until everything sent so far is acknowledged."""
        if len(self._producer) == 0 and not self._failures:
            return
        await asyncio.get_running_loop().run_in_executor(None, self._producer.flush, 60.0)
        if len(self._producer) or self._failures:
            failures, self._failures = self._failures, []
            raise OutputsNotDelivered(
                f"{len(self._producer)} record(s) still queued, failures: {failures[:3]}"
            )
