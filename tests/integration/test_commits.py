"""The worker's consumer group commits what it has folded: a restart starts where the fold
was, not a growing tail of duplicates behind it."""

from __future__ import annotations

import threading
import time

from tests.integration.support import WorkerProcess
from tests.integration.test_replay_cut import (
    LOCATIONS,
    SKUS,
    Traffic,
    stock_everything,
    wait_committed,
)

# faust commits every broker_commit_interval (2.8 s by default): a few of those
COMMITTED_WITHIN_S = 15


def test_every_folded_record_is_committed_within_seconds_of_the_last_event(
    fresh_worker: WorkerProcess,
) -> None:
    # given 500 events/s for 8 s, folded in many small batches
    stock_everything(fresh_worker.settings)
    fresh_worker.wait_revision(SKUS[-1], len(LOCATIONS))
    flow = Traffic(fresh_worker)
    sender = threading.Thread(target=flow.run_events, daemon=True)
    sender.start()
    time.sleep(8)
    flow.stop.set()
    sender.join(30)
    assert not flow.errors, flow.errors
    assert flow.sent >= 2000
    # then within a few commit intervals the group has committed every input record (each
    # commit once moved by one batch only, falling ever further behind)
    wait_committed(fresh_worker.settings, timeout=COMMITTED_WITHIN_S)
