"""`stocksync atp get`: a SKU's available-to-promise, from a worker's HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from stocksync.cli.http_client import WorkerClient, print_json
from stocksync.cli_settings import settings_or_exit

ATP_TIMEOUT_S = 5.0

atp_app = typer.Typer(help="Query available-to-promise.", no_args_is_help=True)


@atp_app.command("get")
def atp_get(
    sku: str,
    channel: Annotated[str | None, typer.Option(help="One channel only")] = None,
    url: Annotated[str | None, typer.Option(help="Worker URL")] = None,
) -> None:
    """Print a SKU's ATP from a worker's HTTP API."""
    client = WorkerClient(settings_or_exit(), url)
    query = f"?channel={channel}" if channel else ""
    reply = client.call("GET", f"/v1/atp/{sku}{query}", timeout=ATP_TIMEOUT_S)
    if not 200 <= reply.status < 300:
        typer.echo(reply.text, err=True)
        # an unknown SKU is an answer (1); anything else the worker refused is an error (2)
        raise typer.Exit(1 if reply.status == 404 else 2)
    print_json(reply.body)
