"""Drift: a channel displays a quantity other than the one it was told.

The rule (BRIEF §3): a displayed quantity drifts when it differs from the published one by more
than `percent` of the published quantity, with an absolute floor of `floor_units` so that small
quantities do not alert on every unit. A zero crossing always drifts: showing stock we do not
have (published 0, displayed > 0) is how overselling happens, and showing 0 when we have stock
loses sales.

Exposure of a channel: published minus true ATP, per SKU. Positive units are promised to the
channel that we no longer have (oversell risk); negative units are stock the channel cannot sell.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_PERCENT = 5.0
DEFAULT_FLOOR_UNITS = 1


@dataclass(frozen=True, slots=True)
class DriftRule:
    percent: float = DEFAULT_PERCENT
    floor_units: int = DEFAULT_FLOOR_UNITS

    def allowed(self, published: int) -> int:
        """The largest difference that is not drift for this published quantity."""
        return max(self.floor_units, math.floor(abs(published) * self.percent / 100))

    def drifts(self, published: int, displayed: int) -> bool:
        if (published <= 0) != (displayed <= 0):
            return True
        return abs(displayed - published) > self.allowed(published)


@dataclass(frozen=True, slots=True)
class DriftFinding:
    sku: str
    published: int
    displayed: int
    allowed: int

    @property
    def difference(self) -> int:
        """displayed - published: positive means the channel shows more than it was told."""
        return self.displayed - self.published


def assess_drift(sku: str, published: int, displayed: int, rule: DriftRule) -> DriftFinding | None:
    if not rule.drifts(published, displayed):
        return None
    return DriftFinding(sku, published, displayed, rule.allowed(published))


@dataclass(frozen=True, slots=True)
class Exposure:
    over_units: int = 0  # sum of published - true where positive: could be oversold
    under_units: int = 0  # sum of true - published where positive: cannot be sold
    skus_over: int = 0
    skus_under: int = 0

    @property
    def net_units(self) -> int:
        return self.over_units - self.under_units


def exposure(pairs: Iterable[tuple[int, int]]) -> Exposure:
    """Exposure of (published, true ATP) pairs, one per SKU."""
    over = under = skus_over = skus_under = 0
    for published, true in pairs:
        gap = published - true
        if gap > 0:
            over += gap
            skus_over += 1
        elif gap < 0:
            under -= gap
            skus_under += 1
    return Exposure(over, under, skus_over, skus_under)
