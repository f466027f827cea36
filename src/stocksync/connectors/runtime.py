"""The connector process: a thin adapter around the push plan.

  <prefix>channel-atp ──confluent-kafka consumer (keys '<channel>:*')──► PushPlan ──► token bucket
        ▲ commit: only offsets whose value the channel acknowledged          │
        │ and the ledger recorded                                            ▼
  <prefix>published-quantities ◄── ledger record after each ack ◄── aiohttp PUT to the channel
  <prefix>alerts ◄── DRIFT alert ◄── POST /v1/reports (what the channel displays)

Restart: the ledger is read first (what the channel holds), then the projection is consumed
from the committed offsets, which never pass a value the channel has not acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from functools import partial
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog
from aiohttp import web
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from stocksync.codec.connectors import (
    PublishedQuantity,
    decode_published,
    encode_drift_alert,
    encode_published,
    ledger_key,
)
from stocksync.codec.outputs import Headers, alert_headers, decode_projection
from stocksync.config import Settings
from stocksync.connectors.budget import TokenBucket
from stocksync.connectors.drift import assess_drift, exposure
from stocksync.connectors.offsets import OffsetTracker
from stocksync.connectors.plan import (
    Backoff,
    Outcome,
    Push,
    PushPlan,
    Quantity,
    Version,
)
from stocksync.connectors.settings import ConnectorSettings

# How long a stopping connector waits for Kafka (final commit, consumer close)
SHUTDOWN_KAFKA_TIMEOUT_S = 15.0

log = structlog.get_logger("stocksync.connector")

CONSUME_BATCH = 500
CONSUME_TIMEOUT_S = 0.25
IDLE_WAKE_S = 1.0
RETRYABLE = frozenset({408, 425, 429})


def outcome_of(status: int | None) -> Outcome:
    """What an HTTP answer means for the value sent (None: no answer at all)."""
    if status is None or status in RETRYABLE or status >= 500:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.ACKNOWLEDGED
    if status == 409:
        return Outcome.STALE
    return Outcome.REJECTED


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (HTTP-dates are not used by the channels we talk to)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def now_ms() -> int:
    return int(time.time() * 1000)


class Connector:
    def __init__(self, settings: Settings, config: ConnectorSettings, low_stock: int) -> None:
        self.settings = settings
        self.config = config
        self.topics = settings.topics
        self.plan = PushPlan(
            low_stock=low_stock,
            max_wait_s=config.max_wait_s,
            backoff=Backoff(config.retry_base_s, config.retry_max_s),
        )
        self.bucket = TokenBucket.full(config.rate_per_s, config.burst, time.monotonic())
        self.tracker = OffsetTracker()
        self.rule = config.drift_rule
        self.counters: dict[str, int] = {
            "requests": 0,
            "acknowledged": 0,
            "rate_limited": 0,
            "failed": 0,
            "stale_answers": 0,
            "rejected": 0,
            "ledger_written": 0,
            "restored": 0,
            "skipped_acknowledged": 0,
            "reports": 0,
            "drift_alerts": 0,
            "resyncs": 0,
        }
        self.ready = False
        self._key_prefix = f"{config.channel}:".encode()
        self._durable: deque[tuple[str, Version]] = deque()
        self._ledger_failed: deque[tuple[bytes, bytes, str, Version]] = deque()
        self._consumer_thread = ThreadPoolExecutor(1, thread_name_prefix="connector-consumer")
        self._producer_thread = ThreadPoolExecutor(1, thread_name_prefix="connector-producer")
        self._pushes: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._session: aiohttp.ClientSession | None = None
        self._assigned: set[int] = set()

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        self._wake = asyncio.Event()
        self._producer = Producer(
            {
                **self.settings.librdkafka_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "partitioner": "murmur2_random",
                "client.id": f"stocksync-connector-{config.channel}",
            }
        )
        runner = await self._serve_http() if config.http_port else None
        restored = await loop.run_in_executor(self._consumer_thread, self._read_ledger)
        self.counters["restored"] = restored
        self._consumer = Consumer(
            {
                **self.settings.librdkafka_config(),
                "group.id": config.consumer_group(self.settings.app_id),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "client.id": f"stocksync-connector-{config.channel}",
            }
        )
        self._consumer.subscribe(
            [self.topics.channel_atp],
            on_assign=partial(self._on_assign, loop),
            on_revoke=partial(self._on_revoke, loop),
        )
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=config.request_timeout_s)
        )
        log.info(
            "connector_started",
            channel=config.channel,
            endpoint=config.endpoint_url,
            rate_per_s=config.rate_per_s,
            burst=config.burst,
            resync_interval_s=config.resync_interval_s,
            restored=restored,
            group=config.consumer_group(self.settings.app_id),
        )
        loops = [
            asyncio.ensure_future(self._consume_loop()),
            asyncio.ensure_future(self._dispatch_loop()),
            asyncio.ensure_future(self._commit_loop()),
        ]
        if config.resync_interval_s > 0:
            loops.append(asyncio.ensure_future(self._resync_loop()))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            done, _ = await asyncio.wait([stopped, *loops], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopped and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            stopped.cancel()
            await self._shutdown(loops, runner)

    async def _shutdown(self, loops: list[asyncio.Task[None]], runner: Any) -> None:
        loop = asyncio.get_running_loop()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        if self._pushes:  # let requests on the wire finish: their answers go to the ledger
            await asyncio.wait(list(self._pushes), timeout=self.config.request_timeout_s + 1)
        clean = True
        try:
            await asyncio.wait_for(self._commit(), SHUTDOWN_KAFKA_TIMEOUT_S)
            if self._consumer is not None:
                closing = loop.run_in_executor(self._consumer_thread, self._consumer.close)
                await asyncio.wait_for(closing, SHUTDOWN_KAFKA_TIMEOUT_S)
        except TimeoutError:
            clean = False
        except Exception as exc:
            log.warning("shutdown_commit_failed", error=str(exc))
        if self._session is not None:
            await self._session.close()
        if runner is not None:
            await runner.cleanup()
        self._consumer_thread.shutdown(wait=False)
        self._producer_thread.shutdown(wait=False)
        log.info("connector_stopped", channel=self.config.channel, clean=clean, **self.counters)
        if not clean:
            # Kafka did not answer: a librdkafka call still blocks a worker thread, and Python
            # would wait for it at exit forever. Nothing is lost by leaving now: offsets not
            # committed are read again on restart and the ledger skips what was acknowledged.
            log.error("connector_exit_forced", waited_s=SHUTDOWN_KAFKA_TIMEOUT_S)
            os._exit(1)

    # -- recovery ---------------------------------------------------------------------------

    def _read_ledger(self) -> int:
        """What the channel acknowledged before this process started (runs on a thread)."""
        topic = self.topics.published_quantities
        reader = Consumer(
            {
                **self.settings.librdkafka_config(),
                "group.id": f"{self.config.consumer_group(self.settings.app_id)}-ledger",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        restored = 0
        try:
            metadata = reader.list_topics(topic, timeout=10)
            if topic not in metadata.topics or metadata.topics[topic].error is not None:
                raise RuntimeError(
                    f"ledger topic {topic} does not exist: run `stocksync topics create`"
                )
            partitions = list(metadata.topics[topic].partitions)
            reader.assign([TopicPartition(topic, p, 0) for p in partitions])
            at_end: set[int] = set()
            while at_end != set(partitions):
                msg = reader.poll(1.0)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition() or 0)
                    continue
                key, value = msg.key(), msg.value()
                if not key or not key.startswith(self._key_prefix) or value is None:
                    continue
                try:
                    entry = decode_published(value)
                except Exception as exc:
                    log.error("ledger_unreadable", offset=msg.offset(), error=repr(exc))
                    continue
                self.plan.restore(
                    Quantity(
                        entry.sku,
                        entry.quantity,
                        entry.revision,
                        entry.policy_version,
                        entry.as_of,
                    )
                )
                restored += 1
        finally:
            reader.close()
        log.info("ledger_restored", channel=self.config.channel, entries=restored)
        return restored

    def _on_assign(
        self, loop: asyncio.AbstractEventLoop, _consumer: Consumer, parts: list[TopicPartition]
    ) -> None:
        self._assigned.update(tp.partition for tp in parts)
        self.ready = True
        log.info("partitions_assigned", partitions=sorted(tp.partition for tp in parts))

    def _on_revoke(
        self, loop: asyncio.AbstractEventLoop, _consumer: Consumer, parts: list[TopicPartition]
    ) -> None:
        for tp in parts:
            self._assigned.discard(tp.partition)
            loop.call_soon_threadsafe(self.tracker.forget, tp.partition)
        log.info("partitions_revoked", partitions=sorted(tp.partition for tp in parts))

    # -- reading the projection -------------------------------------------------------------

    async def _consume_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._consumer is not None and self._wake is not None
        consume = partial(self._consumer.consume, CONSUME_BATCH, CONSUME_TIMEOUT_S)
        while True:
            messages = await loop.run_in_executor(self._consumer_thread, consume)
            now = time.monotonic()
            offered = False
            for msg in messages:
                offered = self._take(msg, now) or offered
            if offered:
                self._wake.set()

    def _take(self, msg: Message, now: float) -> bool:
        error = msg.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer_error", error=str(error))
            return False
        partition, offset = msg.partition() or 0, msg.offset() or 0
        key, value = msg.key(), msg.value()
        if not key or not key.startswith(self._key_prefix) or value is None:
            self.tracker.read(partition, offset)  # another channel's value
            return False
        try:
            change = decode_projection(value)
        except Exception as exc:
            log.error("projection_unreadable", partition=partition, offset=offset, error=repr(exc))
            self.tracker.read(partition, offset)
            return False
        quantity = Quantity(
            change.sku, change.quantity, change.revision, change.policy_version, change.as_of
        )
        if self.plan.is_settled(quantity.sku, quantity.version):
            self.counters["skipped_acknowledged"] += 1
            self.tracker.read(partition, offset)
            return False
        self.tracker.hold(partition, offset, quantity.sku, quantity.version)
        return self.plan.offer(quantity, now)

    # -- pushing ----------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        assert self._wake is not None
        slots = asyncio.Semaphore(self.config.concurrency)
        while True:
            now = time.monotonic()
            if not self.plan.has_ready(now):
                due = self.plan.next_due(now)
                timeout = IDLE_WAKE_S if due is None else min(IDLE_WAKE_S, max(0.0, due - now))
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                continue
            wait = self.bucket.wait_time(now)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await slots.acquire()
            now = time.monotonic()
            if not self.bucket.try_take(now):
                slots.release()
                continue
            push = self.plan.next_push(now)
            if push is None:
                self.bucket.refund()
                slots.release()
                continue
            task = asyncio.ensure_future(self._push(push, slots))
            self._pushes.add(task)
            task.add_done_callback(self._pushes.discard)

    async def _push(self, push: Push, slots: asyncio.Semaphore) -> None:
        assert self._session is not None and self._wake is not None
        value = push.value
        url = f"{self.config.endpoint_url}/v1/inventory/{quote(value.sku, safe='')}"
        body = {
            "quantity": value.quantity,
            "revision": value.revision,
            "policy_version": value.policy_version,
            "as_of": value.as_of,
        }
        sent_at = now_ms()
        status: int | None = None
        retry_after: float | None = None
        error = ""
        self.counters["requests"] += 1
        try:
            async with self._session.put(url, json=body) as resp:
                status = resp.status
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                text = await resp.text()
                if status >= 300:
                    error = text[:200]
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = repr(exc)
        finally:
            slots.release()
        now = time.monotonic()
        outcome = outcome_of(status)
        if status == 429:
            self.counters["rate_limited"] += 1
            pause = retry_after if retry_after is not None else self.config.retry_base_s
            self.bucket.hold(now + pause)  # the channel's word overrides our budget
        settled = self.plan.settle(value.sku, outcome, now, retry_after if status == 429 else None)
        if outcome is Outcome.ACKNOWLEDGED:
            self.counters["acknowledged"] += 1
            self._record(push, sent_at)
        elif outcome is Outcome.RETRY:
            self.counters["failed"] += status != 429
            log.info(
                "push_retried",
                channel=self.config.channel,
                sku=value.sku,
                status=status,
                attempt=push.attempt,
                retry_in=round(settled.retry_in or 0, 3),
                error=error,
            )
        else:
            self.counters["stale_answers" if outcome is Outcome.STALE else "rejected"] += 1
            self.tracker.release(value.sku, value.version)
            log.error(
                "push_refused",
                channel=self.config.channel,
                sku=value.sku,
                status=status,
                outcome=outcome.value,
                error=error,
            )
        self._wake.set()

    def _record(self, push: Push, sent_at: int) -> None:
        """Write the acknowledged value to the ledger; its offsets are released once Kafka has
        the record (see _commit)."""
        value = push.value
        entry = PublishedQuantity(
            channel=self.config.channel,
            sku=value.sku,
            quantity=value.quantity,
            revision=value.revision,
            policy_version=value.policy_version,
            as_of=value.as_of,
            reason=push.reason.name,
            attempts=push.attempt,
            sent_at=sent_at,
            acknowledged_at=now_ms(),
            endpoint=self.config.endpoint_url,
        )
        self._produce_ledger(
            ledger_key(self.config.channel, value.sku),
            encode_published(entry),
            value.sku,
            value.version,
        )

    def _produce_ledger(self, key: bytes, payload: bytes, sku: str, version: Version) -> None:
        assert self._producer is not None

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                self._durable.append((sku, version))
            else:
                log.error("ledger_not_delivered", sku=sku, error=str(err))
                self._ledger_failed.append((key, payload, sku, version))

        self._send(self.topics.published_quantities, key, payload, delivered)
        self.counters["ledger_written"] += 1

    def _send(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        callback: Any = None,
        headers: Headers | None = None,
    ) -> None:
        assert self._producer is not None
        while True:
            try:
                self._producer.produce(
                    topic, key=key, value=value, on_delivery=callback, headers=headers
                )
                return
            except BufferError:
                self._producer.poll(0.01)

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.commit_interval_s)
            await self._commit()

    async def _commit(self) -> None:
        """Ledger records on the broker first, then the offsets they cover."""
        loop = asyncio.get_running_loop()
        assert self._producer is not None
        while self._ledger_failed:
            key, payload, sku, version = self._ledger_failed.popleft()
            self._produce_ledger(key, payload, sku, version)
        await loop.run_in_executor(self._producer_thread, self._producer.flush, 10.0)
        while self._durable:
            sku, version = self._durable.popleft()
            self.tracker.release(sku, version)
        positions = {p: o for p, o in self.tracker.to_commit().items() if p in self._assigned}
        if not positions or self._consumer is None:
            return
        offsets = [TopicPartition(self.topics.channel_atp, p, o) for p, o in positions.items()]
        commit = partial(self._consumer.commit, offsets=offsets, asynchronous=False)
        try:
            await loop.run_in_executor(self._consumer_thread, commit)
        except KafkaException as exc:
            log.warning("commit_failed", error=str(exc))
            return
        self.tracker.committed(positions)

    async def _resync_loop(self) -> None:
        assert self._wake is not None
        while True:
            await asyncio.sleep(self.config.resync_interval_s)
            queued = self.plan.resync(time.monotonic())
            self.counters["resyncs"] += 1
            log.info("resync_started", channel=self.config.channel, skus=queued)
            self._wake.set()

    # -- drift ------------------------------------------------------------------------------

    def check_report(self, sku: str, displayed: int, reported_at: int) -> str:
        """Compare what the channel displays with what it acknowledged. Returns the verdict:
        ok, drift, settling (a push of the SKU is under way or just landed) or unknown."""
        slot = self.plan.slots.get(sku)
        if slot is None or slot.acked is None:
            return "unknown"
        now = time.monotonic()
        if (
            slot.inflight is not None
            or slot.pending is not None
            or now - slot.acked_at < self.config.drift_grace_s
        ):
            return "settling"
        published = slot.acked
        finding = assess_drift(sku, published.quantity, displayed, self.rule)
        if finding is None:
            return "ok"
        self.counters["drift_alerts"] += 1
        log.warning(
            "drift_detected",
            channel=self.config.channel,
            sku=sku,
            published=published.quantity,
            displayed=displayed,
            allowed=finding.allowed,
            revision=published.revision,
        )
        self._send(
            self.topics.alerts,
            sku.encode(),
            encode_drift_alert(
                channel=self.config.channel,
                sku=sku,
                published=published.quantity,
                displayed=displayed,
                allowed=finding.allowed,
                revision=published.revision,
                policy_version=published.policy_version,
                as_of=published.as_of,
                reported_at=reported_at,
            ),
            headers=alert_headers("DRIFT"),
        )
        self.plan.repair(sku, now)
        if self._wake is not None:
            self._wake.set()
        return "drift"

    # -- HTTP: reports in, status out --------------------------------------------------------

    async def _serve_http(self) -> web.AppRunner:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/v1/reports", self._reports)
        app.router.add_get("/v1/status", self._status)
        app.router.add_get("/v1/published/{sku}", self._published)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.config.http_host, self.config.http_port).start()
        return runner

    async def _reports(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            items = [(str(i["sku"]), int(i["quantity"])) for i in body["items"]]
            reported_at = int(body.get("reported_at") or now_ms())
        except (ValueError, KeyError, TypeError):
            return web.json_response(
                {
                    "error": "invalid_request",
                    "message": 'expected {"items": [{"sku": str, "quantity": int}], '
                    '"reported_at": epoch ms (optional)}',
                },
                status=400,
            )
        channel = body.get("channel")
        if channel is not None and channel != self.config.channel:
            return web.json_response(
                {
                    "error": "wrong_channel",
                    "message": f"this connector serves {self.config.channel}, not {channel}",
                },
                status=400,
            )
        verdicts: dict[str, list[str]] = {}
        for sku, displayed in items:
            verdicts.setdefault(self.check_report(sku, displayed, reported_at), []).append(sku)
        self.counters["reports"] += len(items)
        return web.json_response(
            {
                "checked": len(items),
                **{k: v if k == "drift" else len(v) for k, v in verdicts.items()},
            }
        )

    def status(self) -> dict[str, Any]:
        exposed = exposure(self.plan.published_and_true())
        return {
            "channel": self.config.channel,
            "endpoint": self.config.endpoint_url,
            "ready": self.ready,
            "budget": {"rate_per_s": self.config.rate_per_s, "burst": self.config.burst},
            "counters": {**self.counters, "plan": asdict(self.plan.counters)},
            "skus": len(self.plan.slots),
            "backlog": self.plan.backlog(),
            "in_flight": self.plan.in_flight(),
            "held_offsets": self.tracker.held(),
            "exposure": {
                "over_units": exposed.over_units,
                "under_units": exposed.under_units,
                "net_units": exposed.net_units,
                "skus_over": exposed.skus_over,
                "skus_under": exposed.skus_under,
            },
        }

    async def _status(self, _request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def _published(self, request: web.Request) -> web.Response:
        slot = self.plan.slots.get(request.match_info["sku"])
        if slot is None:
            return web.json_response({"error": "unknown_sku", "message": "never seen"}, status=404)

        def view(q: Quantity | None) -> dict[str, int] | None:
            return (
                None
                if q is None
                else {
                    "quantity": q.quantity,
                    "revision": q.revision,
                    "policy_version": q.policy_version,
                }
            )

        return web.json_response(
            {
                "acknowledged": view(slot.acked),
                "pending": view(slot.pending),
                "in_flight": view(slot.inflight.value if slot.inflight else None),
                "failures": slot.failures,
            }
        )

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        return web.json_response(self.status(), status=200 if self.ready else 503)
