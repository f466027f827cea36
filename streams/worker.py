"""Start a worker process: faust app + HTTP API."""

from __future__ import annotations

import asyncio
import gc
import sys

import structlog
from faust import Worker as FaustWorker

from stocksync.bootstrap import WorkerWiring
from stocksync.domain.topology import Topology
from stocksync.topology_log import TopologyFollower

from .app import Worker
from .bulk_restore import restore_missing_partitions
from .http_service import HttpService

log = structlog.get_logger("stocksync.worker")


def build_worker(wiring: WorkerWiring) -> Worker:
    settings = wiring.settings
    worker = Worker(settings, wiring.topology)
    http = HttpService(worker, wiring.keys, settings.http_host, settings.http_port)
    worker.app.service(http)  # type: ignore[arg-type]

    async def follow_topology() -> None:
        loop = asyncio.get_running_loop()

        def on_new(topology: Topology) -> None:
            loop.call_soon_threadsafe(worker.on_topology, topology)

        TopologyFollower(settings, worker.topology().version, on_new).start()
        worker.expiry.load(worker.table.data.values())

    worker.app.task(follow_topology)

    return worker


# The fold allocates a few short-lived objects per event; CPython's default (a young
# collection every 700 allocations) spent about a tenth of the worker's time collecting them.
GC_THRESHOLDS = (50_000, 20, 20)


def run_worker(wiring: WorkerWiring) -> None:
    settings = wiring.settings
    gc.set_threshold(*GC_THRESHOLDS)
    # faust creates only the last folder of datadir.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = build_worker(wiring)
    if settings.bulk_restore:
        topics = settings.topics
        restore_missing_partitions(
            settings,
            [
                (worker.table, topics.atp_changelog),
                (worker.history, topics.history_changelog),
                (worker.reservation_index, topics.reservation_index_changelog),
            ],
        )
    log.info(
        "worker_starting",
        app_id=settings.app_id,
        bootstrap=settings.bootstrap_servers,
        http=f"http://{settings.http_host}:{settings.http_port}",
        partitions=settings.partitions,
        topology_version=worker.topology().version,
    )
    faust_worker = FaustWorker(
        worker.app,
        loglevel=settings.log_level,
        # faust's start spinner and "OK" go to stdout as bare text: only when asked for
        # (STOCKSYNC_FAUST_VERBOSE), like its info lines (stocksync.logs)
        quiet=not settings.faust_verbose,
        # logging stays as stocksync.logs set it up (structlog renders faust's records too);
        # faust's own setup (mode.utils.logging) would replace that handler with its colored
        # formatter and terminal tables
        override_logging=False,
        redirect_stdouts=False,
    )
    if not (settings.faust_verbose and sys.stdout.isatty()):
        # quiet does not silence the spinner: once started it writes backspaces and a
        # show-cursor escape code to stdout, a terminal or not
        faust_worker.spinner = None
    faust_worker.execute_from_commandline()
