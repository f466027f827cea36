"""The `stocksync` command (console script `stocksync = "stocksync.cli:main"`): one typer app
(root.py), a module per command group, and one HTTP client for the worker's API
(http_client.py)."""

from stocksync.cli.root import app, main

__all__ = ["app", "main"]
