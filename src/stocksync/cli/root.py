"""The `stocksync` command: the one typer app every command group is added to, and `main`."""

from __future__ import annotations

import sys

import typer

from stocksync.cli.atp import atp_app
from stocksync.cli.dead_letters import dead_letter_app
from stocksync.cli.doctor import doctor
from stocksync.cli.imports import import_snapshot
from stocksync.cli.local_broker import kafka_app
from stocksync.cli.projections import projections_app
from stocksync.cli.replay import replay
from stocksync.cli.reservations import reservation_app, reserve
from stocksync.cli.simulate import simulate
from stocksync.cli.topics import topics_app
from stocksync.cli.topology import topology_app
from stocksync.cli.worker import worker
from stocksync.config import ConfigError
from stocksync.connectors.cli import app as connectors_app

app = typer.Typer(
    help="stocksync: one authoritative ATP number for every sales channel.",
    no_args_is_help=True,
    add_completion=False,
    # help paragraphs are reflowed to the terminal's width (docstrings are wrapped at 100)
    rich_markup_mode="markdown",
)
# `stocksync --help` lists commands in the order they are added here
app.command()(worker)
app.command()(simulate)
app.command()(reserve)
app.command()(replay)
app.command()(doctor)
app.command("import")(import_snapshot)
app.add_typer(topics_app, name="topics")
app.add_typer(atp_app, name="atp")
app.add_typer(dead_letter_app, name="dead-letter")
app.add_typer(projections_app, name="projections")
app.add_typer(topology_app, name="topology")
app.add_typer(kafka_app, name="kafka")
app.add_typer(reservation_app, name="reservation")
app.add_typer(connectors_app)  # `stocksync connector run`, `stocksync endpoints run`


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except ConfigError as exc:  # any command: the message names the setting and the fix
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
