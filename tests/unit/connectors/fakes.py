"""Stand-ins for Kafka and a connector's configuration, so the connector's jobs run without a
broker: a producer that delivers (or fails to) when flushed, a consumer that records commits,
and projection messages."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from stocksync.codec.outputs import encode_projection, projection_key
from stocksync.connectors.plan import Outcome, Quantity
from stocksync.connectors.settings import ConnectorSettings
from stocksync.connectors.state import ConnectorState
from stocksync.domain.effects import ChannelQuantityChanged

CHANNEL = "web"
ENDPOINT = "http://127.0.0.1:9"


def connector_config(**overrides: Any) -> ConnectorSettings:
    values: dict[str, Any] = {"channel": CHANNEL, "endpoint_url": ENDPOINT, **overrides}
    # mypy sees pydantic-settings models' fields as their __init__, not its _env_file argument
    return ConnectorSettings(_env_file=None, **values)  # type: ignore[call-arg]


def connector_state(config: ConnectorSettings | None = None) -> ConnectorState:
    return ConnectorState.of(config or connector_config(), low_stock=5)


def q(sku: str, quantity: int, revision: int, policy_version: int = 1) -> Quantity:
    return Quantity(sku, quantity, revision, policy_version, as_of=1_700_000_000_000)


def acknowledge(state: ConnectorState, value: Quantity, seconds_ago: float = 60.0) -> None:
    """The channel acknowledged `value` this long ago (through the plan, as a push would)."""
    now = time.monotonic() - seconds_ago
    state.plan.offer(value, now)
    push = state.plan.next_push(now)
    assert push is not None and push.value == value
    state.plan.settle(value.sku, Outcome.ACKNOWLEDGED, now)


@dataclass
class Produced:
    topic: str
    key: bytes
    value: bytes
    headers: Any
    on_delivery: Any


@dataclass
class FakeProducer:
    """Delivers everything produced at the next flush, failing the first `fail_deliveries`."""

    produced: list[Produced] = field(default_factory=list)
    fail_deliveries: int = 0
    _undelivered: list[Produced] = field(default_factory=list)

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        on_delivery: Any = None,
        headers: Any = None,
    ) -> None:
        assert key is not None and value is not None
        record = Produced(topic, key, value, headers, on_delivery)
        self.produced.append(record)
        self._undelivered.append(record)

    def poll(self, timeout: float = 0.0) -> int:
        return 0

    def flush(self, timeout: float = 0.0) -> int:
        for record in self._undelivered:
            error = None
            if self.fail_deliveries > 0:
                self.fail_deliveries -= 1
                error = KafkaError(KafkaError._MSG_TIMED_OUT)
            if record.on_delivery is not None:
                record.on_delivery(error, None)
        self._undelivered.clear()
        return 0

    def on(self, topic: str) -> list[Produced]:
        return [p for p in self.produced if p.topic == topic]


@dataclass
class FakeConsumer:
    """Records commits; fails the next `fail_commits` of them as a broker would."""

    commits: list[dict[int, int]] = field(default_factory=list)
    fail_commits: int = 0

    def commit(self, *, offsets: list[Any], asynchronous: bool = True) -> None:
        assert asynchronous is False, "a connector commits synchronously"
        if self.fail_commits > 0:
            self.fail_commits -= 1
            raise KafkaException(KafkaError(KafkaError.REQUEST_TIMED_OUT))
        self.commits.append({tp.partition: tp.offset for tp in offsets})

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        return []

    def close(self) -> None:
        pass


@dataclass
class FakeMessage:
    """A consumed record, shaped like confluent_kafka.Message."""

    _key: bytes | None
    _value: bytes | None
    _offset: int
    _partition: int = 0
    _error: KafkaError | None = None

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def offset(self) -> int:
        return self._offset

    def partition(self) -> int:
        return self._partition

    def error(self) -> KafkaError | None:
        return self._error


def projection_message(
    value: Quantity, offset: int, partition: int = 0, channel: str = CHANNEL
) -> FakeMessage:
    change = ChannelQuantityChanged(
        channel=channel,
        sku=value.sku,
        quantity=value.quantity,
        policy_version=value.policy_version,
        revision=value.revision,
        as_of=value.as_of,
    )
    return FakeMessage(
        projection_key(channel, value.sku), encode_projection(change), offset, partition
    )
