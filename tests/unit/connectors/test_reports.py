"""Drift checks of what a channel reports it displays (src/stocksync/connectors/reports.py)."""

from __future__ import annotations

import time

from connectors.fakes import (
    CHANNEL,
    FakeProducer,
    acknowledge,
    connector_config,
    connector_state,
    q,
)
from stocksync.codec.outputs import ALERT_TYPE_HEADER, decode_alert
from stocksync.connectors.plan import Reason
from stocksync.connectors.reports import ReportChecker, Verdict
from stocksync.connectors.state import ConnectorState

ALERTS = "stocksync.alerts"


def checker(state: ConnectorState, producer: FakeProducer) -> ReportChecker:
    return ReportChecker(state, connector_config(), producer, ALERTS)


def test_a_tampered_listing_raises_a_drift_alert_and_is_repaired_first() -> None:
    state, producer = connector_state(), FakeProducer()
    acknowledge(state, q("POS-1", 19, 4))
    acknowledge(state, q("B", 3, 1))
    state.plan.offer(q("B", 2, 2), time.monotonic())  # an ordinary decrease, waiting
    verdict = checker(state, producer).check("POS-1", displayed=40, reported_at=1234)
    assert verdict is Verdict.DRIFT
    [alert] = producer.on(ALERTS)
    assert alert.key == b"POS-1"
    assert alert.headers == [(ALERT_TYPE_HEADER, b"DRIFT")]
    record = decode_alert(alert.value)
    assert (record["type"], record["channel"], record["sku"]) == ("DRIFT", CHANNEL, "POS-1")
    assert (record["quantity"], record["displayed"], record["threshold"]) == (19, 40, 1)
    assert record["revision"] == 4
    assert state.counters["drift_alerts"] == 1
    # the acknowledged value goes out again, ahead of ordinary changes
    push = state.plan.next_push(time.monotonic())
    assert push is not None
    assert (push.value.sku, push.value.quantity, push.reason) == ("POS-1", 19, Reason.DRIFT_REPAIR)
    assert state.wake.is_set()


def test_a_difference_within_the_rule_is_ok_and_raises_nothing() -> None:
    state, producer = connector_state(), FakeProducer()
    acknowledge(state, q("A", 100, 1))
    assert checker(state, producer).check("A", displayed=105, reported_at=0) is Verdict.OK
    assert producer.produced == []
    assert state.plan.backlog() == 0


def test_a_report_racing_a_push_is_not_checked() -> None:
    state, producer = connector_state(), FakeProducer()
    acknowledge(state, q("JUST", 10, 1), seconds_ago=0.1)  # within the 2 s grace
    acknowledge(state, q("SENDING", 10, 1))
    state.plan.offer(q("SENDING", 4, 2), time.monotonic())
    state.plan.next_push(time.monotonic())  # 4 is on the wire
    check = checker(state, producer)
    assert check.check("JUST", displayed=99, reported_at=0) is Verdict.SETTLING
    assert check.check("SENDING", displayed=4, reported_at=0) is Verdict.SETTLING
    assert producer.produced == []


def test_a_sku_the_channel_never_acknowledged_is_unknown() -> None:
    state, producer = connector_state(), FakeProducer()
    assert checker(state, producer).check("NEW", displayed=5, reported_at=0) is Verdict.UNKNOWN


def test_a_report_is_answered_per_verdict_and_counted() -> None:
    state, producer = connector_state(), FakeProducer()
    acknowledge(state, q("A", 10, 1))
    acknowledge(state, q("B", 10, 1))
    verdicts = checker(state, producer).check_all([("A", 10), ("B", 0), ("C", 1)], reported_at=0)
    assert verdicts == {"ok": ["A"], "drift": ["B"], "unknown": ["C"]}
    assert state.counters["reports"] == 3
