"""Runs the aiohttp API inside the worker's event loop, started and stopped with the app."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from mode import Service

from stocksync.api.http import build_http_app
from stocksync.api.reservations import add_reservation_routes
from stocksync.domain.reservations import ReservationCommand, ReservationReply
from stocksync.domain.state import SkuRow
from streams.app import Worker
from streams.reservation_gateway import ReservationGateway

log = structlog.get_logger("stocksync.http")


class WorkerReservations:
    """What the reservation handlers need: the gateway to the owning worker, and lookups."""

    def __init__(self, worker: Worker, gateway: ReservationGateway) -> None:
        self.worker = worker
        self.gateway = gateway

    async def request(self, command: ReservationCommand, timeout: float) -> ReservationReply | None:
        return await self.gateway.request(command, timeout)

    def reservation_reply(self, request_id: str) -> ReservationReply | None:
        return self.worker.reservation_reply(request_id)

    def reservation_end(self, reservation_id: str) -> ReservationReply | None:
        return self.worker.reservation_end(reservation_id)

    def row(self, sku: str) -> SkuRow | None:
        return self.worker.row(sku)


class HttpService(Service):
    def __init__(self, worker: Worker, host: str, port: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.worker = worker
        self.host = host
        self.port = port
        self.gateway = ReservationGateway(worker.settings)
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        self.gateway.start(asyncio.get_running_loop())
        app = build_http_app(self.worker)
        add_reservation_routes(
            app,
            WorkerReservations(self.worker, self.gateway),
            self.worker.settings.reservation_timeout_s,
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        log.info("http_started", url=f"http://{self.host}:{self.port}")

    async def on_stop(self) -> None:
        self.gateway.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            log.info("http_stopped")
