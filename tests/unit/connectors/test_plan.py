"""The push plan: coalescing, priorities, one request per SKU, never older after newer,
retries, resync and repair (src/stocksync/connectors/plan.py)."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.connectors.budget import TokenBucket
from stocksync.connectors.plan import (
    Backoff,
    Outcome,
    PushPlan,
    Quantity,
    Reason,
    classify,
)


def q(sku: str, quantity: int, revision: int, policy_version: int = 1) -> Quantity:
    return Quantity(sku, quantity, revision, policy_version, as_of=revision * 1000)


def plan(**kwargs: Any) -> PushPlan:
    return PushPlan(low_stock=5, backoff=Backoff(base_s=1.0, max_s=8.0, jitter=0.0), **kwargs)


def drain(p: PushPlan, now: float = 0.0) -> list[tuple[str, int]]:
    """Push and acknowledge everything sendable now; returns (sku, quantity) in order."""
    sent = []
    while (push := p.next_push(now)) is not None:
        p.settle(push.value.sku, Outcome.ACKNOWLEDGED, now)
        sent.append((push.value.sku, push.value.quantity))
    return sent


# -- classify ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("told", "new", "reason"),
    [
        (10, 0, Reason.ZERO_CROSSING),
        (None, 0, Reason.ZERO_CROSSING),
        (10, 3, Reason.LOW_STOCK),
        (None, 4, Reason.LOW_STOCK),
        (0, 30, Reason.BACK_IN_STOCK),
        (30, 20, Reason.DECREASE),
        (None, 20, Reason.FIRST),
        (20, 30, Reason.INCREASE),
        (20, 20, Reason.UNCHANGED),
    ],
)
def test_a_change_is_ranked_by_what_it_risks(told: int | None, new: int, reason: Reason) -> None:
    assert classify(told, new, low_stock=5) is reason


# -- coalescing and order ----------------------------------------------------------------


def test_updates_of_one_sku_waiting_for_the_budget_are_coalesced_into_the_latest() -> None:
    # given three changes of a SKU before the connector may send
    p = plan()
    for revision, quantity in ((1, 30), (2, 29), (3, 28)):
        p.offer(q("A", quantity, revision), now=0)
    # when it sends
    # then one request carries the latest value
    assert drain(p) == [("A", 28)]
    assert p.counters.coalesced == 2


def test_zero_crossings_then_low_stock_go_before_ordinary_changes() -> None:
    # given four SKUs the channel was told 20 of
    p = plan()
    for sku in "ABCD":
        p.restore(q(sku, 20, 1))
    # when they change: an increase, a decrease, a low-stock value, a sell-out
    p.offer(q("A", 25, 2), now=0)
    p.offer(q("B", 15, 2), now=0)
    p.offer(q("C", 3, 2), now=0)
    p.offer(q("D", 0, 2), now=0)
    # then the sell-out goes first, then low stock, then the decrease, then the increase
    assert [sku for sku, _ in drain(p)] == ["D", "C", "B", "A"]


def test_larger_decreases_go_first() -> None:
    p = plan()
    p.restore(q("A", 100, 1))
    p.restore(q("B", 100, 1))
    p.offer(q("A", 90, 2), now=0)
    p.offer(q("B", 40, 2), now=0)
    assert [sku for sku, _ in drain(p)] == ["B", "A"]


def test_a_value_that_waited_too_long_goes_before_more_urgent_ones() -> None:
    # given an increase waiting since t=0 and max_wait 30 s
    p = plan(max_wait_s=30.0)
    p.restore(q("A", 10, 1))
    p.offer(q("A", 20, 2), now=0)
    # when sell-outs keep arriving at t=31
    for i in range(5):
        p.restore(q(f"Z{i}", 5, 1))
        p.offer(q(f"Z{i}", 0, 2), now=31)
    # then the starving increase is sent first
    push = p.next_push(31)
    assert push is not None and push.value.sku == "A"


def test_an_older_or_equal_version_is_never_queued() -> None:
    # given the channel acknowledged revision 5 and revision 7 is pending
    p = plan()
    p.restore(q("A", 10, 5))
    assert p.offer(q("A", 8, 7), now=0)
    # when revision 6, a re-sent 7 and an old 4 arrive (a worker re-send after a crash)
    # then none is queued
    assert not p.offer(q("A", 9, 6), now=0)
    assert not p.offer(q("A", 8, 7), now=0)
    assert not p.offer(q("A", 11, 4), now=0)
    assert drain(p) == [("A", 8)]


def test_a_policy_change_with_the_same_revision_is_newer() -> None:
    p = plan()
    p.restore(q("A", 10, 5, policy_version=1))
    assert p.offer(q("A", 9, 5, policy_version=2), now=0)


def test_only_one_request_per_sku_is_in_flight() -> None:
    # given a request for A in flight
    p = plan()
    p.offer(q("A", 10, 1), now=0)
    first = p.next_push(0)
    assert first is not None
    # when a newer value arrives
    p.offer(q("A", 9, 2), now=0)
    # then it waits for the answer to the first
    assert p.next_push(0) is None
    p.settle("A", Outcome.ACKNOWLEDGED, 0)
    second = p.next_push(0)
    assert second is not None and second.value.quantity == 9


# -- failures ----------------------------------------------------------------------------


def test_a_failed_push_is_retried_with_exponential_backoff() -> None:
    p = plan()
    p.offer(q("A", 10, 1), now=0)
    delays = []
    now = 0.0
    for _ in range(5):
        push = p.next_push(now)
        assert push is not None
        settled = p.settle("A", Outcome.RETRY, now)
        assert settled.retry_in is not None
        delays.append(settled.retry_in)
        assert p.next_push(now) is None  # not before the delay
        now += settled.retry_in
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    push = p.next_push(now)
    assert push is not None and push.attempt == 6


def test_retry_after_from_the_channel_sets_the_delay() -> None:
    p = plan()
    p.offer(q("A", 10, 1), now=0)
    p.next_push(0)
    settled = p.settle("A", Outcome.RETRY, 0, retry_after=3.0)
    assert settled.retry_in == 3.0
    assert p.next_due(0) == 3.0
    assert p.next_push(2.9) is None
    assert p.next_push(3.0) is not None


def test_a_failed_push_is_replaced_by_a_newer_value_not_retried() -> None:
    p = plan()
    p.offer(q("A", 10, 1), now=0)
    p.next_push(0)
    p.offer(q("A", 7, 2), now=0)
    p.settle("A", Outcome.RETRY, 0)
    push = p.next_push(10)
    assert push is not None and push.value.revision == 2


def test_a_refused_push_is_not_retried() -> None:
    p = plan()
    p.offer(q("A", 10, 1), now=0)
    p.next_push(0)
    p.settle("A", Outcome.REJECTED, 0)
    assert p.next_push(100) is None


# -- resync and repair -------------------------------------------------------------------


def test_resync_queues_every_acknowledged_value_behind_real_changes() -> None:
    p = plan()
    for sku in "AB":
        p.restore(q(sku, 10, 1))
    assert p.resync(now=0) == 2
    p.restore(q("C", 10, 1))
    p.offer(q("C", 12, 2), now=0)
    pushes = []
    while (push := p.next_push(0)) is not None:
        pushes.append((push.value.sku, push.reason))
        p.settle(push.value.sku, Outcome.ACKNOWLEDGED, 0)
    assert pushes == [("C", Reason.INCREASE), ("A", Reason.RESYNC), ("B", Reason.RESYNC)]


def test_a_drift_repair_resends_the_acknowledged_value_before_ordinary_changes() -> None:
    p = plan()
    p.restore(q("A", 10, 1))
    p.restore(q("B", 10, 1))
    p.offer(q("B", 8, 2), now=0)
    assert p.repair("A", now=0)
    push = p.next_push(0)
    assert push is not None
    assert (push.value.sku, push.value.quantity, push.reason) == ("A", 10, Reason.DRIFT_REPAIR)


def test_a_drift_repair_of_an_unknown_sku_does_nothing() -> None:
    assert not plan().repair("nope", now=0)


# -- properties --------------------------------------------------------------------------

SKUS = ("A", "B", "C")
operation = st.one_of(
    st.tuples(st.just("offer"), st.sampled_from(SKUS), st.integers(0, 40), st.integers(-2, 3)),
    st.tuples(st.just("push"), st.sampled_from(list(Outcome)), st.floats(0, 5)),
    st.tuples(st.just("resync")),
    st.tuples(st.just("repair"), st.sampled_from(SKUS)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=80))
def test_no_older_value_after_a_newer_one_and_the_latest_is_always_sent(
    ops: list[tuple[Any, ...]],  # an operation's name, then its arguments
) -> None:
    p = PushPlan(low_stock=5, backoff=Backoff(0.1, 2.0), rng=random.Random(1))
    now = 0.0
    revision: dict[str, int] = defaultdict(int)
    latest: dict[str, Quantity] = {}
    sent: dict[str, list[tuple[int, int]]] = defaultdict(list)
    channel: dict[str, Quantity] = {}  # what the channel holds after acknowledgements

    def send(outcome: Outcome) -> bool:
        push = p.next_push(now)
        if push is None:
            return False
        sku = push.value.sku
        # at most one in flight per SKU; never older than anything sent before
        assert all(push.value.version >= v for v in sent[sku])
        sent[sku].append(push.value.version)
        p.settle(sku, outcome, now)
        if outcome is Outcome.ACKNOWLEDGED:
            channel[sku] = push.value
        return True

    for op in ops:
        if op[0] == "offer":
            _, sku, quantity, step = op
            # the projection topic's order per key: versions never go down, re-sends happen
            revision[sku] += max(0, step)
            value = q(sku, quantity, revision[sku])
            if p.offer(value, now):
                latest[sku] = value
        elif op[0] == "push":
            _, outcome, advance = op
            now += advance
            send(outcome)
        elif op[0] == "resync":
            p.resync(now)
        else:
            p.repair(op[1], now)
    # when the channel is healthy again for long enough
    for _ in range(200):
        now += 3.0
        while send(Outcome.ACKNOWLEDGED):
            pass
    # then the channel holds the latest value of every SKU, unless the channel refused it
    for sku, value in latest.items():
        refused = channel.get(sku) is None or channel[sku].version < value.version
        if refused:
            assert p.counters.rejected + p.counters.stale_answers > 0
        else:
            assert channel[sku] == value


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.5, 50),
    burst=st.integers(1, 20),
    steps=st.lists(st.floats(0, 0.5), min_size=1, max_size=300),
)
def test_the_budget_is_never_exceeded_over_any_window(
    rate: float, burst: int, steps: list[float]
) -> None:
    # given a plan with far more work than the budget allows, driven like the runtime does
    p = PushPlan(low_stock=5)
    for i in range(500):
        p.offer(q(f"S{i}", i % 7, 1), now=0)
    bucket = TokenBucket.full(rate, burst, 0.0)
    now = 0.0
    times: list[float] = []
    for step in steps:
        now += step
        while bucket.try_take(now):
            push = p.next_push(now)
            if push is None:
                bucket.refund()
                break
            times.append(now)
            p.settle(push.value.sku, Outcome.ACKNOWLEDGED, now)
    # then in every window [t_i, t_j] at most burst + rate * (t_j - t_i) requests were sent
    for i in range(len(times)):
        for j in range(i, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - times[i]) + 1e-6
