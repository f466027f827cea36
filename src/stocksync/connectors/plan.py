"""What a connector tells its channel next: the push plan.

Per SKU the plan keeps the value the channel acknowledged, at most one request in flight, and
at most one pending value: a newer projection replaces the pending one (coalescing), so a
channel that may be updated a few times a second is told the latest value, not every step.

Rules, all per SKU, checked by tests/unit/connectors/test_plan.py:
- Versions are (revision, policy_version) of the projection; a value whose version is not newer
  than one already acknowledged, in flight or pending is never queued: an older value is never
  sent after a newer one.
- One request in flight per SKU, so two requests of one SKU cannot overtake each other.
- A failed request is retried with exponential backoff (or when the channel's Retry-After says),
  unless a newer value arrived meanwhile: then that one is sent instead.
- Priority, best first: a crossing to zero, a drift repair, a low-stock change, back in stock, a
  decrease (the larger first), the first value of a SKU, an increase, a version-only change, a
  periodic resync. A value that has waited `max_wait_s` goes first, so none is starved.

No clock, no I/O: `now` is a monotonic time in seconds passed by the caller.
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

Version = tuple[int, int]  # (revision, policy_version)


class Reason(IntEnum):
    """Why a value is pushed; the lower, the sooner."""

    ZERO_CROSSING = 0
    DRIFT_REPAIR = 1
    LOW_STOCK = 2
    BACK_IN_STOCK = 3
    DECREASE = 4
    FIRST = 5
    INCREASE = 6
    UNCHANGED = 7
    RESYNC = 8


class Outcome(StrEnum):
    ACKNOWLEDGED = "acknowledged"  # the channel took the value
    STALE = "stale"  # the channel holds a newer version already (never expected)
    RETRY = "retry"  # rate limited, 5xx, timeout, connection error: send again later
    REJECTED = "rejected"  # a permanent refusal (4xx): logged, not retried


@dataclass(frozen=True, slots=True)
class Quantity:
    """One projection value: what the channel may sell of a SKU."""

    sku: str
    quantity: int
    revision: int
    policy_version: int
    as_of: int

    @property
    def version(self) -> Version:
        return (self.revision, self.policy_version)


@dataclass(frozen=True, slots=True)
class Push:
    value: Quantity
    reason: Reason
    attempt: int  # 1 for the first try


@dataclass(frozen=True, slots=True)
class Settled:
    push: Push
    outcome: Outcome
    retry_in: float | None = None  # seconds until the value is sent again (RETRY only)


@dataclass(frozen=True, slots=True)
class Backoff:
    base_s: float = 0.25
    max_s: float = 30.0
    jitter: float = 0.2  # +-20 %

    def delay(self, failures: int, rng: random.Random) -> float:
        raw = min(self.max_s, self.base_s * 2.0 ** max(0, failures - 1))
        return raw * (1 + self.jitter * (2 * rng.random() - 1))


def classify(told: int | None, new: int, low_stock: int) -> Reason:
    """The priority of telling a channel `new` when it was last told `told`."""
    if told is None:
        if new == 0:
            return Reason.ZERO_CROSSING
        return Reason.LOW_STOCK if new <= low_stock else Reason.FIRST
    if new == told:
        return Reason.UNCHANGED
    if new == 0:
        return Reason.ZERO_CROSSING
    if new <= low_stock:
        return Reason.LOW_STOCK
    if told == 0:
        return Reason.BACK_IN_STOCK
    return Reason.DECREASE if new < told else Reason.INCREASE


@dataclass(slots=True)
class SkuSlot:
    acked: Quantity | None = None  # what the channel acknowledged last
    acked_at: float = float("-inf")
    inflight: Push | None = None
    pending: Quantity | None = None
    pending_since: float = 0.0
    forced: Reason | None = None  # a re-push of the acknowledged value: RESYNC / DRIFT_REPAIR
    suspect: bool = False  # drift seen: the next push of this SKU is a repair
    failures: int = 0
    not_before: float = 0.0
    generation: int = 0  # invalidates queue entries when the pending value changes
    # The newest version ever sent: a re-push of the acknowledged value must not go below it
    # (after a STALE answer the channel holds something newer than what it acknowledged).
    highest_sent: Version | None = None

    def newest(self) -> Version | None:
        versions = [
            v.version
            for v in (self.acked, self.pending, self.inflight.value if self.inflight else None)
            if v is not None
        ]
        return max(versions) if versions else None

    def latest(self) -> Quantity | None:
        """The newest value known: the true ATP as far as this connector knows."""
        candidates = [
            v
            for v in (self.acked, self.pending, self.inflight.value if self.inflight else None)
            if v is not None
        ]
        return max(candidates, key=lambda v: v.version) if candidates else None


@dataclass(slots=True)
class PlanCounters:
    offered: int = 0
    coalesced: int = 0  # a pending value replaced by a newer one before it was sent
    stale_dropped: int = 0  # offered values not newer than what is known
    pushes: int = 0
    acknowledged: int = 0
    retries: int = 0
    rejected: int = 0
    stale_answers: int = 0
    resyncs: int = 0
    repairs: int = 0


@dataclass
class PushPlan:
    low_stock: int = 5
    max_wait_s: float = 30.0
    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    slots: dict[str, SkuSlot] = field(default_factory=dict)
    counters: PlanCounters = field(default_factory=PlanCounters)
    _ready: list[tuple[int, int, int, str, int]] = field(default_factory=list)
    _waiting: list[tuple[float, int, str, int]] = field(default_factory=list)
    _arrival: OrderedDict[str, float] = field(default_factory=OrderedDict)
    _seq: int = 0

    # -- input ------------------------------------------------------------------------------

    def restore(self, value: Quantity) -> None:
        """A value the channel acknowledged before a restart (from the ledger)."""
        slot = self.slots.setdefault(value.sku, SkuSlot())
        if slot.acked is None or value.version > slot.acked.version:
            slot.acked = value

    def is_settled(self, sku: str, version: Version) -> bool:
        """The channel already acknowledged this version or a newer one."""
        slot = self.slots.get(sku)
        return slot is not None and slot.acked is not None and version <= slot.acked.version

    def offer(self, value: Quantity, now: float) -> bool:
        """A new projection value. Returns False if it is not newer than what is known."""
        self.counters.offered += 1
        slot = self.slots.setdefault(value.sku, SkuSlot())
        newest = slot.newest()
        if newest is not None and value.version <= newest:
            self.counters.stale_dropped += 1
            return False
        if slot.pending is not None:
            self.counters.coalesced += 1
        else:
            slot.pending_since = now
            self._arrival[value.sku] = now
        slot.pending = value
        slot.forced = None
        self._schedule(value.sku, slot, now)
        return True

    def resync(self, now: float) -> int:
        """Queue the acknowledged value of every idle SKU again (a periodic full resync)."""
        queued = 0
        for sku, slot in self.slots.items():
            if slot.acked is not None and slot.pending is None and slot.inflight is None:
                queued += self._requeue(sku, slot, Reason.RESYNC, now)
        self.counters.resyncs += queued
        return queued

    def repair(self, sku: str, now: float) -> bool:
        """Drift was seen: send the authoritative value again, ahead of ordinary changes."""
        slot = self.slots.get(sku)
        if slot is None or slot.acked is None:
            return False
        self.counters.repairs += 1
        slot.suspect = True
        if slot.pending is None and slot.inflight is None:
            self._requeue(sku, slot, Reason.DRIFT_REPAIR, now)
        elif slot.pending is not None and slot.inflight is None:
            self._schedule(sku, slot, now)  # re-rank the pending value as a repair
        return True

    def _requeue(self, sku: str, slot: SkuSlot, reason: Reason, now: float) -> bool:
        assert slot.acked is not None
        if slot.highest_sent is not None and slot.acked.version < slot.highest_sent:
            return False  # the channel refused a newer value as stale: never go back below it
        slot.pending = slot.acked
        slot.pending_since = now
        slot.forced = reason
        self._arrival[sku] = now
        self._schedule(sku, slot, now)
        return True

    # -- scheduling -------------------------------------------------------------------------

    def reason_of(self, slot: SkuSlot) -> Reason:
        assert slot.pending is not None
        told = slot.acked
        if told is not None and slot.pending.version == told.version:
            reason = slot.forced or Reason.UNCHANGED
        else:
            reason = classify(
                told.quantity if told else None, slot.pending.quantity, self.low_stock
            )
        if slot.suspect:
            reason = min(reason, Reason.DRIFT_REPAIR)
        return reason

    def _schedule(self, sku: str, slot: SkuSlot, now: float) -> None:
        if slot.pending is None or slot.inflight is not None:
            return
        slot.generation += 1
        self._seq += 1
        if slot.not_before > now:
            heapq.heappush(self._waiting, (slot.not_before, self._seq, sku, slot.generation))
            return
        reason = self.reason_of(slot)
        told = slot.acked.quantity if slot.acked else slot.pending.quantity
        magnitude = abs(told - slot.pending.quantity)
        heapq.heappush(self._ready, (int(reason), -magnitude, self._seq, sku, slot.generation))

    def _promote(self, now: float) -> None:
        while self._waiting and self._waiting[0][0] <= now:
            _, _, sku, generation = heapq.heappop(self._waiting)
            slot = self.slots[sku]
            if generation == slot.generation:
                self._schedule(sku, slot, now)

    def _valid(self, sku: str, generation: int) -> bool:
        slot = self.slots[sku]
        return slot.generation == generation and slot.pending is not None and slot.inflight is None

    def _overdue(self, now: float) -> str | None:
        while self._arrival:
            sku, since = next(iter(self._arrival.items()))
            slot = self.slots[sku]
            if slot.pending is None:
                del self._arrival[sku]
                continue
            if now - since >= self.max_wait_s and slot.inflight is None and slot.not_before <= now:
                return sku
            return None
        return None

    def has_ready(self, now: float) -> bool:
        self._promote(now)
        while self._ready:
            _, _, _, sku, generation = self._ready[0]
            if self._valid(sku, generation):
                return True
            heapq.heappop(self._ready)
        return False

    def next_due(self, now: float) -> float | None:
        """When a value held back by a backoff becomes sendable (None: nothing held back)."""
        self._promote(now)
        while self._waiting:
            due, _, sku, generation = self._waiting[0]
            if self.slots[sku].generation == generation:
                return due
            heapq.heappop(self._waiting)
        return None

    def next_push(self, now: float) -> Push | None:
        """Take the most urgent sendable value; it is in flight until `settle`."""
        sku = self._overdue(now)
        if sku is None:
            if not self.has_ready(now):
                return None
            sku = heapq.heappop(self._ready)[3]
        slot = self.slots[sku]
        assert slot.pending is not None
        push = Push(slot.pending, self.reason_of(slot), slot.failures + 1)
        slot.inflight = push
        if slot.highest_sent is None or push.value.version > slot.highest_sent:
            slot.highest_sent = push.value.version
        slot.pending = None
        slot.forced = None
        slot.generation += 1
        self._arrival.pop(sku, None)
        self.counters.pushes += 1
        return push

    # -- answers ----------------------------------------------------------------------------

    def settle(
        self, sku: str, outcome: Outcome, now: float, retry_after: float | None = None
    ) -> Settled:
        slot = self.slots[sku]
        push = slot.inflight
        if push is None:
            raise KeyError(f"{sku} has no request in flight")
        slot.inflight = None
        retry_in: float | None = None
        if outcome is Outcome.ACKNOWLEDGED:
            self.counters.acknowledged += 1
            if slot.acked is None or push.value.version >= slot.acked.version:
                slot.acked = push.value
                slot.acked_at = now
            slot.failures = 0
            slot.not_before = now
            if push.value.version == (slot.latest() or push.value).version:
                slot.suspect = False
        elif outcome is Outcome.RETRY:
            self.counters.retries += 1
            slot.failures += 1
            retry_in = (
                retry_after
                if retry_after is not None
                else self.backoff.delay(slot.failures, self.rng)
            )
            slot.not_before = now + retry_in
            if slot.pending is None:  # nothing newer arrived: send this value again
                slot.pending = push.value
                slot.forced = push.reason if push.reason >= Reason.UNCHANGED else None
                slot.pending_since = now
                self._arrival[sku] = now
        else:
            if outcome is Outcome.STALE:
                self.counters.stale_answers += 1
            else:
                self.counters.rejected += 1
            slot.failures = 0
        self._schedule(sku, slot, now)
        return Settled(push, outcome, retry_in)

    # -- reading ----------------------------------------------------------------------------

    def acknowledged(self) -> Iterator[Quantity]:
        for slot in self.slots.values():
            if slot.acked is not None:
                yield slot.acked

    def backlog(self) -> int:
        return sum(1 for s in self.slots.values() if s.pending is not None)

    def in_flight(self) -> int:
        return sum(1 for s in self.slots.values() if s.inflight is not None)

    def published_and_true(self) -> Iterator[tuple[int, int]]:
        """(acknowledged quantity, newest known quantity) per SKU the channel was told."""
        for slot in self.slots.values():
            latest = slot.latest()
            if slot.acked is not None and latest is not None:
                yield slot.acked.quantity, latest.quantity
