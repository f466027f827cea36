"""`stocksync dead-letter inspect|redrive`: look at rejected input, and send it again once its
cause is fixed."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from confluent_kafka import KafkaException

from stocksync.cli.topic_reader import topic_reader
from stocksync.cli_settings import settings_or_exit
from stocksync.codec.outputs import decode_dead_letter
from stocksync.config import Settings
from stocksync.progress import Progress
from stocksync.redrive import RedriveReport, progress_group, redrive

dead_letter_app = typer.Typer(help="Look at rejected input.", no_args_is_help=True)


@dead_letter_app.command("inspect")
def dead_letter_inspect(
    limit: Annotated[int, typer.Option(help="Most messages to show")] = 20,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for messages")] = 5.0,
) -> None:
    """Print dead-lettered messages with their reasons."""
    settings = settings_or_exit()
    consumer = topic_reader(settings, settings.topics.dead_letter, from_beginning=True)
    shown = 0
    deadline = time.monotonic() + timeout
    try:
        while shown < limit and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            record = decode_dead_letter(msg.value() or b"")
            original = record.pop("original_value") or b""
            record["original_key"] = (record["original_key"] or b"").decode(errors="replace")
            record["original_value_hex"] = original[:64].hex()
            typer.echo(json.dumps(record))
            shown += 1
    finally:
        consumer.close()
    typer.echo(f"{shown} dead-lettered message(s) shown", err=True)


@dead_letter_app.command("redrive")
def dead_letter_redrive(
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            "--error",
            help="Only dead letters of this class (their `error` field, e.g. invalid)",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="Re-drive at most this many; 0 = all")] = 0,
    dry_run: Annotated[
        bool, typer.Option(help="List what would be re-driven; send and record nothing")
    ] = False,
) -> None:
    """Send dead-lettered messages again: each one's original bytes, with its original key,
    to the topic it came from (stock, sale or command topic), e.g. after fixing the topology
    that made them invalid. Idempotent producer, murmur2 partitioning.

    A dead letter's class is its `error` field (undecodable, unknown_schema, invalid,
    key_mismatch, wrong_partition, source_mismatch, internal); `--reason` picks one. Progress
    is recorded per class in a consumer group `<app_id>-redrive-<class>` on the dead-letter
    topic, committed after Kafka acknowledged the messages: running it twice never sends a
    dead letter twice, and a run limited to one class leaves the others for later. A message
    whose cause is not fixed is dead-lettered again. Exit 0, or 2 if a message was not
    acknowledged (it stays for the next run)."""
    settings = settings_or_exit()
    # the total is known only once redrive has read the topic's offsets
    holder: list[Progress] = []

    def on_total(total: int) -> None:
        holder.append(Progress("redrive: dead letters read", total))

    def on_read(n: int) -> None:
        holder[0].advance(n)

    try:
        report = redrive(
            settings,
            reason=reason,
            limit=limit,
            dry_run=dry_run,
            on_total=on_total,
            on_read=on_read,
        )
    except (KafkaException, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if holder:
        holder[0].done()
    _print_report(settings, report, dry_run)
    if report.failed:
        for failure in report.failed:
            typer.echo(f"error: {failure}", err=True)
        raise typer.Exit(2)


def _print_report(settings: Settings, report: RedriveReport, dry_run: bool) -> None:
    verb = "would re-drive" if dry_run else "re-driven"
    for letter in report.sent:
        key = (letter.key or b"").decode(errors="replace")
        typer.echo(
            f"{verb}: dead letter {letter.partition}:{letter.offset} error={letter.kind} "
            f"-> {letter.topic} key={key}"
        )
    typer.echo(
        f"{verb} {report.redriven}; already re-driven {report.already}; other classes "
        f"{report.other_reason}; not re-drivable {report.not_redrivable}; left by --limit "
        f"{report.left}"
    )
    if not dry_run and report.redriven:
        typer.echo(
            f"progress recorded in consumer group(s) {progress_group(settings, '<class>')}",
            err=True,
        )
