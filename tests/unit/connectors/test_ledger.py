"""The published-quantities ledger (src/stocksync/connectors/ledger.py): what is written per
acknowledgement, offsets released only once the broker has the record, and the restore."""

from __future__ import annotations

import asyncio

from connectors.fakes import CHANNEL, ENDPOINT, FakeProducer, connector_config, connector_state, q
from stocksync.codec.connectors import PublishedQuantity, decode_published, encode_published
from stocksync.connectors.ledger import LedgerWriter, restore_entry
from stocksync.connectors.plan import Push, PushPlan, Reason
from stocksync.connectors.state import ConnectorState

TOPIC = "stocksync.published-quantities"


def writer(state: ConnectorState, producer: FakeProducer) -> LedgerWriter:
    return LedgerWriter(producer, TOPIC, connector_config(), state)


def flush(ledger: LedgerWriter) -> None:
    async def go() -> None:
        await ledger.flush()

    asyncio.run(go())


def test_an_acknowledgement_is_recorded_with_its_version_and_why_it_was_sent() -> None:
    producer = FakeProducer()
    ledger = writer(connector_state(), producer)
    ledger.record(Push(q("SKU-1", 19, 7, 2), Reason.DRIFT_REPAIR, attempt=3), sent_at=1000)
    [record] = producer.on(TOPIC)
    assert record.key == f"{CHANNEL}:SKU-1".encode()
    entry = decode_published(record.value)
    assert (entry.channel, entry.sku, entry.quantity) == (CHANNEL, "SKU-1", 19)
    assert (entry.revision, entry.policy_version) == (7, 2)
    assert (entry.reason, entry.attempts, entry.sent_at) == ("DRIFT_REPAIR", 3, 1000)
    assert entry.acknowledged_at >= entry.sent_at
    assert entry.endpoint == ENDPOINT


def test_an_offset_is_committable_only_once_its_ledger_record_is_delivered() -> None:
    state, producer = connector_state(), FakeProducer()
    ledger = writer(state, producer)
    state.tracker.hold(0, 7, "A", (1, 1))
    ledger.record(Push(q("A", 5, 1), Reason.FIRST, 1), sent_at=1)
    assert state.tracker.positions() == {0: 7}  # acknowledged by the channel, not yet durable
    flush(ledger)
    assert state.tracker.positions() == {0: 8}
    ledger.close()


def test_an_undelivered_record_is_written_again_and_holds_its_offset_meanwhile() -> None:
    state, producer = connector_state(), FakeProducer(fail_deliveries=1)
    ledger = writer(state, producer)
    state.tracker.hold(0, 3, "A", (2, 1))
    ledger.record(Push(q("A", 5, 2), Reason.DECREASE, 1), sent_at=1)
    flush(ledger)
    assert state.tracker.positions() == {0: 3}
    flush(ledger)  # the next commit round writes it again
    assert state.tracker.positions() == {0: 4}
    assert len(producer.on(TOPIC)) == 2
    assert producer.on(TOPIC)[0].value == producer.on(TOPIC)[1].value
    assert state.counters["ledger_written"] == 2
    ledger.close()


def ledger_value(channel: str, sku: str, quantity: int, revision: int) -> bytes:
    return encode_published(
        PublishedQuantity(
            channel=channel,
            sku=sku,
            quantity=quantity,
            revision=revision,
            policy_version=1,
            as_of=0,
            reason="FIRST",
            attempts=1,
            sent_at=0,
            acknowledged_at=0,
            endpoint=ENDPOINT,
        )
    )


def test_restore_tells_the_plan_what_this_channel_already_holds() -> None:
    plan = PushPlan()
    prefix = f"{CHANNEL}:".encode()
    assert restore_entry(plan, prefix, b"web:A", ledger_value(CHANNEL, "A", 4, 3))
    # values the channel acknowledged are skipped after a restart; newer ones are not
    assert plan.is_settled("A", (3, 1)) and plan.is_settled("A", (2, 1))
    assert not plan.is_settled("A", (4, 1))
    assert [v.quantity for v in plan.acknowledged()] == [4]


def test_restore_ignores_other_channels_tombstones_and_unreadable_records() -> None:
    plan = PushPlan()
    prefix = f"{CHANNEL}:".encode()
    assert not restore_entry(plan, prefix, b"amazon:A", ledger_value("amazon", "A", 4, 3))
    assert not restore_entry(plan, prefix, b"web:B", None)
    assert not restore_entry(plan, prefix, b"web:C", b"not avro", offset=12)
    assert not restore_entry(plan, prefix, None, ledger_value(CHANNEL, "D", 1, 1))
    assert list(plan.acknowledged()) == []
