"""Checking what a channel reports it displays against what it acknowledged (drift).

A drifting SKU raises a DRIFT alert on `<prefix>alerts`, logs `drift_detected`, and has its
acknowledged value pushed again at drift-repair priority. The rule itself is drift.py.
"""

from __future__ import annotations

import time
from enum import StrEnum

import structlog

from stocksync.codec.connectors import encode_drift_alert
from stocksync.codec.outputs import alert_headers
from stocksync.connectors.drift import DriftFinding, assess_drift
from stocksync.connectors.kafka_clients import Producing, produce
from stocksync.connectors.plan import Quantity
from stocksync.connectors.settings import ConnectorSettings
from stocksync.connectors.state import ConnectorState

log = structlog.get_logger("stocksync.connector")


class Verdict(StrEnum):
    OK = "ok"
    DRIFT = "drift"
    SETTLING = (
        "settling"  # a push of the SKU is under way or just landed: the report may predate it
    )
    UNKNOWN = "unknown"  # the channel never acknowledged a value of the SKU


class ReportChecker:
    def __init__(
        self,
        state: ConnectorState,
        config: ConnectorSettings,
        producer: Producing,
        alerts_topic: str,
    ) -> None:
        self.state = state
        self.config = config
        self.rule = config.drift_rule
        self.producer = producer
        self.alerts_topic = alerts_topic

    def check(self, sku: str, displayed: int, reported_at: int) -> Verdict:
        """Compare what the channel displays of `sku` with what it acknowledged last."""
        slot = self.state.plan.slots.get(sku)
        if slot is None or slot.acked is None:
            return Verdict.UNKNOWN
        now = time.monotonic()
        if (
            slot.inflight is not None
            or slot.pending is not None
            or now - slot.acked_at < self.config.drift_grace_s
        ):
            return Verdict.SETTLING
        finding = assess_drift(sku, slot.acked.quantity, displayed, self.rule)
        if finding is None:
            return Verdict.OK
        self._alert(finding, slot.acked, reported_at)
        self.state.plan.repair(sku, now)
        self.state.wake.set()
        return Verdict.DRIFT

    def check_all(self, items: list[tuple[str, int]], reported_at: int) -> dict[str, list[str]]:
        """Verdict -> SKUs, for one report of (sku, displayed quantity) pairs."""
        verdicts: dict[str, list[str]] = {}
        for sku, displayed in items:
            verdicts.setdefault(self.check(sku, displayed, reported_at).value, []).append(sku)
        self.state.counters["reports"] += len(items)
        return verdicts

    def _alert(self, finding: DriftFinding, published: Quantity, reported_at: int) -> None:
        self.state.counters["drift_alerts"] += 1
        log.warning(
            "drift_detected",
            channel=self.config.channel,
            sku=finding.sku,
            published=published.quantity,
            displayed=finding.displayed,
            allowed=finding.allowed,
            revision=published.revision,
        )
        payload = encode_drift_alert(
            channel=self.config.channel,
            sku=finding.sku,
            published=published.quantity,
            displayed=finding.displayed,
            allowed=finding.allowed,
            revision=published.revision,
            policy_version=published.policy_version,
            as_of=published.as_of,
            reported_at=reported_at,
        )
        produce(
            self.producer,
            self.alerts_topic,
            finding.sku.encode(),
            payload,
            headers=alert_headers("DRIFT"),
        )
