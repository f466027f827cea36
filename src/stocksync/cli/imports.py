"""`stocksync import FILE`: a stock snapshot (CSV or JSON lines) as absolute COUNTED events
(and SAFETY_STOCK_SET where the file has a safety_stock column), sent to the stock-events topic.

The rows are checked and turned into events by service/snapshot_import.py and sent by
channels/snapshot_sender.py; this module reads the options, shows progress, prints the report
and exits with what happened."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Annotated, NoReturn, TextIO

import typer
from confluent_kafka import KafkaException

from stocksync.adapters.kafka.clients import TopicMissing
from stocksync.bootstrap import current_topology, file_topology
from stocksync.channels.snapshot_sender import (
    ImportOptions,
    check_topic,
    import_producer,
    open_rows,
    run_import,
    summarize,
)
from stocksync.cli_settings import settings_or_exit
from stocksync.config import ConfigError, Settings
from stocksync.progress import Progress
from stocksync.service.snapshot_import import (
    ImportReport,
    Rejection,
    SnapshotError,
    format_for,
    parse_as_of,
    parse_columns,
    rfc3339,
)

# Exit codes: what a script running the import needs to tell apart.
EXIT_REJECTED = 1  # some rows were refused (each named); every other row was imported
EXIT_CANNOT_START = 2  # an option, the file's header or Kafka's topic is wrong: nothing sent
EXIT_NOT_DELIVERED = 3  # Kafka refused events (counted); import again once it takes them


def import_snapshot(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="CSV (.csv) or JSON lines (.jsonl)"
        ),
    ],
    format_: Annotated[
        str | None,
        typer.Option("--format", help="csv or jsonl; by default from the file name's ending"),
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            help="FIELD=COLUMN: the file's column for a field (sku, location, on_hand, "
            "safety_stock), e.g. --column sku=ItemNo --column on_hand=Qty; repeat it",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="When the snapshot was taken, RFC 3339 (2026-11-03T06:00:00Z); default now",
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Write every refused row (line, sku, location, reason) to this CSV"),
    ] = None,
    show: Annotated[int, typer.Option(min=0, help="Refused rows printed")] = 20,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row, send nothing")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (as POST /v1/imports)")
    ] = False,
) -> None:
    """Import a stock snapshot: each row `sku, location, on_hand[, safety_stock]` sets that
    SKU's on_hand at that location (an absolute cycle count as of --as-of) and, where given,
    its safety stock.

    Every row is checked (the worker's limits; location one token without whitespace or ':';
    whole numbers >= 0; one row per SKU and location). A refused row is named with its line and
    reason and nothing of it is sent; the other rows still go. Importing the same file again
    changes nothing: its events carry the same source (from the file's SHA-256) and sequences
    (from the line numbers), which the fold recognises as already applied.

    Counts merge by event time: a count as of a time older than the last count merged at that
    location is not merged (a COUNT_NOT_MERGED alert says so), and movements after --as-of
    still apply on top of the count. Give --as-of the time the snapshot was taken.

    Exit 0: every row imported; 1: some rows refused, the others imported; 2: nothing sent
    (an option, the header, the topic or Kafka is wrong); 3: Kafka refused events (the report
    counts them; they go to --rejects too).
    """
    settings = settings_or_exit()
    try:
        fmt = format_for(file.name, format_)
        columns = parse_columns(column or [])
        as_of_ms = parse_as_of(as_of, int(time.time() * 1000))
    except SnapshotError as exc:
        _fail(str(exc))
    options = ImportOptions(fmt, columns, as_of_ms, dry_run=dry_run, keep_rejections=show)
    report = _run(settings, file, options, rejects)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_report(file, report, rejects, show)
    if report.not_delivered:
        raise typer.Exit(EXIT_NOT_DELIVERED)
    if report.rejected:
        raise typer.Exit(EXIT_REJECTED)


def _run(
    settings: Settings, file: Path, options: ImportOptions, rejects: Path | None
) -> ImportReport:
    summary = summarize(file, options.columns)
    try:
        rows = open_rows(file, options.format, options.columns)
    except SnapshotError as exc:
        _fail(str(exc))
    producer = None
    if not options.dry_run:
        try:
            check_topic(settings, settings.topics.stock_events)
        except (TopicMissing, KafkaException) as exc:
            _fail(f"cannot import to Kafka at {settings.bootstrap_servers}: {exc}")
        producer = import_producer(settings, summary.identity)
    known = _known_locations(settings, options.dry_run)
    header_lines = 1 if options.format == "csv" else 0
    progress = Progress(f"import {summary.identity.source}: rows", summary.lines - header_lines)
    out = _RejectsFile(rejects) if rejects is not None else None
    try:
        report = run_import(
            rows,
            summary.identity,
            options,
            producer,
            known_locations=known,
            on_reject=out.write if out is not None else None,
            on_rows=progress.advance,
        )
    finally:
        if out is not None:
            out.close()
    progress.done()
    return report


def _known_locations(settings: Settings, dry_run: bool) -> frozenset[str] | None:
    """The locations of the topology in force (the file's for a dry run, which needs no
    Kafka), to warn about rows elsewhere; None when it cannot be read."""
    try:
        topology = file_topology(settings) if dry_run else current_topology(settings)
    except (ConfigError, KafkaException, RuntimeError) as exc:
        typer.echo(f"warning: locations not checked, the topology is not readable: {exc}", err=True)
        return None
    return frozenset(topology.locations)


class _RejectsFile:
    """Every refused row as CSV, written as it is found (a file of a million bad rows is
    never held in memory)."""

    def __init__(self, path: Path) -> None:
        self._stream: TextIO = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._stream)
        self._writer.writerow(["line", "sku", "location", "reason"])

    def write(self, rejection: Rejection) -> None:
        self._writer.writerow(
            [rejection.line, rejection.sku or "", rejection.location or "", rejection.reason]
        )

    def close(self) -> None:
        self._stream.close()


def _print_report(file: Path, report: ImportReport, rejects: Path | None, show: int) -> None:
    typer.echo(
        f"{file.name}: {report.rows:,} rows, source {report.source}, as of "
        f"{rfc3339(report.as_of_ms)}, {report.seconds:.1f}s"
    )
    if report.dry_run:
        typer.echo(f"  valid     {report.valid:>12,} rows (dry run: nothing sent)")
    else:
        events = ", ".join(f"{n:,} {kind}" for kind, n in report.events.items()) or "no events"
        typer.echo(f"  imported  {report.imported:>12,} rows ({events})")
    typer.echo(f"  rejected  {report.rejected:>12,} rows")
    shown = report.rejections[:show]
    for rejection in shown:
        typer.echo(f"    line {rejection.line}{_where(rejection)}: {rejection.reason}")
    if report.rejected > len(shown):
        hint = f"all are in {rejects}" if rejects else "write them all with --rejects FILE"
        typer.echo(f"    ... and {report.rejected - len(shown):,} more: {hint}")
    elif report.rejected and rejects is not None:
        typer.echo(f"    (also in {rejects})")
    if report.unknown_locations:
        listed = ", ".join(f"{loc} ({n:,} rows)" for loc, n in report.unknown_locations.items())
        typer.echo(
            f"  warning: locations the topology does not name: {listed}; their units are kept "
            "but sold by no channel until the topology names them"
        )
    if report.not_delivered:
        lines = ", ".join(str(line) for line in report.not_delivered_lines[:10])
        typer.echo(
            f"  NOT DELIVERED {report.not_delivered:,} event(s), Kafka said: "
            f"{report.delivery_error}; first lines: {lines or 'unknown'}. Import the file again "
            "once Kafka takes them (rows already applied are skipped); a SKU with a later row "
            "that got through ignores its earlier rows' re-send: import the rows listed "
            f"{'in ' + str(rejects) if rejects else 'with --rejects FILE'} as a file of their own"
        )


def _where(rejection: Rejection) -> str:
    if rejection.sku is None and rejection.location is None:
        return ""
    return f" ({rejection.sku or '?'} at {rejection.location or '?'})"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_CANNOT_START)
