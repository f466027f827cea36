"""Runs the aiohttp ATP API inside the worker's event loop, started and stopped with the app."""

from __future__ import annotations

import structlog
from aiohttp import web
from mode import Service

from stocksync.api.http import AtpReader, build_http_app

log = structlog.get_logger("stocksync.http")


class HttpService(Service):
    def __init__(self, reader: AtpReader, host: str, port: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.reader = reader
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        self._runner = web.AppRunner(build_http_app(self.reader), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        log.info("http_started", url=f"http://{self.host}:{self.port}")

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            log.info("http_stopped")
