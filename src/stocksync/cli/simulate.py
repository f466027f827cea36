"""`stocksync simulate`: simulated channels producing stock and sale events, from the
simulator of a stocksync checkout (sim/simulator.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from stocksync.cli.checkout import CHECKOUT
from stocksync.cli_settings import settings_or_exit


def simulate(
    events: Annotated[int, typer.Option(help="Events to produce; 0 runs until stopped")] = 0,
    rate: Annotated[float, typer.Option(help="Events per second")] = 20.0,
    skus: Annotated[int, typer.Option(help="Number of SKUs")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed")] = 7,
) -> None:
    """Simulated channels: a warehouse receiving stock, web and app orders, POS sales,
    marketplace sales."""
    settings = settings_or_exit()
    run_simulation = _load_simulator()
    run_simulation(settings, events=events, rate=rate, sku_count=skus, seed=seed)


def _load_simulator() -> Callable[..., int]:
    """sim.simulator.run_simulation, or exit 2 saying how to make it importable."""
    # Deferred: sim/ is demo and test code of the repository, not installed with the library,
    # so it is imported only when this command runs, and only a checkout has it.
    try:
        from sim.simulator import run_simulation
    except ModuleNotFoundError as exc:
        if exc.name not in ("sim", "sim.simulator"):
            raise
        if not (CHECKOUT / "sim" / "simulator.py").is_file():
            typer.echo(
                "error: the simulator (sim/simulator.py) is not installed with stocksync: run "
                "`stocksync simulate` from a stocksync checkout installed with "
                "`pip install -e .`, or put the root of a checkout on PYTHONPATH",
                err=True,
            )
            raise typer.Exit(2) from None
        # An editable install runs from a checkout that has sim/, but a console script's
        # sys.path holds neither the checkout nor the working directory.
        sys.path.append(str(CHECKOUT))
        from sim.simulator import run_simulation
    return run_simulation
