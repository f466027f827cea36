"""Workarounds for faust-streaming 0.15.3 (pinned in pyproject.toml) behaviour that loses
input. Each says what faust does, why it loses messages, and which test guards it.
"""

from __future__ import annotations

from typing import Any


def keep_queued_input_on_resume(app: Any) -> None:
    """Stop faust's recovery from emptying the agent's queue while input is flowing.

    mode's `FlowControlEvent.resume()` empties every stream queue, and faust calls it several
    times in one recovery. `Recovery.on_recovery_completed` resumes the stream partitions (the
    fetcher starts delivering input into the agent's queue), seeks to the committed offsets,
    and only then calls `resume()` once more: whatever had been queued in between was thrown
    away while the consumer's position had already moved past it. After a restart under load
    a run of input was never folded (and, before any commit, its offsets could be committed
    past). Emptying the queues is needed only when flow goes from suspended to active: what is
    queued then belongs to the previous assignment. A resume while flow is already active now
    keeps the queue. (The tables' changelog queue is managed the same way; with no standby
    replicas it is only read during recovery.) Guarded by
    tests/integration/test_reservation_crash.py (the table equals a replay of the log after a
    SIGKILL mid-storm) and the worker's `input_gap` alarm.
    """
    flow = app.flow_control
    resume = flow.resume

    def resume_without_dropping() -> None:
        if flow.is_active():
            return  # already flowing: the queues hold current input, not stale input
        resume()

    flow.resume = resume_without_dropping
