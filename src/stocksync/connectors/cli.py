"""`stocksync connector run` and `stocksync endpoints run`.

Wired into the main command with `app.add_typer(connectors_app)` (stocksync/cli/root.py); also
runnable alone: `python -m stocksync.connectors.cli connector run --channel web ...`."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stocksync.bootstrap import file_topology
from stocksync.cli_settings import settings_or_exit
from stocksync.config import ConfigError
from stocksync.logs import configure_logging

if TYPE_CHECKING:  # types only: sim/ may be absent at run time (see _simulated_endpoints)
    from sim.endpoints import EndpointSpec

ServeEndpoints = Callable[[list["EndpointSpec"], asyncio.Event], Awaitable[None]]
SIM_ENDPOINTS = Path("sim") / "endpoints.py"

app = typer.Typer(
    help="Channel connectors and simulated channel endpoints.",
    no_args_is_help=True,
    add_completion=False,
)
connector_app = typer.Typer(help="Push a channel's quantities to its API.", no_args_is_help=True)
endpoints_app = typer.Typer(help="Simulated channel APIs (demo, tests).", no_args_is_help=True)
app.add_typer(connector_app, name="connector")
app.add_typer(endpoints_app, name="endpoints")

DEMO_ENDPOINTS: list[dict[str, Any]] = [
    {
        "channel": "web",
        "kind": "webshop",
        "port": 8181,
        "report_url": "http://127.0.0.1:8191/v1/reports",
    },
    {
        "channel": "amazon",
        "kind": "marketplace",
        "port": 8182,
        "rate_per_s": 5.0,
        "burst": 5,
        "report_url": "http://127.0.0.1:8192/v1/reports",
    },
    {
        "channel": "pos-store-1",
        "kind": "pos",
        "port": 8183,
        "report_url": "http://127.0.0.1:8193/v1/reports",
    },
]


_settings = settings_or_exit


def _run_until_signalled(main: Any) -> None:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


@connector_app.command("run")
def connector_run(
    channel: Annotated[
        str | None, typer.Option(help="Channel id [STOCKSYNC_CONNECTOR_CHANNEL]")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="Channel API base URL [STOCKSYNC_CONNECTOR_ENDPOINT_URL]")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Requests per second [..._RATE_PER_S]")] = None,
    burst: Annotated[int | None, typer.Option(help="Requests at once [..._BURST]")] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Requests in flight [..._CONCURRENCY]")
    ] = None,
    resync_interval: Annotated[
        float | None, typer.Option(help="Full resync every N s, 0 = off [..._RESYNC_INTERVAL_S]")
    ] = None,
    drift_percent: Annotated[
        float | None, typer.Option(help="Drift threshold % [..._DRIFT_THRESHOLD_PERCENT]")
    ] = None,
    drift_floor: Annotated[
        int | None, typer.Option(help="Drift threshold floor, units [..._DRIFT_FLOOR_UNITS]")
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help="Report/status API port, 0 = off [..._HTTP_PORT]")
    ] = None,
) -> None:
    """Consume the channel's projection and push it to the channel's API within its budget."""
    settings = _settings()
    from stocksync.connectors.runtime import Connector
    from stocksync.connectors.settings import load_connector_settings
    from stocksync.provision import ensure_topics

    try:
        config = load_connector_settings(
            channel=channel,
            endpoint_url=endpoint,
            rate_per_s=rate,
            burst=burst,
            concurrency=concurrency,
            resync_interval_s=resync_interval,
            drift_threshold_percent=drift_percent,
            drift_floor_units=drift_floor,
            http_port=http_port,
        )
        topology = file_topology(settings)
        config.check_channel(topology)
        ensure_topics(settings)
    except (ConfigError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    connector = Connector(settings, config, low_stock=config.low_stock(topology))
    _run_until_signalled(connector.run)


def _simulated_endpoints() -> tuple[type[EndpointSpec], ServeEndpoints]:
    """sim.endpoints, imported when `endpoints run` runs and not before: sim/ is demo code at
    the top of the repository, not installed with the library, so the connector commands must
    not need it. From a checkout it is found even when `stocksync` is started from elsewhere."""
    try:
        from sim.endpoints import EndpointSpec, serve_endpoints
    except ModuleNotFoundError as exc:
        if exc.name not in ("sim", "sim.endpoints"):
            raise  # sim.endpoints is there but something it needs is not: show that
        checkout = Path(__file__).resolve().parents[3]  # src/stocksync/connectors/cli.py
        if not (checkout / SIM_ENDPOINTS).is_file():
            typer.echo(
                f"error: `endpoints run` needs the simulated channel endpoints ({SIM_ENDPOINTS}), "
                "which are not installed with stocksync: run it from a stocksync checkout "
                "installed with `pip install -e .`, or put the root of a checkout on PYTHONPATH",
                err=True,
            )
            raise typer.Exit(2) from None
        sys.path.insert(0, str(checkout))
        from sim.endpoints import EndpointSpec, serve_endpoints
    return EndpointSpec, serve_endpoints


@endpoints_app.command("run")
def endpoints_run(
    config: Annotated[
        Path | None,
        typer.Option(
            help="YAML list of endpoints (channel, kind, port, rate_per_s, burst, "
            "latency_ms, report_url, report_interval_s); default: the demo set"
        ),
    ] = None,
) -> None:
    """Run simulated channel APIs: a web shop, a rate-limited marketplace (429), a POS."""
    import yaml

    endpoint_spec, serve_endpoints = _simulated_endpoints()
    configure_logging()
    try:
        raw = yaml.safe_load(config.read_text()) if config else DEMO_ENDPOINTS
        if not isinstance(raw, list):
            raise ValueError("expected a YAML list of endpoints")
        specs = [endpoint_spec.of(dict(item)) for item in raw]
    except (OSError, yaml.YAMLError, ValueError, TypeError) as exc:
        typer.echo(f"error: --config {config}: {exc}", err=True)
        raise typer.Exit(2) from None
    for spec in specs:
        typer.echo(f"{spec.channel:14} {spec.kind.value:12} {spec.url}", err=True)
    _run_until_signalled(lambda stop: serve_endpoints(specs, stop))


if __name__ == "__main__":
    app()
