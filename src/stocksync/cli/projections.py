"""`stocksync projections tail`: the channel quantities the worker publishes."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from stocksync.cli.topic_reader import topic_reader
from stocksync.cli_settings import settings_or_exit
from stocksync.codec.outputs import decode_projection

projections_app = typer.Typer(help="What each channel is told.", no_args_is_help=True)


@projections_app.command("tail")
def projections_tail(
    channel: Annotated[str | None, typer.Option(help="Only this channel")] = None,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest message")] = False,
    limit: Annotated[int, typer.Option(help="Stop after this many; 0 = never")] = 0,
    timeout: Annotated[float, typer.Option(help="Stop after this many seconds; 0 = never")] = 0,
) -> None:
    """Print channel quantity updates as the worker publishes them."""
    settings = settings_or_exit()
    consumer = topic_reader(settings, settings.topics.channel_atp, from_beginning)
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
