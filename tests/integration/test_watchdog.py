"""A worker that cannot make progress says so: not ready, then not live, then ready again once
it can go on. The stall is made on a real broker, with no hook in the product: a client quota
throttles the worker's output producer, so a batch's records wait for their acknowledgements
(the worker never acks input before that) while more input arrives."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stocksync.channels.producer import ChannelProducer
from stocksync.domain.events import EventKind
from tests.integration.support import REPO, WorkerProcess, http_json, unique_settings, wait_for

STALL_AFTER_S = 3
FAIL_AFTER_S = 3


def output_quota(
    bootstrap: str, client_id: str, bytes_per_s: int | None, check: bool = True
) -> None:
    """Set (or remove) a produce quota on one client id with Kafka's own admin tool."""
    change = (
        ["--add-config", f"producer_byte_rate={bytes_per_s}"]
        if bytes_per_s is not None
        else ["--delete-config", "producer_byte_rate"]
    )
    subprocess.run(
        [
            "java",
            "-cp",
            str(REPO / ".kafka" / "lib" / "*"),
            "kafka.admin.ConfigCommand",
            "--bootstrap-server",
            bootstrap,
            "--alter",
            "--entity-type",
            "clients",
            "--entity-name",
            client_id,
            *change,
        ],
        check=check,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def watched_worker(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkerProcess]:
    monkeypatch.setenv("STOCKSYNC_STALL_AFTER_S", str(STALL_AFTER_S))
    monkeypatch.setenv("STOCKSYNC_STALL_FAIL_AFTER_S", str(FAIL_AFTER_S))
    settings = unique_settings(kafka_bootstrap, tmp_path / "state")
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        yield worker
    finally:
        worker.stop(signal.SIGTERM)
        # (already removed when the test got that far)
        output_quota(kafka_bootstrap, f"{settings.app_id}-outputs", None, check=False)


def probe(worker: WorkerProcess, path: str) -> tuple[int, dict[str, object]]:
    status, body = http_json(f"{worker.url}{path}", timeout=2)
    return status, body


def test_a_stalled_worker_is_not_ready_then_not_live_and_recovers(
    watched_worker: WorkerProcess, kafka_bootstrap: str
) -> None:
    worker = watched_worker
    settings = worker.settings
    # given a worker whose outputs Kafka acknowledges only a trickle at a time
    output_quota(kafka_bootstrap, f"{settings.app_id}-outputs", 512)
    channel = ChannelProducer(kafka_bootstrap, "wms", settings.topics)
    for i in range(300):
        channel.emit(EventKind.RECEIVED, f"STALL-{i:03d}", "dc-1", 5)
    channel.flush()
    wait_for(lambda: worker.metrics().get("stocksync_events_applied_total", 0) > 0, 60, "a fold")
    # when more input arrives while the folded batch waits for its acknowledgements
    for i in range(300):
        channel.emit(EventKind.RECEIVED, f"STALL-{i:03d}", "dc-2", 5)
    channel.flush()
    # then the worker stops saying it is ready, then stops saying it is live
    stalled = wait_for(
        lambda: (s := probe(worker, "/readyz"))[0] == 503 and s[1].get("stalled") and s[1],
        60,
        "/readyz 503 with stalled: true",
    )
    assert stalled["ready"] is False
    assert worker.metrics()["stocksync_consumer_lag_total"] > 0
    wait_for(lambda: probe(worker, "/livez")[0] == 503, 30, "/livez 503")
    assert "fold_stalled" in worker.tail(400)
    # and when Kafka acknowledges again, it folds everything and is ready and live again
    output_quota(kafka_bootstrap, f"{settings.app_id}-outputs", None)
    wait_for(
        lambda: worker.metrics().get("stocksync_events_applied_total", 0) >= 600,
        180,
        "every event folded",
    )
    wait_for(lambda: probe(worker, "/readyz")[0] == 200, 30, "/readyz 200")
    assert probe(worker, "/livez")[0] == 200
    assert worker.process is not None and worker.process.poll() is None
