"""The spine on a real broker: ChannelProducer -> topics -> worker -> table -> HTTP/projection."""

from __future__ import annotations

import random
import struct
import time
import uuid
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import fastavro
from confluent_kafka import Producer

from stocksync.channels.producer import ChannelProducer
from stocksync.codec.outputs import decode_dead_letter, decode_projection
from stocksync.domain.events import EventKind, InventoryEvent
from tests.integration.support import REPO, WorkerProcess, read_topic, wait_for

SAFETY = {"dc-1": 2, "dc-2": 0, "store-1": 1, "store-2": 0}
CHANNELS = {
    "web": ["dc-1", "dc-2", "store-1"],
    "pos-store-1": ["store-1"],
    "marketplace": ["dc-1", "dc-2"],
}


@dataclass
class Ledger:
    """An independent bookkeeping of what the worker should report, written for the test."""

    on_hand: dict[tuple[str, str], int] = field(default_factory=dict)
    reserved: dict[tuple[str, str], int] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)

    def record(self, kind: EventKind, sku: str, loc: str, qty: int) -> None:
        key = (sku, loc)
        on_hand, reserved = self.on_hand.get(key, 0), self.reserved.get(key, 0)
        if kind in (EventKind.RECEIVED, EventKind.ADJUSTED):
            on_hand += qty
        elif kind == EventKind.SOLD:
            on_hand -= qty
        elif kind == EventKind.RESERVED:
            reserved += qty
        elif kind == EventKind.RELEASED:
            reserved -= qty
        elif kind == EventKind.FULFILLED:
            reserved -= qty
            on_hand -= qty
        self.on_hand[key], self.reserved[key] = on_hand, reserved
        self.applied[sku] = self.applied.get(sku, 0) + 1

    def location_atp(self, sku: str, loc: str) -> int:
        key = (sku, loc)
        return max(0, self.on_hand.get(key, 0) - self.reserved.get(key, 0) - SAFETY[loc])

    def channel_atp(self, sku: str, channel: str) -> int:
        raw = sum(self.location_atp(sku, loc) for loc in CHANNELS[channel])
        if channel == "marketplace":
            return max(0, min(raw - raw * 10 // 100 - 1, 50))
        return raw


def produce_retail_day(
    worker: WorkerProcess, skus: list[str], seed: int
) -> tuple[Ledger, list[InventoryEvent]]:
    rng = random.Random(seed)
    topics = worker.settings.topics
    bootstrap = worker.settings.bootstrap_servers
    sources = {s: ChannelProducer(bootstrap, s, topics) for s in ("wms", "web", "pos")}
    ledger = Ledger()
    sent: list[InventoryEvent] = []
    for sku in skus:
        for loc in SAFETY:
            qty = rng.randint(3, 30)
            sent.append(sources["wms"].emit(EventKind.RECEIVED, sku, loc, qty))
            ledger.record(EventKind.RECEIVED, sku, loc, qty)
    for _ in range(400):
        sku, loc = rng.choice(skus), rng.choice(list(SAFETY))
        key = (sku, loc)
        roll = rng.random()
        if roll < 0.3:
            kind, source, qty = EventKind.RESERVED, "web", rng.randint(1, 3)
        elif roll < 0.45 and ledger.reserved.get(key, 0) > 0:
            kind, source, qty = EventKind.FULFILLED, "web", rng.randint(1, ledger.reserved[key])
        elif roll < 0.55 and ledger.reserved.get(key, 0) > 0:
            kind, source, qty = EventKind.RELEASED, "web", 1
        elif roll < 0.85:
            kind, source, qty = EventKind.SOLD, "pos", rng.randint(1, 2)
        elif roll < 0.93:
            kind, source, qty = EventKind.ADJUSTED, "wms", rng.choice([-2, -1, 1, 4])
        else:
            kind, source, qty = EventKind.RECEIVED, "wms", rng.randint(5, 20)
        sent.append(
            sources[source].emit(
                kind, sku, loc, qty, reason="cycle" if kind == EventKind.ADJUSTED else None
            )
        )
        ledger.record(kind, sku, loc, qty)
    for producer in sources.values():
        producer.flush()
    return ledger, sent


def assert_worker_matches(worker: WorkerProcess, ledger: Ledger, skus: list[str]) -> dict[str, Any]:
    views = {}
    for sku in skus:
        view = worker.wait_revision(sku, ledger.applied[sku])
        assert view["revision"] == ledger.applied[sku]
        for loc in SAFETY:
            got = view["locations"][loc]
            assert got["on_hand"] == ledger.on_hand[(sku, loc)], (sku, loc)
            assert got["reserved"] == ledger.reserved[(sku, loc)], (sku, loc)
            assert got["atp"] == ledger.location_atp(sku, loc), (sku, loc)
        for channel in CHANNELS:
            assert view["channels"][channel]["atp"] == ledger.channel_atp(sku, channel), (
                sku,
                channel,
            )
        views[sku] = view
    return views


def test_channel_events_give_the_atp_an_independent_ledger_computes(worker: WorkerProcess) -> None:
    # given a retail day of receipts, web orders, POS sales and adjustments on five SKUs
    skus = [f"SPINE-{i}" for i in range(5)]
    ledger, _ = produce_retail_day(worker, skus, seed=11)

    # then every location and channel quantity over HTTP equals the test's own bookkeeping
    assert_worker_matches(worker, ledger, skus)

    # and one channel alone, and a batch, agree with it
    status, body = worker.atp(skus[0], channel="marketplace")
    assert status == 200 and body["atp"] == ledger.channel_atp(skus[0], "marketplace")
    batch = worker.batch([*skus, "NEVER-SEEN"])
    assert set(batch["items"]) == set(skus) and batch["unknown"] == ["NEVER-SEEN"]


def test_projection_topic_carries_each_channels_latest_quantity(worker: WorkerProcess) -> None:
    # given events for fresh SKUs, fully applied
    skus = [f"PROJ-{i}" for i in range(3)]
    ledger, _ = produce_retail_day(worker, skus, seed=12)
    assert_worker_matches(worker, ledger, skus)

    # when a consumer reads the compacted projection topic from the start (the table answers
    # as soon as a change is folded; its projection is on the topic a moment later)
    def latest_projections() -> dict[tuple[str, str], Any]:
        messages = read_topic(worker.settings.bootstrap_servers, worker.settings.topics.channel_atp)
        latest: dict[tuple[str, str], Any] = {}
        for key, value in messages:
            change = decode_projection(value or b"")
            assert key == f"{change.channel}:{change.sku}".encode()
            previous = latest.get((change.channel, change.sku))
            # then revisions only move forward and consecutive values differ (published on change)
            if previous is not None:
                assert change.revision > previous.revision
                assert change.quantity != previous.quantity
            latest[(change.channel, change.sku)] = change
        return latest

    def authoritative(latest: dict[tuple[str, str], Any]) -> bool:
        return all(
            (channel, sku) in latest
            and latest[(channel, sku)].quantity == ledger.channel_atp(sku, channel)
            for sku in skus
            for channel in CHANNELS
        )

    # and the last value per channel and SKU is the authoritative quantity
    deadline = time.monotonic() + 15
    latest = latest_projections()
    while not authoritative(latest) and time.monotonic() < deadline:
        time.sleep(0.2)
        latest = latest_projections()
    for sku in skus:
        for channel in CHANNELS:
            assert latest[(channel, sku)].quantity == ledger.channel_atp(sku, channel)
            assert latest[(channel, sku)].policy_version == 1


def test_a_second_copy_of_every_event_changes_nothing(worker: WorkerProcess) -> None:
    # given a day of events fully applied
    skus = [f"DUP-{i}" for i in range(3)]
    ledger, sent = produce_retail_day(worker, skus, seed=13)
    before = assert_worker_matches(worker, ledger, skus)
    duplicates_before = worker.duplicates()

    # when every event is sent again, in the same order, by a fresh producer
    replayer = ChannelProducer(
        worker.settings.bootstrap_servers, "replayer", worker.settings.topics
    )
    for event in sent:
        replayer.send(event)
    replayer.flush()

    # then the worker counts them all as duplicates and nothing else changes
    wait_for(
        lambda: worker.duplicates() >= duplicates_before + len(sent),
        30,
        "all copies seen",
    )
    after = worker.batch(skus)["items"]
    assert after == before


def test_garbage_goes_to_dead_letter_with_reason_and_processing_continues(
    worker: WorkerProcess,
) -> None:
    topics = worker.settings.topics
    raw = Producer(
        {"bootstrap.servers": worker.settings.bootstrap_servers, "partitioner": "murmur2_random"}
    )
    # given a message that is not Avro at all, and one with an unknown schema id
    raw.produce(topics.stock_events, key=b"GARBAGE-1", value=b"this is not avro")
    raw.produce(topics.sale_events, key=b"GARBAGE-2", value=b"\x00\x00\x00\x03\xe7" + b"\x01\x02")
    raw.flush(10)
    # when a valid event follows
    producer = ChannelProducer(worker.settings.bootstrap_servers, "wms", topics)
    producer.emit(EventKind.RECEIVED, "AFTER-GARBAGE", "dc-2", 7)
    producer.flush()

    # then processing continued
    view = worker.wait_revision("AFTER-GARBAGE", 1)
    assert view["locations"]["dc-2"]["on_hand"] == 7
    # and both bad messages are in the dead-letter topic with a reason and their original bytes
    letters = [
        decode_dead_letter(v or b"")
        for _, v in read_topic(worker.settings.bootstrap_servers, topics.dead_letter, expect=2)
    ]
    by_key = {letter["original_key"]: letter for letter in letters}
    assert by_key[b"GARBAGE-1"]["error"] == "undecodable"
    assert by_key[b"GARBAGE-1"]["original_value"] == b"this is not avro"
    assert "header" in by_key[b"GARBAGE-1"]["reason"] or "0x" in by_key[b"GARBAGE-1"]["reason"]
    assert by_key[b"GARBAGE-2"]["error"] == "unknown_schema"
    assert "999" in by_key[b"GARBAGE-2"]["reason"]


def test_event_on_the_wrong_partition_is_dead_lettered_with_the_fix(worker: WorkerProcess) -> None:
    # given a producer that forgot partitioner=murmur2_random (librdkafka's default is CRC32)
    topics = worker.settings.topics
    from stocksync.codec.events import encode_event

    crc = Producer({"bootstrap.servers": worker.settings.bootstrap_servers})
    skus = [f"CRC-{i}" for i in range(12)]
    for i, sku in enumerate(skus):
        event = InventoryEvent(
            str(uuid.uuid4()),
            "crc-client",
            i + 1,
            sku,
            "dc-2",
            1,
            int(time.time() * 1000),
            EventKind.RECEIVED,
        )
        crc.produce(topics.stock_events, key=sku.encode(), value=encode_event(event))
    crc.flush(10)

    # then the SKUs CRC32 placed differently from murmur2 are refused with the fix in the reason
    def wrong_partition_letters() -> list[dict[str, Any]]:
        letters = [
            decode_dead_letter(v or b"")
            for _, v in read_topic(worker.settings.bootstrap_servers, topics.dead_letter)
        ]
        return [x for x in letters if x["error"] == "wrong_partition"]

    letters = wait_for(wrong_partition_letters, 30, "wrong_partition dead letters")
    assert all("murmur2" in letter["reason"] for letter in letters)
    applied = [sku for sku in skus if worker.atp(sku)[0] == 200]
    assert len(applied) + len(letters) == len(skus)


def test_a_client_written_from_the_docs_alone_is_applied(worker: WorkerProcess) -> None:
    # given only the documented contract: schemas/stock_event.v1.avsc, schema id 1 in the
    # Confluent header, topic <prefix>stock-events, key = UTF-8 sku, murmur2 partitioning
    schema = fastavro.schema.load_schema(str(REPO / "schemas" / "stock_event.v1.avsc"))
    body = BytesIO()
    fastavro.schemaless_writer(
        body,
        schema,
        {
            "event_id": "foreign-1",
            "source": "foreign-wms",
            "source_seq": 1,
            "sku": "FOREIGN-1",
            "location": "store-2",
            "quantity": 9,
            "occurred_at": 1_700_000_000_000,
            "type": "RECEIVED",
            "reason": None,
        },
    )
    producer = Producer(
        {
            "bootstrap.servers": worker.settings.bootstrap_servers,
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "acks": "all",
        }
    )
    producer.produce(
        worker.settings.topics.stock_events,
        key=b"FOREIGN-1",
        value=b"\x00" + struct.pack(">I", 1) + body.getvalue(),
    )
    assert producer.flush(10) == 0

    # then the worker applies it
    view = worker.wait_revision("FOREIGN-1", 1)
    assert view["locations"]["store-2"]["on_hand"] == 9
    assert view["last_event_at"] == 1_700_000_000_000
