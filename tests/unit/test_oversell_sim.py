"""The oversell simulation (bench/oversell.py): small runs, no Kafka, no timing assertions."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
oversell = importlib.import_module("bench.oversell")

SMALL = oversell.Params(skus=60, seed=4)
STREAMING = oversell.Strategy("streaming")
RESERVING = oversell.Strategy("streaming+reservations", reserve=True)


def batch(minutes: int) -> Any:
    return oversell.Strategy(f"batch-{minutes}m", interval_min=minutes)


def without_timing(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in results]


def test_same_seed_same_day() -> None:
    chosen = [batch(15), STREAMING, RESERVING]
    first = oversell.simulate(SMALL, chosen)
    again = oversell.simulate(SMALL, chosen)
    assert without_timing(first) == without_timing(again)
    assert first[0]["orders"] > 0


def test_another_seed_another_day() -> None:
    one = oversell.make_workload(SMALL)
    other = oversell.make_workload(oversell.Params(skus=60, seed=5))
    assert one.customers != other.customers


def test_reservations_never_oversell_own_checkout() -> None:
    for seed in (1, 2, 3):
        (result,) = oversell.simulate(oversell.Params(skus=60, seed=seed), [RESERVING])
        assert result["own_checkout_oversold"] == 0
        assert result["fold_matches_truth"]


def test_reservations_catch_what_a_slow_stream_oversells() -> None:
    # Channels two minutes behind the stream: web/app oversell without a hold, never with one.
    slow = oversell.Params(skus=60, seed=4, propagation_s=120)
    streaming, reserving = oversell.simulate(slow, [STREAMING, RESERVING])
    assert streaming["own_checkout_oversold"] > 0
    assert reserving["own_checkout_oversold"] == 0
    assert reserving["rejected_at_checkout"] > 0
    assert reserving["commands"] > 0


def test_longer_batch_interval_oversells_at_least_as_much() -> None:
    results = oversell.simulate(SMALL, [batch(1), batch(15), batch(240)])
    oversold = [r["oversold"] for r in results]
    assert oversold == sorted(oversold)
    assert oversold[-1] > oversold[0]


def test_fold_flags_every_oversold_order_and_matches_truth() -> None:
    # Cross-check of the simulation's truth against the project's fold: each oversold order is
    # one OversellDetected alert, and at close the rows hold the physical on-hand and open orders.
    for result in oversell.simulate(SMALL, [batch(60), STREAMING, RESERVING]):
        assert result["oversell_alerts"] == result["oversold"]
        assert result["fold_matches_truth"]
