"""Settings for a CLI command: loaded once, or the command exits 2 with the error (which names
the key and the fix) instead of a traceback."""

from __future__ import annotations

import typer

from stocksync.config import ConfigError, Settings, load_settings
from stocksync.logs import configure_logging


def settings_or_exit() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_json, settings.faust_verbose)
    return settings
