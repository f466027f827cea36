"""`stocksync worker`: fold events into the ATP table and serve the HTTP API."""

from __future__ import annotations

import typer

from stocksync.bootstrap import worker_wiring
from stocksync.cli_settings import settings_or_exit
from stocksync.config import ConfigError
from stocksync.provision import ensure_topics


def worker() -> None:
    """Run a worker: fold events into the ATP table and serve the HTTP API."""
    settings = settings_or_exit()
    try:
        # the topology in force and the API keys: a bad file stops here, with its entry named
        wiring = worker_wiring(settings)
        ensure_topics(settings)
    except (ConfigError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    # Deferred: `streams` (the faust app) is built on the library, never the other way round;
    # this command is its entry point and the one place the library imports it, so no other
    # command loads faust.
    from stocksync.streams.worker import run_worker

    run_worker(wiring)
