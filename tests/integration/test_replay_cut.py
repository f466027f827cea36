"""`stocksync replay` at the live table's cut: SAME while events stream in, DIFFERENT naming the
field when the live table is wrong, and a row that is behind what the worker committed is
caught too. Real worker, real broker, the CLI as a subprocess. A test that tampers with the
live table's changelog puts the true row back when it is done."""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from confluent_kafka import Producer
from msgspec.structs import replace

from stocksync.adapters.kafka import clients
from stocksync.channels.producer import ChannelProducer
from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.config import Settings
from stocksync.domain.events import EventKind
from stocksync.domain.state import SkuRow
from stocksync.replay import committed_offsets, murmur2_partition
from tests.integration.support import WorkerProcess, http_json, read_topic, wait_for
from tests.integration.test_cli import cli

RATE_PER_S = 500
SKUS = [f"RCUT-{i:02d}" for i in range(40)]
LOCATIONS = ("dc-1", "dc-2", "store-1")


@dataclass
class Traffic:
    """Channels sending stock and sale events at RATE_PER_S (and a checkout reserving at a
    location now and then) from threads, until stopped."""

    worker: WorkerProcess
    sent: int = 0
    reservations: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)

    def run_events(self) -> None:
        s = self.worker.settings
        rng = random.Random(13)
        sources = {n: ChannelProducer(s.bootstrap_servers, n, s.topics) for n in ("wms", "web")}
        sources["pos"] = ChannelProducer(s.bootstrap_servers, "pos", s.topics)
        # reserved units per (sku, location) by sale events: released and fulfilled only
        # from these, so no release is clamped at 0 (the only order-dependent sale outcome)
        reserved: dict[tuple[str, str], int] = {}
        try:
            started = time.monotonic()
            while not self.stop.is_set():
                for _ in range(10):
                    sku, loc = rng.choice(SKUS), rng.choice(LOCATIONS)
                    held = reserved.get((sku, loc), 0)
                    roll = rng.random()
                    if roll < 0.25:
                        sources["wms"].emit(EventKind.RECEIVED, sku, loc, rng.randint(1, 3))
                    elif roll < 0.55:
                        sources["pos"].emit(EventKind.SOLD, sku, loc, 1)
                    elif roll < 0.8 or not held:
                        sources["web"].emit(EventKind.RESERVED, sku, loc, 1)
                        reserved[(sku, loc)] = held + 1
                    else:
                        kind = EventKind.RELEASED if roll < 0.9 else EventKind.FULFILLED
                        sources["web"].emit(kind, sku, loc, 1)
                        reserved[(sku, loc)] = held - 1
                    self.sent += 1
                # paced against the start, so the rate holds however long a send took
                ahead = self.sent / RATE_PER_S - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.errors.append(exc)
        finally:
            for producer in sources.values():
                producer.flush()

    def run_reservations(self) -> None:
        # at a named location, so the hold's lines do not depend on the order the worker
        # interleaved them with stock events (the replay interleaves by timestamp)
        rng = random.Random(14)
        try:
            while not self.stop.wait(0.1):
                body = {"channel": "web", "sku": rng.choice(SKUS), "quantity": 1}
                body["location"] = rng.choice(["dc-1", "dc-2"])
                status, reply = http_json(f"{self.worker.url}/v1/reservations", body)
                assert status == 201, reply
                self.reservations += 1
        except BaseException as exc:
            self.errors.append(exc)


def stock_everything(settings: Settings) -> None:
    """Plenty of units everywhere: no sale runs short, no hold is refused, in any order."""
    with ChannelProducer(settings.bootstrap_servers, "wms-initial", settings.topics) as wms:
        for sku in SKUS:
            for loc in LOCATIONS:
                wms.emit(EventKind.RECEIVED, sku, loc, 1000)


@pytest.fixture
def traffic(worker: WorkerProcess) -> Iterator[Traffic]:
    stock_everything(worker.settings)
    worker.wait_revision(SKUS[-1], len(LOCATIONS))
    flow = Traffic(worker)
    threads = [
        threading.Thread(target=flow.run_events, daemon=True),
        threading.Thread(target=flow.run_reservations, daemon=True),
    ]
    for thread in threads:
        thread.start()
    yield flow
    flow.stop.set()
    for thread in threads:
        thread.join(30)
    assert not flow.errors, flow.errors


def test_replay_while_events_stream_in_is_the_same_as_the_live_table(
    worker: WorkerProcess, traffic: Traffic
) -> None:
    # given events streaming in at RATE_PER_S, reservations being taken, the worker folding
    wait_for(lambda: traffic.sent > RATE_PER_S and traffic.reservations > 5, 30, "traffic")
    left_out = 0
    for _ in range(3):
        # when `stocksync replay` runs meanwhile
        before = traffic.sent
        result = cli(worker.settings, "replay")
        during = traffic.sent - before
        # then it reports SAME: each SKU is compared where its live row stands
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        summary = result.stdout.strip().splitlines()[-1]
        assert summary.startswith("SAME: "), summary
        assert during > 100, f"only {during} events were sent while replay ran"
        waiting = re.search(r"(\d+) newer input record\(s\)", summary)
        left_out += int(waiting.group(1)) if waiting else 0
    # and the runs did meet input the worker had not folded yet (what made replay DIFFERENT
    # before it cut at the live rows)
    assert left_out > 0


def changelog_row(settings: Settings, sku: str) -> tuple[SkuRow, list[SkuRow]]:
    """A SKU's live row (its newest changelog value) and every earlier value, oldest first."""
    values = [
        row_from_bytes(value)
        for key, value in read_topic(settings.bootstrap_servers, settings.topics.atp_changelog)
        if key == sku.encode() and value is not None
    ]
    assert values, f"no changelog row for {sku}"
    return values[-1], values[:-1]


def write_live_row(settings: Settings, row: SkuRow) -> None:
    """Put a row in the live table's changelog, as a bug or a bad restore would."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    key = row.sku.encode()
    producer.produce(
        settings.topics.atp_changelog,
        key=key,
        value=row_to_bytes(row),
        partition=murmur2_partition(key, settings.partitions),
    )
    assert producer.flush(30) == 0


def fold_a_few(worker: WorkerProcess, sku: str, events: int) -> None:
    """Events folded one at a time, so each leaves a changelog record of its own."""
    source = f"tamper-{uuid.uuid4().hex[:6]}"
    s = worker.settings
    with ChannelProducer(s.bootstrap_servers, source, s.topics) as wms:
        for i in range(events):
            wms.emit(EventKind.RECEIVED, sku, "dc-1", 10 + i)
            wms.flush()
            worker.wait_revision(sku, i + 1)


def wait_committed(settings: Settings, timeout: float = 60) -> None:
    """Until the worker group has committed every input record there is."""
    consumer = clients.log_reader(settings, "test-committed")
    try:
        topics = settings.topics.input_topics
        partitions = {t: clients.partitions_of(consumer, t) for t in topics}

        def behind() -> dict[tuple[str, int], tuple[int, int]]:
            committed = committed_offsets(settings, partitions)
            ends = {
                (t, p): hw for t in topics for p, (_, hw) in clients.watermarks(consumer, t).items()
            }
            return {
                tp: (committed.get(tp, 0), end)
                for tp, end in ends.items()
                if committed.get(tp, 0) < end
            }

        deadline = time.monotonic() + timeout
        while late := behind():
            assert time.monotonic() < deadline, (
                f"the worker has not committed (committed, end): {late}"
            )
            time.sleep(0.5)
    finally:
        consumer.close()


def differing_lines(stdout: str) -> list[str]:
    return [line for line in stdout.strip().splitlines()[:-1] if not line.startswith("note: ")]


def test_a_tampered_live_row_is_different_naming_the_field(worker: WorkerProcess) -> None:
    # given a SKU whose live row is rewritten with 5 more units at dc-1 (all else kept)
    sku = "RCUT-TAMPERED"
    fold_a_few(worker, sku, 3)
    live, _ = changelog_row(worker.settings, sku)
    dc1 = live.locations["dc-1"]
    on_hand = dc1.on_hand
    locations = {**live.locations, "dc-1": replace(dc1, on_hand=on_hand + 5)}
    tampered = replace(live, locations=locations)
    write_live_row(worker.settings, tampered)

    # when replay runs, then it names that SKU's field, with both values, and nothing else
    try:
        result = cli(worker.settings, "replay")
    finally:
        write_live_row(worker.settings, live)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert differing_lines(result.stdout) == [
        f"{sku} locations.dc-1.on_hand: live {on_hand + 5}, replay {on_hand}"
    ]
    assert result.stdout.strip().splitlines()[-1].startswith("DIFFERENT: 1 of ")


def test_a_live_row_behind_what_the_worker_committed_is_different(
    fresh_worker: WorkerProcess,
) -> None:
    # given a SKU whose live row is replaced by its previous value (a lost update: an old row,
    # consistent with itself), once the worker has committed the input that followed it (a
    # worker of its own: faust's commits trail far behind the fold after sustained traffic)
    worker = fresh_worker
    sku = "RCUT-STALE"
    fold_a_few(worker, sku, 2)
    wait_committed(worker.settings)
    live, earlier = changelog_row(worker.settings, sku)
    assert earlier, "the worker wrote one changelog record per event here"
    stale = earlier[-1]
    assert stale.revision < live.revision
    write_live_row(worker.settings, stale)

    # when replay runs, then the committed input the stale row lacks shows as a difference
    result = cli(worker.settings, "replay")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    lines = differing_lines(result.stdout)
    assert f"{sku} revision: live {stale.revision}, replay {live.revision}" in lines
    assert any(line.startswith(f"{sku} locations.dc-1.on_hand: live ") for line in lines)
    assert any(line.startswith(f"{sku} sources.tamper-") for line in lines)
