"""The drift rule and a channel's exposure (src/stocksync/connectors/drift.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stocksync.connectors.drift import DriftRule, Exposure, assess_drift, exposure


@pytest.mark.parametrize(
    ("published", "displayed", "drifts"),
    [
        (100, 105, False),  # 5 % of 100 is allowed
        (100, 106, True),
        (100, 94, True),
        (10, 11, False),  # the 1-unit floor: small quantities do not alert on one unit
        (10, 12, True),
        (1, 2, False),  # inside the floor too: lower the floor for channels where 1 matters
        (0, 1, True),  # showing stock we do not have: always drift
        (3, 0, True),  # showing none of what we have: always drift
        (0, 0, False),
        (1000, 1050, False),
        (1000, 1051, True),
    ],
)
def test_default_rule_is_5_percent_with_a_floor_of_one_unit(
    published: int, displayed: int, drifts: bool
) -> None:
    assert DriftRule().drifts(published, displayed) is drifts


def test_the_floor_is_configurable() -> None:
    assert not DriftRule(percent=5, floor_units=3).drifts(10, 13)
    assert DriftRule(percent=5, floor_units=0).drifts(10, 11)


def test_a_finding_carries_what_was_published_displayed_and_allowed() -> None:
    finding = assess_drift("A", published=40, displayed=50, rule=DriftRule())
    assert finding is not None
    assert (finding.published, finding.displayed, finding.allowed, finding.difference) == (
        40,
        50,
        2,
        10,
    )
    assert assess_drift("A", 40, 41, DriftRule()) is None


@given(st.integers(0, 10_000), st.floats(0, 50), st.integers(0, 20))
def test_the_published_value_itself_never_drifts(published: int, pct: float, floor: int) -> None:
    assert not DriftRule(pct, floor).drifts(published, published)


def test_exposure_sums_over_and_under_published_units() -> None:
    # (published, true ATP): +3 over, -2 under, in sync
    assert exposure([(10, 7), (5, 7), (4, 4)]) == Exposure(3, 2, 1, 1)
    assert exposure([(10, 7), (5, 7)]).net_units == 1
