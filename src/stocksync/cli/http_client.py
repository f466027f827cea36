"""The one HTTP client of the CLI: calls a worker's HTTP API, turns "no answer" into exit 2 and
the API's JSON error shape (`{"error": code, "message": text}`) into one clear line."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Annotated, NoReturn

import typer

from stocksync.config import Settings

WorkerUrl = Annotated[
    str | None, typer.Option("--url", help="Worker URL (default: STOCKSYNC_HTTP_HOST/_PORT)")
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="STOCKSYNC_API_KEY",
        help="API key, sent as `Authorization: Bearer`",
        show_default=False,
    ),
]

DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, object]  # a JSON object; anything else is wrapped (see _parse)
    text: str  # the body as sent, for commands that print the worker's words verbatim


class WorkerClient:
    """`WorkerClient(settings, url, api_key).call("GET", "/v1/atp/SKU-1")`."""

    def __init__(self, settings: Settings, url: str | None, api_key: str | None = None) -> None:
        self.base_url = (url or f"http://{settings.http_host}:{settings.http_port}").rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> Reply:
        """The worker's reply, whatever its status; exits 2 when no worker answers."""
        url = f"{self.base_url}{path}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        for name, value in {**self.headers, **(headers or {})}.items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            typer.echo(f"error: no worker answers at {url}: {reason}", err=True)
            raise typer.Exit(2) from None
        return Reply(status, _parse(raw), raw.decode(errors="replace"))


def quote(segment: str) -> str:
    """One path segment of a URL (a reservation id may hold `/` or spaces)."""
    return urllib.parse.quote(segment, safe="")


def print_json(body: dict[str, object]) -> None:
    typer.echo(json.dumps(body, indent=2))


def fail(reply: Reply) -> NoReturn:
    """Print a refused request's reply, then why it was refused, and exit 2."""
    print_json(reply.body)
    typer.echo(
        f"error: HTTP {reply.status} {reply.body.get('error')}: {reply.body.get('message')}",
        err=True,
    )
    raise typer.Exit(2)


def _parse(raw: bytes) -> dict[str, object]:
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        # a proxy's HTML error page, say: still shown in the `error: HTTP ...` line
        return {"error": "not_json", "message": raw[:200].decode(errors="replace")}
    return parsed if isinstance(parsed, dict) else {"body": parsed}
