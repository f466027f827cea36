"""The `stocksync` command."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stocksync.cli_settings import settings_or_exit
from stocksync.config import ConfigError, Settings
from stocksync.connectors.cli import app as connectors_app

if TYPE_CHECKING:
    from confluent_kafka import Consumer

app = typer.Typer(
    help="stocksync: one authoritative ATP number for every sales channel.",
    no_args_is_help=True,
    add_completion=False,
)
topics_app = typer.Typer(help="Provision stocksync's Kafka topics.", no_args_is_help=True)
atp_app = typer.Typer(help="Query available-to-promise.", no_args_is_help=True)
dead_letter_app = typer.Typer(help="Look at rejected input.", no_args_is_help=True)
projections_app = typer.Typer(help="What each channel is told.", no_args_is_help=True)
topology_app = typer.Typer(help="Locations, channels and policies.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(atp_app, name="atp")
app.add_typer(dead_letter_app, name="dead-letter")
app.add_typer(projections_app, name="projections")
app.add_typer(topology_app, name="topology")
app.add_typer(connectors_app)  # `stocksync connector run`, `stocksync endpoints run`


_settings = settings_or_exit


@app.command()
def worker() -> None:
    """Run a worker: fold events into the ATP table and serve the HTTP API."""
    settings = _settings()
    from stocksync.provision import ensure_topics
    from streams.worker import run_worker

    try:
        topology = settings.load_topology()
        if settings.api_keys_file is not None:
            from stocksync.api.auth import load_keys

            # a key scoped to a channel the topology does not know is a config error, not a crash
            load_keys(settings.api_keys_file, channels=topology.channels)
        ensure_topics(settings)
    except (ConfigError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    run_worker(settings)


@topics_app.command("create")
def topics_create() -> None:
    """Create missing topics with their partitions, compaction and retention."""
    settings = _settings()
    from stocksync.provision import ensure_topics, topic_specs

    try:
        created = ensure_topics(settings)
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for spec in topic_specs(settings):
        state = "created" if spec.name in created else "exists"
        typer.echo(f"{state:8} {spec.name} partitions={spec.partitions} {spec.config}")


@app.command()
def simulate(
    events: Annotated[int, typer.Option(help="Events to produce; 0 runs until stopped")] = 0,
    rate: Annotated[float, typer.Option(help="Events per second")] = 20.0,
    skus: Annotated[int, typer.Option(help="Number of SKUs")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed")] = 7,
) -> None:
    """Simulated channels: a warehouse receiving stock, web and app orders, POS sales,
    marketplace sales."""
    settings = _settings()
    from stocksync.channels.simulator import run_simulation

    run_simulation(settings, events=events, rate=rate, sku_count=skus, seed=seed)


@atp_app.command("get")
def atp_get(
    sku: str,
    channel: Annotated[str | None, typer.Option(help="One channel only")] = None,
    url: Annotated[str | None, typer.Option(help="Worker URL")] = None,
) -> None:
    """Print a SKU's ATP from a worker's HTTP API."""
    settings = _settings()
    base = url or f"http://{settings.http_host}:{settings.http_port}"
    query = f"?channel={channel}" if channel else ""
    try:
        with urllib.request.urlopen(f"{base}/v1/atp/{sku}{query}", timeout=5) as resp:
            typer.echo(json.dumps(json.loads(resp.read()), indent=2))
    except urllib.error.HTTPError as exc:
        typer.echo(exc.read().decode(), err=True)
        raise typer.Exit(1) from None
    except urllib.error.URLError as exc:
        typer.echo(f"error: no worker answers at {base}: {exc.reason}", err=True)
        raise typer.Exit(1) from None


@topology_app.command("publish")
def topology_publish(path: Path) -> None:
    """Publish a new topology version; running workers apply it and re-publish every channel
    quantity under it."""
    settings = _settings()
    import yaml

    from stocksync.domain.topology import TopologyError
    from stocksync.provision import ensure_topics
    from stocksync.topology_log import publish_topology

    try:
        document = yaml.safe_load(path.read_text())
        ensure_topics(settings)
        topology = publish_topology(settings, document)
    except (OSError, yaml.YAMLError, TopologyError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"published topology version {topology.version}: {len(topology.locations)} locations, "
        f"{len(topology.channels)} channels"
    )


@topology_app.command("show")
def topology_show() -> None:
    """Print the topology version workers use (newest published, else the file)."""
    settings = _settings()
    from stocksync.topology_log import read_latest_topology

    published = read_latest_topology(settings)
    topology = published or settings.load_topology()
    origin = "topic" if published else str(settings.topology_file)
    typer.echo(f"version {topology.version} (from {origin})")
    for channel in topology.channels.values():
        typer.echo(f"  {channel.id:14} sells from {', '.join(channel.locations)}; {channel.policy}")


def _reader(settings: Settings, topic: str, from_beginning: bool) -> Consumer:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            **settings.librdkafka_config(),
            "group.id": f"stocksync-cli-{time.time_ns()}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    return consumer


@projections_app.command("tail")
def projections_tail(
    channel: Annotated[str | None, typer.Option(help="Only this channel")] = None,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest message")] = False,
    limit: Annotated[int, typer.Option(help="Stop after this many; 0 = never")] = 0,
    timeout: Annotated[float, typer.Option(help="Stop after this many seconds; 0 = never")] = 0,
) -> None:
    """Print channel quantity updates as the worker publishes them."""
    settings = _settings()
    from stocksync.codec.outputs import decode_projection

    consumer = _reader(settings, settings.topics.channel_atp, from_beginning)
    shown = 0
    deadline = time.monotonic() + timeout if timeout else None
    try:
        while (not limit or shown < limit) and (deadline is None or time.monotonic() < deadline):
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            change = decode_projection(msg.value() or b"")
            if channel and change.channel != channel:
                continue
            typer.echo(
                f"{change.channel:14} {change.sku:14} atp={change.quantity:<6} "
                f"revision={change.revision} policy_version={change.policy_version}"
            )
            shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


@dead_letter_app.command("inspect")
def dead_letter_inspect(
    limit: Annotated[int, typer.Option(help="Most messages to show")] = 20,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for messages")] = 5.0,
) -> None:
    """Print dead-lettered messages with their reasons."""
    settings = _settings()
    from stocksync.codec.outputs import decode_dead_letter

    consumer = _reader(settings, settings.topics.dead_letter, from_beginning=True)
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
