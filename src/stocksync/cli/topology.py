"""`stocksync topology publish|show`: locations, channels and their policies."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from stocksync.bootstrap import file_topology, topology_in_force
from stocksync.cli_settings import settings_or_exit
from stocksync.domain.topology import Channel, TopologyError
from stocksync.provision import ensure_topics
from stocksync.topology_log import publish_topology, read_latest_topology

topology_app = typer.Typer(help="Locations, channels and policies.", no_args_is_help=True)


@topology_app.command("publish")
def topology_publish(path: Path) -> None:
    """Publish a new topology version; running workers apply it and re-publish every channel
    quantity under it."""
    settings = settings_or_exit()
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
    """Print the topology version workers use (the newest published, unless the file's is
    newer)."""
    settings = settings_or_exit()
    from_file = file_topology(settings)  # a bad file is reported first, without Kafka
    published = read_latest_topology(settings)
    topology = topology_in_force(from_file, published)
    origin = "topic" if topology is published else str(settings.topology_file)
    typer.echo(f"version {topology.version} (from {origin})")
    for channel in topology.channels.values():
        typer.echo(f"  {channel.id:14} sells from {', '.join(channel.locations)}; {_told(channel)}")
        if channel.sourcing:
            tiers = " then ".join("/".join(tier) for tier in channel.sourcing)
            typer.echo(f"  {'':14} reservations take stock from {tiers}")


def _told(channel: Channel) -> str:
    """What the channel's policy withholds, in words."""
    policy = channel.policy
    rules = [
        f"buffer {policy.buffer_percent}%" if policy.buffer_percent else "",
        f"buffer {policy.buffer_units} units" if policy.buffer_units else "",
        f"cap {policy.cap}" if policy.cap is not None else "",
        f"low stock at {policy.low_stock}" if policy.low_stock else "",
    ]
    return ", ".join(r for r in rules if r) or "no buffer, no cap"
