"""Source-owned event topics: what Kafka ACLs need to let a channel write only its own events.

With STOCKSYNC_SOURCE_TOPICS a source writes to `<prefix>src.<source>.*-events`; an ACL gives
its principal write access to that prefix only. The worker completes the guarantee: an event
whose `source` is not its topic's is dead-lettered, so no topic can speak for another source.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from stocksync.channels.producer import REQUIRED_CONFIG, ChannelProducer
from stocksync.codec.events import encode_event
from stocksync.codec.outputs import decode_dead_letter
from stocksync.domain.events import EventKind, InventoryEvent
from tests.integration.support import WorkerProcess, read_topic, unique_settings

SKU = "SRC-1"


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    home = tmp_path_factory.mktemp("source-topics")
    settings = unique_settings(kafka_bootstrap, home / "state", source_topics="pos-store-1, web")
    process = WorkerProcess(settings, home / "worker.log").start()
    yield process
    process.stop(signal.SIGTERM)


def forged(source: str, seq: int, kind: EventKind, qty: int) -> bytes:
    event = InventoryEvent(f"forged-{seq}", source, seq, SKU, "store-1", qty, 1, kind)
    return encode_event(event)


def test_each_source_writes_its_own_topics_and_cannot_speak_for_another(
    worker: WorkerProcess,
) -> None:
    settings = worker.settings
    topics = settings.topics
    assert (
        topics.sale_events_of("pos-store-1")
        == f"{settings.topic_prefix}src.pos-store-1.sale-events"
    )

    # given stock from the warehouse (shared topic) and a till sale on the till's own topic
    with ChannelProducer(settings.bootstrap_servers, "wms", topics) as wms:
        wms.emit(EventKind.RECEIVED, SKU, "store-1", 10)
    with ChannelProducer(settings.bootstrap_servers, "pos-store-1", topics) as till:
        till.emit(EventKind.SOLD, SKU, "store-1", 2)

    # when the web channel's principal writes a sale claiming to be the till, on its own topic,
    # and the till's source appears on the shared topic
    raw = Producer({"bootstrap.servers": settings.bootstrap_servers, **REQUIRED_CONFIG})
    raw.produce(
        topics.sale_events_of("web"),
        key=SKU.encode(),
        value=forged("pos-store-1", 2**60, EventKind.SOLD, 5),
    )
    raw.produce(
        topics.sale_events,
        key=SKU.encode(),
        value=forged("pos-store-1", 2**60 + 1, EventKind.SOLD, 3),
    )
    raw.flush(10)
    with ChannelProducer(settings.bootstrap_servers, "wms", topics) as wms:
        wms.emit(EventKind.RECEIVED, SKU, "store-1", 1)  # a marker that comes after both

    # then only the genuine events are folded
    view = worker.wait_revision(SKU, 3)
    assert view["locations"]["store-1"]["on_hand"] == 10 - 2 + 1

    # and both forgeries are dead letters naming the rule
    letters = [
        decode_dead_letter(v or b"")
        for _, v in read_topic(settings.bootstrap_servers, topics.dead_letter, expect=2)
    ]
    assert [letter["error"] for letter in letters] == ["source_mismatch"] * 2
    by_topic = {letter["topic"]: letter["reason"] for letter in letters}
    assert "only source 'web' may use" in by_topic[topics.sale_events_of("web")]
    assert "has topics of its own" in by_topic[topics.sale_events]
