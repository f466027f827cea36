"""The connector's Kafka clients: how they are configured, and producing under backpressure.

One idempotent producer writes both the ledger and drift alerts; one consumer reads the
projection. Ledger and alert writers take anything shaped like a producer (`Producing`), so
they are tested without a broker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from confluent_kafka import Consumer, KafkaError, Message, Producer

from stocksync.adapters.kafka import clients
from stocksync.codec.outputs import Headers
from stocksync.config import Settings
from stocksync.connectors.settings import ConnectorSettings

DeliveryCallback = Callable[[KafkaError | None, Message], None]


class Producing(Protocol):
    """The part of confluent_kafka.Producer the connector uses."""

    def produce(
        self,
        topic: str,
        value: bytes | None = ...,
        key: bytes | None = ...,
        *,
        on_delivery: DeliveryCallback | None = ...,
        headers: Headers | None = ...,
    ) -> None: ...

    def poll(self, timeout: float = ...) -> int: ...

    def flush(self, timeout: float = ...) -> int: ...


def client_id(config: ConnectorSettings) -> str:
    return f"stocksync-connector-{config.channel}"


def ledger_and_alerts_producer(settings: Settings, config: ConnectorSettings) -> Producer:
    return clients.producer(settings, client_id(config), linger_ms=5)


def projection_consumer(settings: Settings, config: ConnectorSettings) -> Consumer:
    # Offsets are committed by hand: only past values the channel acknowledged.
    return clients.group_consumer(
        settings, config.consumer_group(settings.app_id), client_id=client_id(config)
    )


def ledger_reader(settings: Settings, config: ConnectorSettings) -> Consumer:
    # Assigned, never subscribed: reads every partition from the start and commits nothing.
    return clients.log_reader(settings, f"{config.consumer_group(settings.app_id)}-ledger")


def produce(
    producer: Producing,
    topic: str,
    key: bytes,
    value: bytes,
    on_delivery: DeliveryCallback | None = None,
    headers: Headers | None = None,
) -> None:
    """Produce, waiting for room when librdkafka's local queue is full rather than failing."""
    while True:
        try:
            producer.produce(topic, key=key, value=value, on_delivery=on_delivery, headers=headers)
            return
        except BufferError:
            producer.poll(0.01)
