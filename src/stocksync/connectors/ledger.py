"""The ledger: what the channel acknowledged, on the compacted topic
`<prefix>published-quantities` (key `<channel>:<sku>`, schema PublishedQuantity).

On start the ledger is read to the end so the plan knows what the channel holds and skips
projection values it already acknowledged. While running, each acknowledgement is written to
it; a projection offset is released for commit only once the record covering it is on the
broker (delivery confirmed), so a restart never skips a value the ledger does not hold.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import structlog
from confluent_kafka import KafkaError, Message

from stocksync.adapters.kafka import clients
from stocksync.codec.connectors import (
    PublishedQuantity,
    decode_published,
    encode_published,
    ledger_key,
)
from stocksync.config import Settings
from stocksync.connectors.kafka_clients import Producing, ledger_reader, produce
from stocksync.connectors.plan import Push, PushPlan, Quantity, Version
from stocksync.connectors.settings import ConnectorSettings
from stocksync.connectors.state import ConnectorState

log = structlog.get_logger("stocksync.connector")

FLUSH_TIMEOUT_S = 10.0


def now_ms() -> int:
    return int(time.time() * 1000)


def published_entry(
    config: ConnectorSettings, push: Push, sent_at: int, acknowledged_at: int
) -> PublishedQuantity:
    value = push.value
    return PublishedQuantity(
        channel=config.channel,
        sku=value.sku,
        quantity=value.quantity,
        revision=value.revision,
        policy_version=value.policy_version,
        as_of=value.as_of,
        reason=push.reason.name,
        attempts=push.attempt,
        sent_at=sent_at,
        acknowledged_at=acknowledged_at,
        endpoint=config.endpoint_url,
    )


# -- restore ------------------------------------------------------------------------------------


def restore_entry(
    plan: PushPlan,
    key_prefix: bytes,
    key: bytes | None,
    value: bytes | None,
    offset: int | None = None,
) -> bool:
    """Tell the plan one ledger record; False when it is another channel's (the ledger is
    shared by every channel's connector), a tombstone, or unreadable."""
    if not key or not key.startswith(key_prefix) or value is None:
        return False
    try:
        entry = decode_published(value)
    except Exception as exc:
        log.error("ledger_unreadable", offset=offset, error=repr(exc))
        return False
    plan.restore(
        Quantity(entry.sku, entry.quantity, entry.revision, entry.policy_version, entry.as_of)
    )
    return True


def read_ledger(settings: Settings, config: ConnectorSettings, plan: PushPlan) -> int:
    """What the channel acknowledged before this process started, into `plan` (blocking: run
    it on a thread). Returns how many entries were restored."""
    topic = settings.topics.published_quantities
    reader = ledger_reader(settings, config)
    try:
        prefix = f"{config.channel}:".encode()
        restored = sum(
            restore_entry(plan, prefix, msg.key(), msg.value(), msg.offset())
            for msg in clients.read_range(reader, clients.whole_log(reader, topic))
        )
    finally:
        reader.close()
    log.info("ledger_restored", channel=config.channel, entries=restored)
    return restored


# -- writing ------------------------------------------------------------------------------------


class LedgerWriter:
    """Writes acknowledgements and releases their offsets once the broker has them."""

    def __init__(
        self, producer: Producing, topic: str, config: ConnectorSettings, state: ConnectorState
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.config = config
        self.state = state
        # filled by delivery callbacks, which run on the producer's thread: deques, since
        # append and popleft are atomic
        self._durable: deque[tuple[str, Version]] = deque()
        self._failed: deque[tuple[bytes, bytes, str, Version]] = deque()
        # flush blocks: it gets its own thread so the consumer's calls are never queued behind
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="connector-producer")

    def record(self, push: Push, sent_at: int) -> None:
        """The channel acknowledged `push`: write it to the ledger."""
        entry = published_entry(self.config, push, sent_at, now_ms())
        key = ledger_key(self.config.channel, push.value.sku)
        self._write(key, encode_published(entry), push.value.sku, push.value.version)

    def _write(self, key: bytes, payload: bytes, sku: str, version: Version) -> None:
        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                self._durable.append((sku, version))
            else:
                log.error("ledger_not_delivered", sku=sku, error=str(err))
                self._failed.append((key, payload, sku, version))

        produce(self.producer, self.topic, key, payload, delivered)
        self.state.counters["ledger_written"] += 1

    async def flush(self) -> None:
        """Write again what was not delivered, wait for the broker, then release the offsets
        of every value now durably recorded."""
        while self._failed:
            self._write(*self._failed.popleft())
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.thread, self.producer.flush, FLUSH_TIMEOUT_S)
        while self._durable:
            sku, version = self._durable.popleft()
            self.state.tracker.release(sku, version)

    def close(self) -> None:
        self.thread.shutdown(wait=False)
