"""Reading the projection and committing its offsets (src/stocksync/connectors/consume.py),
and the runtime's commit order: the ledger on the broker before the offsets it covers."""

from __future__ import annotations

import asyncio
import time

from confluent_kafka import KafkaError

from connectors.fakes import (
    FakeConsumer,
    FakeMessage,
    FakeProducer,
    connector_config,
    connector_state,
    projection_message,
    q,
)
from stocksync.config import Settings
from stocksync.connectors.consume import ProjectionConsumer
from stocksync.connectors.ledger import LedgerWriter
from stocksync.connectors.plan import Push, Reason
from stocksync.connectors.runtime import Connector
from stocksync.connectors.state import ConnectorState

TOPIC = "stocksync.channel-atp"


def reader(state: ConnectorState) -> ProjectionConsumer:
    return ProjectionConsumer(state, "web", TOPIC)


def test_a_new_value_is_offered_and_its_offset_held_until_acknowledged() -> None:
    state = connector_state()
    assert reader(state).take(projection_message(q("A", 5, 1), offset=10), time.monotonic())
    assert state.plan.backlog() == 1
    assert state.tracker.positions() == {0: 10}


def test_other_channels_and_unreadable_records_are_passed_over() -> None:
    state = connector_state()
    consumer = reader(state)
    now = time.monotonic()
    assert not consumer.take(projection_message(q("A", 5, 1), 10, channel="amazon"), now)
    assert not consumer.take(FakeMessage(b"web:B", b"garbage", 11), now)
    assert not consumer.take(FakeMessage(b"web:C", None, 12), now)  # a tombstone
    eof = FakeMessage(None, None, 13, _error=KafkaError(KafkaError._PARTITION_EOF))
    assert not consumer.take(eof, now)
    assert state.plan.backlog() == 0
    assert state.tracker.positions() == {0: 13}


def test_a_value_the_ledger_covers_is_skipped_after_a_restart() -> None:
    state = connector_state()
    state.plan.restore(q("A", 5, 3))
    consumer = reader(state)
    assert not consumer.take(projection_message(q("A", 7, 2), offset=4), time.monotonic())
    assert consumer.take(projection_message(q("A", 6, 4), offset=5), time.monotonic())
    assert state.counters["skipped_acknowledged"] == 1
    assert state.tracker.positions() == {0: 5}


def commit(consumer: ProjectionConsumer) -> None:
    async def go() -> None:
        await consumer.commit()

    asyncio.run(go())


def test_only_owned_partitions_are_committed_and_a_failed_commit_is_tried_again() -> None:
    state = connector_state()
    consumer = reader(state)
    kafka = FakeConsumer(fail_commits=1)
    consumer.consumer = kafka
    consumer.assigned = {0}
    state.tracker.read(0, 8)
    state.tracker.read(1, 3)  # partition 1 was revoked meanwhile
    commit(consumer)
    assert kafka.commits == []
    commit(consumer)
    assert kafka.commits == [{0: 9}]
    commit(consumer)  # nothing moved: nothing to commit
    assert kafka.commits == [{0: 9}]
    consumer.shutdown_thread()


def test_an_acknowledged_value_is_committed_only_with_its_ledger_record() -> None:
    # mypy sees pydantic-settings models' fields as their __init__, not its _env_file argument
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    connector = Connector(settings, connector_config(), low_stock=5)
    state, producer, kafka = connector.state, FakeProducer(fail_deliveries=1), FakeConsumer()
    connector.consumer.consumer = kafka
    connector.consumer.assigned = {0}
    ledger = LedgerWriter(producer, "stocksync.published-quantities", connector.config, state)
    connector.consumer.take(projection_message(q("A", 5, 1), offset=0), time.monotonic())
    ledger.record(Push(q("A", 5, 1), Reason.FIRST, 1), sent_at=0)

    async def rounds() -> None:
        await connector.commit(ledger)  # the ledger record was not delivered
        assert kafka.commits == [{0: 0}]  # a restart reads the value again
        await connector.commit(ledger)  # written again, delivered, then committed past
        assert kafka.commits == [{0: 0}, {0: 1}]

    asyncio.run(rounds())
    ledger.close()
    connector.consumer.shutdown_thread()
