"""ChannelProducer: how a sales channel puts stock and sale events on the log.

Idempotent, acks=all, and murmur2 partitioning so that librdkafka places a SKU on the same
partition as the faust worker's own client (aiokafka) and the table changelog do.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import KafkaError, Message, Producer

from stocksync.adapters.kafka.clients import PRODUCER_GUARANTEES
from stocksync.channels.validation import validated_event
from stocksync.codec.events import encode_event
from stocksync.domain.events import STOCK_KINDS, EventKind, InventoryEvent, validate_event
from stocksync.topics import TopicNames

log = structlog.get_logger(__name__)

REQUIRED_CONFIG = dict(PRODUCER_GUARANTEES)


@dataclass(frozen=True, slots=True)
class DeliveryError:
    event_id: str
    sku: str
    error: str


class DeliveryFailed(RuntimeError):
    """Some events were not acknowledged by Kafka; they are listed so the caller can resend."""

    def __init__(self, failures: list[DeliveryError]) -> None:
        self.failures = failures
        shown = ", ".join(f"{f.event_id} ({f.error})" for f in failures[:5])
        more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
        super().__init__(f"{len(failures)} event(s) not delivered: {shown}{more}")


class ChannelProducer:
    def __init__(
        self,
        bootstrap_servers: str,
        source: str,
        topics: TopicNames | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        extra = dict(config or {})
        for key, value in REQUIRED_CONFIG.items():
            if key in extra and extra[key] != value:
                raise ValueError(
                    f"ChannelProducer config {key}={extra[key]!r} is not allowed: "
                    f"stocksync needs {key}={value!r}"
                )
        self.source = source
        self.topics = topics or TopicNames()
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "linger.ms": 2,
                "client.id": f"stocksync-channel-{source}",
                **extra,
                **REQUIRED_CONFIG,
            }
        )
        # Seeded from the clock in microseconds so it keeps increasing across restarts.
        self._seq = 0
        self._failures: list[DeliveryError] = []
        self.delivered = 0

    def next_seq(self) -> int:
        self._seq = max(self._seq + 1, time.time_ns() // 1000)
        return self._seq

    def emit(
        self,
        kind: EventKind | str,
        sku: str,
        location: str,
        quantity: int,
        *,
        reason: str | None = None,
        event_id: str | None = None,
        source_seq: int | None = None,
        occurred_at: int | None = None,
        counterpart_location: str | None = None,
        reservation_id: str | None = None,
    ) -> InventoryEvent:
        """Validate, encode and queue one event from this channel. Raises EventRejected."""
        event = validated_event(
            event_id=event_id or str(uuid.uuid4()),
            source=self.source,
            source_seq=self.next_seq() if source_seq is None else source_seq,
            sku=sku,
            location=location,
            quantity=quantity,
            occurred_at=int(time.time() * 1000) if occurred_at is None else occurred_at,
            kind=kind,
            reason=reason,
            counterpart_location=counterpart_location,
            reservation_id=reservation_id,
        )
        self.send(event)
        return event

    def send(self, event: InventoryEvent) -> None:
        """Queue an already-built event (re-sending one is safe: the fold ignores duplicates)."""
        validate_event(event)
        topics = self.topics
        source = event.source
        topic = (
            topics.stock_events_of(source)
            if event.kind in STOCK_KINDS
            else topics.sale_events_of(source)
        )
        payload = encode_event(event)

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                self.delivered += 1
            else:
                self._failures.append(DeliveryError(event.event_id, event.sku, str(err)))
                log.warning("event_delivery_failed", event_id=event.event_id, error=str(err))

        while True:
            try:
                self._producer.produce(
                    topic, key=event.sku.encode(), value=payload, on_delivery=delivered
                )
                break
            except BufferError:
                # Local queue full: serve delivery reports until there is room.
                self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued event; raise DeliveryFailed listing any that Kafka refused."""
        remaining = self._producer.flush(timeout)
        if remaining:
            raise DeliveryFailed(
                [DeliveryError("?", "?", f"{remaining} still queued after {timeout}s")]
            )
        if self._failures:
            failures, self._failures = self._failures, []
            raise DeliveryFailed(failures)

    def close(self, timeout: float = 30.0) -> None:
        self.flush(timeout)

    def __enter__(self) -> ChannelProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
