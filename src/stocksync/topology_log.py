"""Topology versions on the compacted <prefix>topology topic: publish one, read the newest,
and follow new ones from a worker."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import structlog
from confluent_kafka import TopicPartition

from stocksync.adapters.kafka import clients
from stocksync.config import Settings
from stocksync.domain.topology import Topology, TopologyError, parse_topology

log = structlog.get_logger("stocksync.topology")

TOPOLOGY_KEY = b"topology"
READ_IDLE_LIMIT_S = 10.0


def publish_topology(settings: Settings, document: dict[str, Any]) -> Topology:
    """Validate and publish a topology version; it must be newer than the newest published."""
    topology = parse_topology(document, origin="topology")
    current = read_latest_topology(settings)
    if current is not None and topology.version <= current.version:
        raise TopologyError(
            f"topology: version {topology.version} is not newer than the published version "
            f"{current.version}; bump `version`"
        )
    producer = clients.producer(settings, "stocksync-topology", linger_ms=0)
    producer.produce(
        settings.topics.topology,
        key=TOPOLOGY_KEY,
        value=json.dumps(document, sort_keys=True).encode(),
    )
    if producer.flush(30):
        raise RuntimeError("topology not acknowledged by Kafka within 30s")
    return topology


def _parse(payload: bytes | None, offset: int) -> Topology | None:
    try:
        return parse_topology(json.loads(payload or b""), origin=f"topology@{offset}")
    except (ValueError, TopologyError) as exc:
        log.error("topology_ignored", offset=offset, error=str(exc))
        return None


def read_latest_topology(settings: Settings) -> Topology | None:
    reader = clients.log_reader(settings, "topology")
    newest: Topology | None = None
    try:
        bounds = clients.whole_log(reader, settings.topics.topology)
        for msg in clients.read_range(reader, bounds, idle_limit_s=READ_IDLE_LIMIT_S):
            parsed = _parse(msg.value(), msg.offset() or 0)
            if parsed is not None and (newest is None or parsed.version > newest.version):
                newest = parsed
    except clients.TopicMissing:
        return None
    finally:
        reader.close()
    return newest


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
        consumer = clients.log_reader(self.settings, "topology-follower")
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
