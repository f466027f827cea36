"""Start a worker process: faust app + HTTP API."""

from __future__ import annotations

import structlog
from faust import Worker as FaustWorker

from stocksync.config import Settings
from streams.app import Worker
from streams.http_service import HttpService

log = structlog.get_logger("stocksync.worker")


def build_worker(settings: Settings) -> Worker:
    worker = Worker(settings, settings.load_topology())
    worker.app.service(
        HttpService(worker, settings.http_host, settings.http_port, loop=None)
    )
    return worker


def run_worker(settings: Settings) -> None:
    # faust creates only the last folder of datadir.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = build_worker(settings)
    log.info(
        "worker_starting",
        app_id=settings.app_id,
        bootstrap=settings.bootstrap_servers,
        http=f"http://{settings.http_host}:{settings.http_port}",
        partitions=settings.partitions,
        topology_version=worker.current_topology.version,
    )
    FaustWorker(
        worker.app,
        loglevel=settings.log_level,
        quiet=True,
        override_logging=False,
        redirect_stdouts=False,
    ).execute_from_commandline()
