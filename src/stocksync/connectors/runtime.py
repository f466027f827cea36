"""The connector process: composes its jobs around the push plan.

  <prefix>channel-atp ──consume.py (keys '<channel>:*')──► PushPlan ──► push.py (budget, HTTP PUT)
        ▲ commit: only offsets whose value the channel acknowledged          │
        │ and the ledger recorded                                            ▼
  <prefix>published-quantities ◄──────── ledger.py (record after each acknowledgement)
  <prefix>alerts ◄── reports.py (DRIFT) ◄── admin_http.py: POST /v1/reports, GET /v1/status

Restart: the ledger is read first (what the channel holds), then the projection is consumed
from the committed offsets, which never pass a value the channel has not acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from confluent_kafka import Producer

from stocksync.config import Settings
from stocksync.connectors.admin_http import AdminHttp, status_of
from stocksync.connectors.consume import ProjectionConsumer
from stocksync.connectors.kafka_clients import ledger_and_alerts_producer, projection_consumer
from stocksync.connectors.ledger import LedgerWriter, read_ledger
from stocksync.connectors.push import Pusher, put_quantity
from stocksync.connectors.reports import ReportChecker
from stocksync.connectors.settings import ConnectorSettings
from stocksync.connectors.state import ConnectorState

# How long a stopping connector waits for Kafka (final commit, consumer close)
SHUTDOWN_KAFKA_TIMEOUT_S = 15.0

log = structlog.get_logger("stocksync.connector")


@dataclass
class _Running:
    """The clients and jobs of a started connector, to stop in order."""

    producer: Producer
    ledger: LedgerWriter
    pusher: Pusher
    session: aiohttp.ClientSession
    admin: web.AppRunner | None


class Connector:
    def __init__(self, settings: Settings, config: ConnectorSettings, low_stock: int) -> None:
        self.settings = settings
        self.config = config
        self.topics = settings.topics
        self.state = ConnectorState.of(config, low_stock)
        self.consumer = ProjectionConsumer(self.state, config.channel, self.topics.channel_atp)

    def status(self) -> dict[str, Any]:
        return status_of(self.state, self.config)

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        running = await self._start()
        loops = [
            asyncio.ensure_future(self.consumer.consume_forever()),
            asyncio.ensure_future(running.pusher.dispatch_forever()),
            asyncio.ensure_future(self._commit_forever(running.ledger)),
        ]
        if self.config.resync_interval_s > 0:
            loops.append(asyncio.ensure_future(self._resync_forever()))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            done, _ = await asyncio.wait([stopped, *loops], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopped and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            stopped.cancel()
            await self._shutdown(loops, running)

    async def _start(self) -> _Running:
        loop = asyncio.get_running_loop()
        config, state = self.config, self.state
        producer = ledger_and_alerts_producer(self.settings, config)
        ledger = LedgerWriter(producer, self.topics.published_quantities, config, state)
        checker = ReportChecker(state, config, producer, self.topics.alerts)
        # up before the ledger is read: /healthz answers and /readyz says 503 meanwhile
        admin = await AdminHttp(state, config, checker).serve() if config.http_port else None
        read = partial(read_ledger, self.settings, config, state.plan)
        restored = await loop.run_in_executor(self.consumer.thread, read)
        state.counters["restored"] = restored
        self.consumer.subscribe(projection_consumer(self.settings, config), loop)
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=config.request_timeout_s)
        )
        send = partial(put_quantity, session, config.endpoint_url)
        pusher = Pusher(state, config, send, ledger.record)
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
        return _Running(producer, ledger, pusher, session, admin)

    async def _shutdown(self, loops: list[asyncio.Task[None]], running: _Running) -> None:
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await running.pusher.drain(self.config.request_timeout_s + 1)
        clean = await self._final_commit(running.ledger)
        await running.session.close()
        if running.admin is not None:
            await running.admin.cleanup()
        self.consumer.shutdown_thread()
        running.ledger.close()
        log.info(
            "connector_stopped", channel=self.config.channel, clean=clean, **self.state.counters
        )
        if not clean:
            # Kafka did not answer: a librdkafka call still blocks a worker thread, and Python
            # would wait for it at exit forever. Nothing is lost by leaving now: offsets not
            # committed are read again on restart and the ledger skips what was acknowledged.
            log.error("connector_exit_forced", waited_s=SHUTDOWN_KAFKA_TIMEOUT_S)
            os._exit(1)

    async def _final_commit(self, ledger: LedgerWriter) -> bool:
        """Commit what was acknowledged and leave the group; False if Kafka did not answer."""
        try:
            await asyncio.wait_for(self.commit(ledger), SHUTDOWN_KAFKA_TIMEOUT_S)
            await asyncio.wait_for(self.consumer.close(), SHUTDOWN_KAFKA_TIMEOUT_S)
        except TimeoutError:
            return False
        except Exception as exc:
            log.warning("shutdown_commit_failed", error=str(exc))
        return True

    # -- periodic work --------------------------------------------------------------------------

    async def commit(self, ledger: LedgerWriter) -> None:
        """Outputs before inputs: the ledger records on the broker first, then the projection
        offsets they cover."""
        await ledger.flush()
        await self.consumer.commit()

    async def _commit_forever(self, ledger: LedgerWriter) -> None:
        while True:
            await asyncio.sleep(self.config.commit_interval_s)
            await self.commit(ledger)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.resync_interval_s)
            queued = self.state.plan.resync(time.monotonic())
            self.state.counters["resyncs"] += 1
            log.info("resync_started", channel=self.config.channel, skus=queued)
            self.state.wake.set()
