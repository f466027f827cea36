"""Two workers in one group: each owns half the partitions, and either answers for every SKU
(a request for a SKU the other owns is forwarded to it)."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from stocksync.channels.producer import ChannelProducer
from stocksync.domain.events import EventKind
from stocksync.domain.reservations import MAX_ANSWERS
from stocksync.service.admission import murmur2_partition
from tests.integration.reservation_clients import reserve_once
from tests.integration.support import (
    WorkerProcess,
    http_json,
    partitions,
    wait_for,
)

SKUS = [f"TWO-{i:02d}" for i in range(24)]
OLD_RETRY_SKU = "TWO-OLD-RETRY"


def request(worker: WorkerProcess, method: str, path: str) -> tuple[int, Any]:
    req = urllib.request.Request(f"{worker.url}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_either_worker_answers_for_every_sku(pair: tuple[WorkerProcess, WorkerProcess]) -> None:
    a, b = pair
    # given two workers that split the partitions between them
    wait_for(
        lambda: (
            partitions(a)
            and partitions(b)
            and not partitions(a) & partitions(b)
            and len(partitions(a) | partitions(b)) == a.settings.partitions
        ),
        90,
        "the group to split the partitions between the two workers",
    )
    with ChannelProducer(a.settings.bootstrap_servers, "wms", a.settings.topics) as wms:
        for i, sku in enumerate(SKUS):
            wms.emit(EventKind.RECEIVED, sku, "dc-2", 10 + i)
        wms.emit(EventKind.RECEIVED, OLD_RETRY_SKU, "dc-2", 200)

    # then each worker answers for every SKU, its own and the other's, with the same numbers
    for i, sku in enumerate(SKUS):
        view = a.wait_revision(sku, 1)
        assert view["locations"]["dc-2"]["on_hand"] == 10 + i
        status, other = b.atp(sku)
        assert status == 200 and other == view
        status, web = b.atp(sku, channel="web")
        assert status == 200 and web["atp"] == 10 + i

    # and a batch asked of one worker comes back whole, none reported unknown
    for worker in (a, b):
        answer = worker.batch([*SKUS, "TWO-NEVER"])
        assert sorted(answer["items"]) == SKUS
        assert answer["unknown"] == ["TWO-NEVER"]
        assert {
            sku: item["locations"]["dc-2"]["on_hand"] for sku, item in answer["items"].items()
        } == {sku: 10 + i for i, sku in enumerate(SKUS)}

    # and a reservation made through either worker can be read and released through the other
    for i, sku in enumerate(SKUS[:6]):
        made_at, other = (a, b) if i % 2 else (b, a)
        key = f"two-{i}"
        body = {"channel": "web", "sku": sku, "quantity": 2}
        status, held = reserve_once(made_at.url, body, key)
        assert status == 201, held
        for worker in (a, b):
            status, got = http_json(f"{worker.url}/v1/reservations/{key}")
            assert (status, got["status"], got["sku"]) == (200, "held", sku), worker.url
        status, released = request(other, "DELETE", f"/v1/reservations/{key}")
        assert status == 200 and released["status"] == "released", released

    # and a retry sent to the worker that does not own the SKU, older than the owner's row
    # remembers answers for, gets its first answer and takes no second hold
    owned_by_a = murmur2_partition(OLD_RETRY_SKU.encode(), a.settings.partitions) in partitions(a)
    owner, elsewhere = (a, b) if owned_by_a else (b, a)
    body = {"channel": "web", "sku": OLD_RETRY_SKU, "quantity": 2}
    status, first = reserve_once(elsewhere.url, body, "two-old")
    assert status == 201, first
    assert request(elsewhere, "POST", "/v1/reservations/two-old/confirm")[0] == 200
    for i in range(MAX_ANSWERS + 6):
        assert reserve_once(elsewhere.url, {**body, "quantity": 1}, f"two-newer-{i}")[0] == 201
    assert reserve_once(elsewhere.url, body, "two-old") == (201, first)
    assert owner.atp(OLD_RETRY_SKU)[1]["locations"]["dc-2"]["reserved"] == 2 + MAX_ANSWERS + 6

    # when one worker stops, the other takes every partition over and still answers for all
    b.stop(signal.SIGTERM)
    wait_for(lambda: len(partitions(a)) == a.settings.partitions, 90, "worker a to own all")
    assert sorted(a.batch(SKUS)["items"]) == SKUS


def read_with_headers(worker: WorkerProcess, sku: str) -> tuple[int, str | None, Any]:
    req = urllib.request.Request(f"{worker.url}/v1/atp/{sku}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get("Retry-After"), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Retry-After"), json.loads(exc.read() or b"{}")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None, None  # the killed worker's port: no answer at all


def test_reads_through_both_workers_never_go_back_while_one_is_killed_and_restarted(
    pair: tuple[WorkerProcess, WorkerProcess],
) -> None:
    a, b = pair
    wait_for(
        lambda: partitions(a) and partitions(b),
        90,
        "the group to split the partitions between the two workers",
    )
    skus = [f"MONO-{i:02d}" for i in range(16)]
    stop = threading.Event()

    def send() -> None:
        # revisions keep moving on every SKU while the readers read
        with ChannelProducer(a.settings.bootstrap_servers, "wms", a.settings.topics) as wms:
            while not stop.wait(0.02):
                for sku in skus:
                    wms.emit(EventKind.RECEIVED, sku, "dc-2", 1)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answers: list[tuple[float, str, int, str | None, int | None]] = []
    try:
        wait_for(lambda: all(a.atp(s)[0] == 200 for s in skus), 30, "every SKU folded")
        deadline = time.monotonic() + 40
        killed = restarted = False
        started = time.monotonic()
        while time.monotonic() < deadline:
            elapsed = time.monotonic() - started
            if not killed and elapsed > 3:
                b.stop(signal.SIGKILL)
                killed = True
            if killed and not restarted and elapsed > 11:
                # started in the background: reads go on while it joins and recovers
                threading.Thread(target=b.start, daemon=True).start()
                restarted = True
            for worker in (a, b):
                for sku in skus:
                    status, retry, body = read_with_headers(worker, sku)
                    revision = body["revision"] if status == 200 else None
                    answers.append((time.monotonic(), sku, status, retry, revision))
    finally:
        stop.set()
        sender.join(10)

    # then every 503 says when to retry, and no SKU's revision ever goes backwards
    statuses = {status for _, _, status, _, _ in answers}
    assert statuses <= {0, 200, 503}, statuses
    assert all(retry for _, _, status, retry, _ in answers if status == 503)
    last: dict[str, int] = {}
    for _, sku, status, _, revision in answers:
        if status != 200 or revision is None:
            continue
        assert revision >= last.get(sku, 0), (sku, revision, last.get(sku))
        last[sku] = revision
    served = sum(1 for a_ in answers if a_[2] == 200)
    assert served > len(answers) // 2, f"{served} of {len(answers)} answered"
    print(
        f"\n{len(answers)} reads: {served} answered, "
        f"{sum(1 for a_ in answers if a_[2] == 503)} 503 with Retry-After, "
        f"{sum(1 for a_ in answers if a_[2] == 0)} to the killed worker's port"
    )
