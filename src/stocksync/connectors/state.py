"""What the jobs of one connector share: the push plan, the request budget, the offsets held
until their value is acknowledged, the counters shown by `/v1/status` and logged at stop, and
the event that wakes the dispatcher when there is something new to send.

Everything here is touched from the event loop only (Kafka callbacks hop onto the loop first),
so none of it needs a lock."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from stocksync.connectors.budget import TokenBucket
from stocksync.connectors.offsets import OffsetTracker
from stocksync.connectors.plan import Backoff, PushPlan
from stocksync.connectors.settings import ConnectorSettings

# In this order in `/v1/status` and in the `connector_stopped` log line.
COUNTER_NAMES = (
    "requests",
    "acknowledged",
    "rate_limited",
    "failed",
    "stale_answers",
    "rejected",
    "ledger_written",
    "restored",
    "skipped_acknowledged",
    "reports",
    "drift_alerts",
    "resyncs",
)


def new_counters() -> dict[str, int]:
    return dict.fromkeys(COUNTER_NAMES, 0)


@dataclass
class ConnectorState:
    plan: PushPlan
    bucket: TokenBucket
    tracker: OffsetTracker = field(default_factory=OffsetTracker)
    counters: dict[str, int] = field(default_factory=new_counters)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ready: bool = False  # the ledger is restored and the consumer has partitions

    @classmethod
    def of(cls, config: ConnectorSettings, low_stock: int) -> ConnectorState:
        plan = PushPlan(
            low_stock=low_stock,
            max_wait_s=config.max_wait_s,
            backoff=Backoff(config.retry_base_s, config.retry_max_s),
        )
        bucket = TokenBucket.full(config.rate_per_s, config.burst, time.monotonic())
        return cls(plan=plan, bucket=bucket)
