"""Topology versions on the compacted <prefix>topology topic: publish one, read the newest,
and follow new ones from a worker."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from stocksync.config import Settings
from stocksync.domain.topology import Topology, TopologyError, parse_topology

log = structlog.get_logger("stocksync.topology")

TOPOLOGY_KEY = b"topology"


def publish_topology(settings: Settings, document: dict[str, Any]) -> Topology:
    """Validate and publish a topology version; it must be newer than the newest published."""
    topology = parse_topology(document, origin="topology")
    current = read_latest_topology(settings)
    if current is not None and topology.version <= current.version:
        raise TopologyError(
            f"topology: version {topology.version} is not newer than the published version "
            f"{current.version}; bump `version`"
        )
    producer = Producer({**settings.librdkafka_config(), "enable.idempotence": True, "acks": "all"})
    producer.produce(
        settings.topics.topology,
        key=TOPOLOGY_KEY,
        value=json.dumps(document, sort_keys=True).encode(),
    )
    if producer.flush(30):
        raise RuntimeError("topology not acknowledged by Kafka within 30s")
    return topology


def _consumer(settings: Settings) -> Consumer:
    return Consumer(
        {
            **settings.librdkafka_config(),
            "group.id": f"stocksync-topology-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )


def _parse(payload: bytes | None, offset: int) -> Topology | None:
    try:
        return parse_topology(json.loads(payload or b""), origin=f"topology@{offset}")
    except (ValueError, TopologyError) as exc:
        log.error("topology_ignored", offset=offset, error=str(exc))
        return None


def read_latest_topology(settings: Settings, timeout: float = 10.0) -> Topology | None:
    consumer = _consumer(settings)
    try:
        consumer.assign([TopicPartition(settings.topics.topology, 0, 0)])
        newest: Topology | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    break
                continue
            parsed = _parse(msg.value(), msg.offset() or 0)
            if parsed is not None and (newest is None or parsed.version > newest.version):
                newest = parsed
        return newest
    finally:
        consumer.close()


class TopologyFollower(threading.Thread):
    """Calls on_new(topology) for every version newer than the last one it reported."""

    def __init__(
        self, settings: Settings, start_version: int, on_new: Callable[[Topology], None]
    ) -> None:
        super().__init__(name="topology-follower", daemon=True)
        self.settings = settings
        self.version = start_version
        self.on_new = on_new
        self._stop = threading.Event()

    def run(self) -> None:
        consumer = _consumer(self.settings)
        consumer.assign([TopicPartition(self.settings.topics.topology, 0, 0)])
        try:
            while not self._stop.is_set():
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                parsed = _parse(msg.value(), msg.offset() or 0)
                if parsed is not None and parsed.version > self.version:
                    self.version = parsed.version
                    self.on_new(parsed)
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stop.set()
