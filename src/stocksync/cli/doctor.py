"""`stocksync doctor`: check a deployment end to end and say what to fix."""

from __future__ import annotations

from typing import Annotated

import typer

from stocksync.cli_settings import settings_or_exit
from stocksync.config import Settings
from stocksync.doctor.checks import healthy, run_checks
from stocksync.doctor.gather import expectations, gather
from stocksync.doctor.report import as_json, as_table


def doctor(
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            help="A worker to check (repeat for each); default: STOCKSYNC_HTTP_HOST/_PORT",
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document instead of the table")
    ] = False,
    sample: Annotated[
        int, typer.Option(min=1, help="Newest records read per partition for schemas and clocks")
    ] = 20,
    max_lag: Annotated[
        int, typer.Option(min=0, help="Input records a worker may have waiting")
    ] = 1000,
    max_skew: Annotated[
        float, typer.Option(min=0, help="Seconds an event time may be ahead of this clock")
    ] = 30.0,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for each answer")] = 10.0,
) -> None:
    """Check the deployment: brokers and their Kafka release, every topic (partitions,
    compaction, retention, co-partitioning), the workers (ready, lag), producers' clocks (the
    newest event times against now) and the schema ids on each topic.

    Prints one row per check (check, status, detail, and for a failing row the fix). Exit 0
    when every check passes, 1 when one fails, 2 on bad settings.
    """
    settings = settings_or_exit()
    expect = expectations(settings, max_lag, max_skew)
    urls = list(url) if url else [_default_url(settings)]
    facts = gather(settings, expect, urls, sample, timeout)
    rows = run_checks(facts, expect)
    typer.echo(as_json(rows) if json_output else as_table(rows))
    if not healthy(rows):
        raise typer.Exit(1)


def _default_url(settings: Settings) -> str:
    # the worker's own address as the other commands reach it; a wildcard bind is reached
    # on this machine
    host = settings.http_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{settings.http_port}"
