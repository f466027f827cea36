"""`stocksync kafka up|down|status`: the local single-node broker, through the launcher script
of a checkout (deploy/kafka/kafka.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from stocksync.cli.checkout import CHECKOUT

KAFKA_SCRIPT = CHECKOUT / "deploy" / "kafka" / "kafka.sh"

KafkaPort = Annotated[
    int,
    typer.Option(envvar="STOCKSYNC_KAFKA_PORT", min=1, max=65535, help="Broker port"),
]
KafkaScript = Annotated[
    Path,
    typer.Option(envvar="STOCKSYNC_KAFKA_SCRIPT", help="The launcher script"),
]

kafka_app = typer.Typer(
    help="The local single-node Kafka broker (deploy/kafka/kafka.sh).", no_args_is_help=True
)


def _run_launcher(action: str, port: int, script: Path, needs_java: bool = False) -> NoReturn:
    """Run `kafka.sh ACTION` and exit with its exit code."""
    if not script.is_file():
        typer.echo(
            f"error: the Kafka launcher {script} is missing: run from a stocksync checkout or "
            f"pass --script / STOCKSYNC_KAFKA_SCRIPT (or run your own broker and set "
            f"STOCKSYNC_BOOTSTRAP_SERVERS)",
            err=True,
        )
        raise typer.Exit(2)
    if needs_java and shutil.which("java") is None:
        typer.echo(
            "error: Java 17+ is required to run Kafka and `java` is not on PATH: install a "
            "JDK, or run a broker elsewhere (docker-compose.kafka.yml) and set "
            "STOCKSYNC_BOOTSTRAP_SERVERS",
            err=True,
        )
        raise typer.Exit(2)
    env = {**os.environ, "STOCKSYNC_KAFKA_PORT": str(port)}
    result = subprocess.run(["bash", str(script), action], env=env, check=False)
    raise typer.Exit(result.returncode)


@kafka_app.command("up")
def kafka_up(port: KafkaPort = 9092, script: KafkaScript = KAFKA_SCRIPT) -> None:
    """Start the local broker (KRaft, single node) and wait until it answers; prints its
    bootstrap address. Fetches the Kafka jars with Maven on first use."""
    _run_launcher("start", port, script, needs_java=True)


@kafka_app.command("down")
def kafka_down(port: KafkaPort = 9092, script: KafkaScript = KAFKA_SCRIPT) -> None:
    """Stop the local broker on this port (its data is kept)."""
    _run_launcher("stop", port, script)


@kafka_app.command("status")
def kafka_status(port: KafkaPort = 9092, script: KafkaScript = KAFKA_SCRIPT) -> None:
    """Whether the local broker on this port runs. Exit 0 running, 3 stopped."""
    _run_launcher("status", port, script)
