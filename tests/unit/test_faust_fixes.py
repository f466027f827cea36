"""The faust workaround in streams/faust_fixes.py, on faust's and mode's own objects."""

from __future__ import annotations

import faust
from mode.utils.queues import FlowControlQueue

from stocksync.streams.faust_fixes import keep_queued_input_on_resume


def flowing_app(name: str, workaround: bool) -> tuple[faust.App, FlowControlQueue[str]]:
    """An app with flow resumed and a queue built as faust builds a topic's (faust/channels.py:
    emptied by flow control on resume), holding one message fetched after that resume."""
    app = faust.App(name, broker="kafka://127.0.0.1:1")
    if workaround:
        keep_queued_input_on_resume(app)
    queue: FlowControlQueue[str] = FlowControlQueue(
        maxsize=100, flow_control=app.flow_control, clear_on_resume=True
    )
    app.flow_control.resume()
    queue.put_nowait("message fetched after the stream partitions were resumed")
    return app, queue


def test_faust_alone_empties_a_queue_when_flow_that_is_already_active_resumes_again() -> None:
    # What the workaround is for; if a faust upgrade stops doing this, the workaround can go.
    app, queue = flowing_app("faust-fixes-plain", workaround=False)
    app.flow_control.resume()  # on_recovery_completed, after the seek
    assert queue.qsize() == 0


def test_a_resume_while_flowing_keeps_the_queued_input() -> None:
    app, queue = flowing_app("faust-fixes-kept", workaround=True)
    app.flow_control.resume()
    assert queue.qsize() == 1


def test_input_queued_before_a_rebalance_is_still_dropped_when_flow_resumes() -> None:
    # Suspended -> active: what is queued belongs to the previous assignment (the stream also
    # skips it by generation); it is fetched again from the committed offset.
    app, queue = flowing_app("faust-fixes-stale", workaround=True)
    app.flow_control.suspend()
    assert not app.flow_control.is_active()
    app.flow_control.resume()
    assert queue.qsize() == 0
    assert app.flow_control.is_active()
