"""`stocksync reserve` and `stocksync reservation show|release|confirm|cancel`: reservations
through a worker's HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from stocksync.cli.http_client import ApiKey, WorkerClient, WorkerUrl, fail, print_json, quote
from stocksync.cli_settings import settings_or_exit

reservation_app = typer.Typer(help="Act on a reservation by its id.", no_args_is_help=True)


def reserve(
    sku: str,
    channel: Annotated[str, typer.Option(help="The channel the units are held for")],
    quantity: Annotated[int, typer.Option(min=1, help="Units to hold")],
    location: Annotated[str | None, typer.Option(help="Hold at this location only")] = None,
    ttl_seconds: Annotated[int, typer.Option(min=1, help="Hold expires after this")] = 900,
    key: Annotated[
        str | None,
        typer.Option(help="Idempotency-Key (the reservation id): a retry never holds twice"),
    ] = None,
    allow_partial: Annotated[
        bool, typer.Option(help="Hold what is available when it is less than asked")
    ] = False,
    url: WorkerUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Hold units of a SKU for a channel through a worker's HTTP API (POST /v1/reservations).

    Prints the reply as JSON. Exit 0 held, 1 refused (not enough stock: the reply says how
    many are available), 2 any other error (invalid request, no answer, timeout: retry with
    the same --key)."""
    client = WorkerClient(settings_or_exit(), url, api_key)
    reply = client.call(
        "POST",
        "/v1/reservations",
        {
            "channel": channel,
            "sku": sku,
            "quantity": quantity,
            "location": location,
            "ttl_seconds": ttl_seconds,
            "allow_partial": allow_partial,
        },
        {"Idempotency-Key": key} if key else None,
    )
    body = reply.body
    if reply.status == 201:
        print_json(body)
        typer.echo(
            f"held {body.get('quantity')} of {sku} for {channel} at {body.get('location')}: "
            f"reservation {body.get('reservation_id')}",
            err=True,
        )
        return
    if reply.status == 409 and body.get("error") == "insufficient_stock":
        print_json(body)
        typer.echo(
            f"refused: {channel} may have {body.get('available')} of {sku}, asked for {quantity}",
            err=True,
        )
        raise typer.Exit(1)
    fail(reply)


def _act(
    reservation_id: str, method: str, suffix: str, url: str | None, api_key: str | None
) -> None:
    client = WorkerClient(settings_or_exit(), url, api_key)
    reply = client.call(method, f"/v1/reservations/{quote(reservation_id)}{suffix}")
    if reply.status != 200:
        fail(reply)
    print_json(reply.body)


@reservation_app.command("show")
def reservation_show(reservation_id: str, url: WorkerUrl = None, api_key: ApiKey = None) -> None:
    """A reservation: held or confirmed (with its lines), or how it ended (released,
    expired, cancelled, fulfilled). Exit 2 if unknown."""
    _act(reservation_id, "GET", "", url, api_key)


@reservation_app.command("release")
def reservation_release(reservation_id: str, url: WorkerUrl = None, api_key: ApiKey = None) -> None:
    """Release a held reservation (its units become available). Exit 2 if it is not held."""
    _act(reservation_id, "DELETE", "", url, api_key)


@reservation_app.command("confirm")
def reservation_confirm(reservation_id: str, url: WorkerUrl = None, api_key: ApiKey = None) -> None:
    """Confirm a held reservation: it becomes an open order line (units stay reserved until a
    FULFILLED naming it ships them, or it is cancelled). Exit 2 if it is not held."""
    _act(reservation_id, "POST", "/confirm", url, api_key)


@reservation_app.command("cancel")
def reservation_cancel(reservation_id: str, url: WorkerUrl = None, api_key: ApiKey = None) -> None:
    """Cancel a confirmed order line before it ships: its units become available again.
    Exit 2 if it is not a confirmed order line (release a held one instead)."""
    _act(reservation_id, "POST", "/cancel", url, api_key)
