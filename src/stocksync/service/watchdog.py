"""When is a worker that says it is ready not making progress? The rule, without a clock or
Kafka of its own: the worker feeds it what it sees, it answers stalled / dead.

Input is waiting when a partition's high watermark is past the next offset to fold. If input
waits and nothing is folded for `stall_after_s`, the worker is stalled: it must say it is not
ready (so traffic and alerts go elsewhere). Stalled for `fail_after_s` more, it is dead: its
liveness probe fails and the orchestrator restarts it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WatchdogVerdict:
    stalled: bool
    dead: bool
    stalled_for_s: float


class Watchdog:
    def __init__(self, stall_after_s: float, fail_after_s: float) -> None:
        self.stall_after_s = stall_after_s
        self.fail_after_s = fail_after_s
        self._progress: int | None = None
        self._since: float | None = None  # when input was last seen waiting with no progress
        self.verdict = WatchdogVerdict(False, False, 0.0)

    def reset(self) -> None:
        """A rebalance or a recovery: waiting then is expected, start counting afresh."""
        self._progress = None
        self._since = None
        self.verdict = WatchdogVerdict(False, False, 0.0)

    def observe(self, now: float, waiting: bool, progress: int) -> WatchdogVerdict:
        """`waiting`: some owned partition has input not yet folded; `progress`: any number
        that grows whenever something is folded (e.g. the sum of folded offsets)."""
        if not waiting or progress != self._progress:
            self._progress = progress
            self._since = now if waiting else None
            self.verdict = WatchdogVerdict(False, False, 0.0)
            return self.verdict
        if self._since is None:
            self._since = now
        idle = now - self._since
        stalled = idle >= self.stall_after_s
        dead = idle >= self.stall_after_s + self.fail_after_s
        self.verdict = WatchdogVerdict(stalled, dead, round(idle, 1) if stalled else 0.0)
        return self.verdict
