"""How far the fold has come on each input partition, against what the broker holds: the
input-gap alarm, the lag, and the watchdog that stops a stalled worker from saying it is
ready."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

import structlog
from faust.types import TP

from stocksync.config import Settings
from stocksync.service.watchdog import Watchdog, WatchdogVerdict

from .watermarks import HighWatermarks

log = structlog.get_logger("stocksync.worker")


class InputProgress:
    def __init__(self, app: Any, settings: Settings, counters: MutableMapping[str, int]) -> None:
        self._app = app
        self._counters = counters  # input_gaps is counted there
        self._inputs = frozenset(settings.topics.input_topics)
        # (topic, partition) -> the offset after the last record folded and delivered
        self.folded: dict[tuple[str, int], int] = {}
        # (topic, partition) -> (consumer generation, next offset expected): see check_gap
        self._next_offsets: dict[tuple[str, int], tuple[int, int]] = {}
        self.assigned: frozenset[tuple[str, int]] = frozenset()  # read by a thread
        self.watermarks = HighWatermarks(settings, lambda: self.assigned)
        self.watchdog = Watchdog(settings.stall_after_s, settings.stall_fail_after_s)

    @property
    def verdict(self) -> WatchdogVerdict:
        return self.watchdog.verdict

    def check_gap(self, message: Any, first_offset: int) -> None:
        """Raise the alarm when input skips offsets: within one assignment a partition's
        batches arrive in offset order, each starting right after the last (earlier ones come
        again after a seek back; the producers write no transactions, whose markers would take
        offsets). A jump means faust dropped messages on the way to the agent, as its recovery
        once did (streams/faust_fixes.py): the table then misses what they carried."""
        tp = (message.topic, message.partition)
        generation = message.generation_id
        known = self._next_offsets.get(tp)
        if known is not None and known[0] == generation:
            expected: int | None = known[1]
        else:
            # The first batch of this assignment starts at the committed offset (the next to
            # read) when faust knows it; before the partition's first commit it cannot be told.
            committed = self._app.consumer._committed_offset
            expected = committed.get(message.tp)
        if expected is not None and first_offset > expected:
            self._counters["input_gaps"] = self._counters.get("input_gaps", 0) + 1
            log.error(
                "input_gap",
                topic=message.topic,
                partition=message.partition,
                expected=expected,
                received=first_offset,
                missing=first_offset - expected,
            )
        self._next_offsets[tp] = (generation, message.offset + 1)

    def delivered(self, take: Any) -> None:
        """A take's records are folded and everything they caused is on the broker."""
        for event in take:
            message = event.message
            self.folded[(message.topic, message.partition)] = message.offset + 1

    def positions(self) -> list[tuple[str, int, int | None, int | None]]:
        """(topic, partition, broker high watermark, next offset to fold) of every input
        partition this worker owns."""
        committed = self._app.consumer._committed_offset
        highs = self.watermarks.highs
        out = []
        for topic, partition in sorted(self.assigned):
            folded = self.folded.get((topic, partition))
            known = committed.get(TP(topic, partition))
            position = max((p for p in (folded, known) if p is not None), default=None)
            out.append((topic, partition, highs.get((topic, partition)), position))
        return out

    def watch(self, serving: bool) -> None:
        """Once a second: is input waiting that nothing folds? (service.watchdog)"""
        self.assigned = frozenset(
            (tp.topic, tp.partition)
            for tp in self._app.consumer.assignment()
            if tp.topic in self._inputs
        )
        if not serving:
            self.watchdog.reset()
            return
        waiting = any(
            high is not None and (position or 0) < high
            for _topic, _partition, high, position in self.positions()
        )
        was = self.watchdog.verdict
        verdict = self.watchdog.observe(time.monotonic(), waiting, sum(self.folded.values()))
        if verdict.stalled and not was.stalled:
            log.error("fold_stalled", seconds=verdict.stalled_for_s, ready=False)
        if verdict.dead and not was.dead:
            log.critical("fold_dead", seconds=verdict.stalled_for_s, live=False)
        if was.stalled and not verdict.stalled:
            log.info("fold_resumed")
