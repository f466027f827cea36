"""The alerts topic as service/alert_pages.py reads it: one librdkafka log reader (assigned,
never subscribed, commits nothing), created on first use and shared by the requests of one
worker one at a time. Blocking: callers run it in a thread (asyncio.to_thread)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from stocksync.adapters.kafka import clients
from stocksync.codec.outputs import ALERT_TYPE_HEADER
from stocksync.config import Settings
from stocksync.service.alert_pages import NO_OFFSET, LoggedAlert

# A range ends below the high watermark, so read_range knows its end from the offsets; this
# only bounds a wait for records that never come.
READ_IDLE_LIMIT_S = 5.0
METADATA_TIMEOUT_S = 10.0


class KafkaAlertLog:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.topic = settings.topics.alerts
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()  # one consumer: one request's reads at a time

    def _reader(self) -> Consumer:
        if self._consumer is None:
            self._consumer = clients.log_reader(self._settings, "alert-query")
        return self._consumer

    def bounds(self) -> dict[int, tuple[int, int]]:
        with self._lock:
            return clients.watermarks(self._reader(), self.topic, METADATA_TIMEOUT_S)

    def offsets_at(self, at_ms: int) -> dict[int, int]:
        with self._lock:
            consumer = self._reader()
            partitions = clients.partitions_of(consumer, self.topic, METADATA_TIMEOUT_S)
            found = consumer.offsets_for_times(
                [TopicPartition(self.topic, p, at_ms) for p in partitions],
                timeout=METADATA_TIMEOUT_S,
            )
        return {tp.partition: tp.offset if tp.offset >= 0 else NO_OFFSET for tp in found}

    def read(self, ranges: Mapping[int, tuple[int, int]]) -> dict[int, list[LoggedAlert]]:
        out: dict[int, list[LoggedAlert]] = {p: [] for p in ranges}
        bounds = {(self.topic, p): span for p, span in ranges.items()}
        with self._lock:
            for msg in clients.read_range(self._reader(), bounds, idle_limit_s=READ_IDLE_LIMIT_S):
                value = msg.value()
                if not value:
                    continue
                partition = msg.partition() or 0
                out[partition].append(
                    LoggedAlert(
                        partition=partition,
                        offset=msg.offset() or 0,
                        timestamp=msg.timestamp()[1],
                        key=msg.key(),
                        type=_header_type(msg.headers()),
                        value=value,
                    )
                )
        return out

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None


def _header_type(headers: Any) -> str | None:
    """The type an alert's header names (librdkafka gives headers as a list of pairs)."""
    for name, value in headers or ():
        if name == ALERT_TYPE_HEADER and isinstance(value, bytes) and value:
            return value.decode()
    return None
