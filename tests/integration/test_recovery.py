"""Stop the worker (SIGTERM, SIGKILL), restart it: the table recovers, equal to before."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from stocksync.bootstrap import file_topology
from stocksync.channels.producer import ChannelProducer
from stocksync.codec.rows import row_to_bytes
from stocksync.domain.events import EventKind as K
from stocksync.replay import replay
from tests.integration.support import (
    WorkerProcess,
    read_log,
    read_topic,
    unique_settings,
    wait_for,
)
from tests.integration.test_spine import assert_worker_matches, produce_retail_day

SKUS = [f"REC-{i}" for i in range(6)]


def wait_caught_up(worker: WorkerProcess, before: dict[str, Any]) -> None:
    for sku, view in before.items():
        worker.wait_revision(sku, view["revision"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restart_after_signal_recovers_the_same_table(
    fresh_worker: WorkerProcess, sig: signal.Signals
) -> None:
    # given a worker that applied a day of events
    ledger, _ = produce_retail_day(fresh_worker, SKUS, seed=21)
    before = assert_worker_matches(fresh_worker, ledger, SKUS)

    # when it is stopped with the signal and started again on the same state folder
    fresh_worker.stop(sig)
    fresh_worker.start()

    # then, once it has caught up with what was redelivered, every row is exactly as before
    wait_caught_up(fresh_worker, before)
    assert fresh_worker.batch(SKUS)["items"] == before
    if sig == signal.SIGTERM:
        # a clean stop commits its offsets: nothing is delivered twice
        assert fresh_worker.duplicates() == 0

    # and it keeps folding new events on top of the recovered rows
    more, _ = produce_retail_day(fresh_worker, SKUS[:2], seed=22)
    view = fresh_worker.wait_revision(SKUS[0], before[SKUS[0]]["revision"] + more.applied[SKUS[0]])
    assert view["revision"] == before[SKUS[0]]["revision"] + more.applied[SKUS[0]]


def test_lost_local_state_is_rebuilt_from_the_changelog(fresh_worker: WorkerProcess) -> None:
    # given a worker that applied a day of events and was killed
    ledger, _ = produce_retail_day(fresh_worker, SKUS, seed=23)
    before = assert_worker_matches(fresh_worker, ledger, SKUS)
    fresh_worker.stop(signal.SIGKILL)

    # when its RocksDB folder is lost (a new pod, a new disk) and it starts again
    shutil.rmtree(fresh_worker.settings.data_dir)
    fresh_worker.start()

    # then the table is rebuilt from the changelog topic (plus the redelivered tail of events
    # whose offsets were not yet committed) and equals the state before
    wait_caught_up(fresh_worker, before)
    assert fresh_worker.batch(SKUS)["items"] == before
    # by the bulk restore, into the folders faust then opens (not by faust's own slow path)
    assert "bulk_restored" in fresh_worker.log_path.read_text(errors="replace")


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk-restore", "faust-restore"])
def test_both_restore_paths_build_the_same_table(
    kafka_bootstrap: str, tmp_path: Path, bulk: bool
) -> None:
    # given a worker that folded a day of events, then lost its folder
    settings = unique_settings(kafka_bootstrap, tmp_path / "state", bulk_restore=bulk)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        ledger, _ = produce_retail_day(worker, SKUS, seed=29)
        before = assert_worker_matches(worker, ledger, SKUS)
        worker.stop(signal.SIGTERM)
        shutil.rmtree(settings.data_dir)

        # when it starts again, restoring with librdkafka or with faust
        worker.start()

        # then both give the table it had, and only the bulk path says it ran
        assert worker.batch(SKUS)["items"] == before
        assert ("bulk_restored" in worker.log_path.read_text(errors="replace")) is bulk
    finally:
        if worker.process and worker.process.poll() is None:
            worker.stop(signal.SIGKILL)


def test_a_hold_taken_before_a_restart_still_expires(fresh_worker: WorkerProcess) -> None:
    from tests.integration.reservation_clients import reserve_once
    from tests.integration.support import http_json, wait_for
    from tests.integration.test_reservations import stock

    # given a hold whose time runs out while the worker is down
    worker = fresh_worker
    stock(worker, "REC-HOLD", "dc-2", 4)
    body = {"channel": "web", "sku": "REC-HOLD", "quantity": 3, "ttl_seconds": 2}
    assert reserve_once(worker.url, body, "rec-hold-1")[0] == 201
    worker.stop(signal.SIGTERM)

    # when the worker starts again from its own RocksDB files
    worker.start()

    # then it finds the hold in its table, writes the EXPIRE, and the units come back
    wait_for(
        lambda: http_json(f"{worker.url}/v1/reservations/rec-hold-1")[1].get("status") == "expired",
        20,
        "the hold taken before the restart to expire",
    )
    assert worker.atp("REC-HOLD")[1]["locations"]["dc-2"]["reserved"] == 0


def test_sigkill_while_events_stream_in_loses_none(fresh_worker: WorkerProcess) -> None:
    """Events are not retried by anyone: one lost between the log and the table stays lost."""
    worker = fresh_worker
    s = worker.settings
    skus = [f"FLOW-{i}" for i in range(40)]
    stop = threading.Event()
    sent: list[int] = []

    def produce() -> None:
        # given a warehouse receiving stock for 40 SKUs at about 1,000 events a second
        wms = ChannelProducer(s.bootstrap_servers, "wms", s.topics)
        n = 0
        while not stop.is_set():
            for _ in range(20):
                wms.emit(K.RECEIVED, skus[n % len(skus)], "dc-1", 1 + n % 3)
                n += 1
            wms.flush()
            time.sleep(0.02)
        wms.flush()
        sent.append(n)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        # when the worker is killed mid-stream and started again while events keep coming
        wait_for(
            lambda: worker.metrics()["stocksync_events_applied_total"] >= 500,
            30,
            "500 events folded",
        )
        worker.stop(signal.SIGKILL)
        time.sleep(1)
        worker.start()
        time.sleep(2)
    finally:
        stop.set()
        producer.join()

    # then every SKU's row equals a replay of the log, byte for byte: no event lost or doubled
    log = read_log(s.bootstrap_servers, s.topics.stock_events)
    assert len(log) == sent[0]
    replayed = {sku: row_to_bytes(row) for sku, row in replay(log, file_topology(s)).items()}

    def changelog_matches() -> bool:
        live = {
            k.decode(): v
            for k, v in read_topic(s.bootstrap_servers, s.topics.atp_changelog)
            if k is not None and v is not None
        }
        return all(live.get(sku) == replayed[sku] for sku in skus)

    wait_for(changelog_matches, 30, "the changelog's rows to equal the replay")
    items = worker.batch(skus)["items"].values()
    total = sum(view["locations"]["dc-1"]["on_hand"] for view in items)
    assert total == sum(1 + n % 3 for n in range(sent[0]))
    assert worker.metrics()["stocksync_input_gaps_total"] == 0
