"""SIGKILL the worker in the middle of a reservation storm and start it again."""

from __future__ import annotations

import signal
import time
import uuid

from stocksync.bootstrap import file_topology
from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.domain.state import SkuRow
from stocksync.replay import replay
from tests.integration.reservation_clients import client_pool, storm
from tests.integration.support import (
    WorkerProcess,
    http_json,
    read_log,
    read_topic,
    wait_for,
)
from tests.integration.test_reservations import stock

SKU = "CRASH-1"


def test_sigkill_mid_storm_loses_no_hold_and_doubles_none(fresh_worker: WorkerProcess) -> None:
    worker = fresh_worker
    stock(worker, SKU, "dc-2", 100)
    keys = [f"crash-{uuid.uuid4().hex[:12]}" for _ in range(1200)]

    # given a storm of one-unit reservations from 4 processes that retry with the same key
    with client_pool(4) as pool:
        futures = [pool.submit(storm, worker.url, SKU, "web", keys[i::4], 6, 240) for i in range(4)]
        # when the worker is killed once some units are held, and started again
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, view = worker.atp(SKU)
            if view["locations"]["dc-2"]["reserved"] >= 30:
                break
            time.sleep(0.05)
        worker.stop(signal.SIGKILL)
        time.sleep(2)
        worker.start()
        results = [r for f in futures for r in f.result()]

    # then every client got an answer (after retries with its key), never a server error
    statuses = [status for _, status, _, _, _ in results]
    assert set(statuses) <= {201, 409}, sorted(set(statuses))
    held = {key for key, status, _, _, _ in results if status == 201}
    # and exactly 100 units are held, one per accepted key: none lost, none doubled
    assert len(held) == 100
    view = worker.atp(SKU)[1]
    assert view["locations"]["dc-2"]["reserved"] == 100
    assert view["locations"]["dc-2"]["oversold"] == 0
    for key in held:
        status, got = http_json(f"{worker.url}/v1/reservations/{key}")
        assert (status, got["status"], got["quantity"]) == (200, "held", 1), key
    retried = sum(1 for _, _, _, attempts, _ in results if attempts > 1)
    print(f"\n{retried} of {len(results)} requests were retried across the crash")

    # and the table equals a replay of the log from offset 0
    s = worker.settings
    log = read_log(s.bootstrap_servers, s.topics.stock_events)
    log += read_log(s.bootstrap_servers, s.topics.reservation_commands)
    replayed = replay(log, file_topology(s))[SKU]
    assert set(replayed.holds) == held

    def changelog_row() -> SkuRow | None:
        rows = [
            v
            for k, v in read_topic(s.bootstrap_servers, s.topics.atp_changelog)
            if k == SKU.encode()
        ]
        return row_from_bytes(rows[-1]) if rows and rows[-1] else None

    # Byte for byte: quantities, holds and their expiries, answers, revision and the offset of
    # the last command. A command lost between the log and the fold (as faust's recovery once
    # dropped queued input, streams/faust_fixes.py) leaves a hold with its retry's expiry here.
    wanted = row_to_bytes(replayed)
    wait_for(
        lambda: (live := changelog_row()) is not None and row_to_bytes(live) == wanted,
        15,
        "the changelog's row to equal the replay byte for byte",
    )
    assert worker.metrics()["stocksync_input_gaps_total"] == 0
