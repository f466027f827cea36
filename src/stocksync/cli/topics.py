"""`stocksync topics create`: provision stocksync's Kafka topics."""

from __future__ import annotations

import typer

from stocksync.cli_settings import settings_or_exit
from stocksync.provision import ensure_topics, topic_specs

topics_app = typer.Typer(help="Provision stocksync's Kafka topics.", no_args_is_help=True)


@topics_app.command("create")
def topics_create() -> None:
    """Create missing topics with their partitions, compaction and retention."""
    settings = settings_or_exit()
    try:
        created = ensure_topics(settings)
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for spec in topic_specs(settings):
        state = "created" if spec.name in created else "exists"
        typer.echo(f"{state:8} {spec.name} partitions={spec.partitions} {spec.config}")
