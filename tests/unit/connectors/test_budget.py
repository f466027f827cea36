"""The token bucket that keeps a connector inside its channel's request budget."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.connectors.budget import BudgetError, TokenBucket


def test_a_full_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3, now=0.0)
    assert [bucket.try_take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time(0.0) == pytest.approx(0.5)
    assert bucket.try_take(0.5)
    assert not bucket.try_take(0.5)


def test_a_hold_from_the_channel_stops_requests_until_it_ends_then_refills_from_empty() -> None:
    bucket = TokenBucket.full(rate=10.0, burst=5, now=0.0)
    bucket.hold(until=2.0)
    assert not bucket.try_take(1.9)
    assert bucket.wait_time(1.0) == pytest.approx(1.1)
    assert not bucket.try_take(2.0)  # empty when the pause ends
    assert bucket.try_take(2.1)
    assert not bucket.try_take(2.1)


def test_a_refund_gives_back_an_unused_token() -> None:
    bucket = TokenBucket.full(rate=1.0, burst=1, now=0.0)
    assert bucket.try_take(0.0)
    bucket.refund()
    assert bucket.try_take(0.0)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 5), (1.0, 0)])
def test_an_impossible_budget_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(BudgetError, match="rate > 0 and burst >= 1"):
        TokenBucket.full(rate, burst, 0.0)


@settings(max_examples=300, deadline=None)
@given(
    rate=st.floats(0.1, 100),
    burst=st.integers(1, 30),
    events=st.lists(
        st.tuples(st.floats(0, 1), st.booleans(), st.floats(0, 3)), min_size=1, max_size=300
    ),
)
def test_takes_never_exceed_burst_plus_rate_times_window(
    rate: float, burst: int, events: list[tuple[float, bool, float]]
) -> None:
    bucket = TokenBucket.full(rate, burst, 0.0)
    now = 0.0
    taken: list[float] = []
    for step, pause, pause_s in events:
        now += step
        if pause:
            bucket.hold(now + pause_s)
        while bucket.try_take(now):
            taken.append(now)
    for i in range(len(taken)):
        for j in range(i, len(taken)):
            assert j - i + 1 <= burst + rate * (taken[j] - taken[i]) + 1e-6
