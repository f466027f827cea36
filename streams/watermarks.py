"""The broker's high watermarks of the input partitions this worker owns, read every few
seconds in a thread of their own. The lag metric and the watchdog compare them with what the
fold has done: faust's own idea of the high watermark comes from its fetches, and a fetcher
that has stopped would report no lag at all."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import structlog
from confluent_kafka import KafkaException, TopicPartition

from stocksync.adapters.kafka import clients
from stocksync.config import Settings

log = structlog.get_logger("stocksync.watermarks")

POLL_S = 2.0
CHECK_S = 0.2
TIMEOUT_S = 5.0


class HighWatermarks:
    def __init__(self, settings: Settings, owned: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self._settings = settings
        self._owned = owned  # called from the thread: must be safe to read there
        self._stop = threading.Event()
        self.highs: dict[tuple[str, int], int] = {}  # replaced whole, never mutated

    def start(self) -> None:
        threading.Thread(target=self._run, name="high-watermarks", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        consumer = clients.log_reader(self._settings, "watermarks")
        try:
            read: frozenset[tuple[str, int]] | None = None
            due = 0.0
            while not self._stop.wait(CHECK_S):
                owned = frozenset(self._owned())
                if owned == read and time.monotonic() < due:
                    continue  # read every POLL_S, and at once when the assignment changes
                read, due = owned, time.monotonic() + POLL_S
                highs = {}
                for topic, partition in owned:
                    try:
                        _low, high = consumer.get_watermark_offsets(
                            TopicPartition(topic, partition), timeout=TIMEOUT_S, cached=False
                        )
                    except KafkaException as exc:
                        log.warning("high_watermark_unread", topic=topic, error=str(exc))
                        if (known := self.highs.get((topic, partition))) is not None:
                            highs[(topic, partition)] = known
                        continue
                    highs[(topic, partition)] = high
                self.highs = highs
        finally:
            consumer.close()
