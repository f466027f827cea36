"""The `stocksync` command without a broker: the worker's HTTP client turning replies into exit
codes and messages, and `simulate` outside a checkout. (Every command against a real broker and
worker: tests/integration/test_cli.py.)"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import stocksync.cli.simulate as simulate_command
import stocksync.cli_settings
from stocksync.cli import app

NO_BROKER = {"STOCKSYNC_BOOTSTRAP_SERVERS": "127.0.0.1:1"}


@pytest.fixture(autouse=True)
def no_logging_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    # structlog would keep writing to the runner's stream, which is closed after invoke
    monkeypatch.setattr(stocksync.cli_settings, "configure_logging", lambda *_args: None)


@pytest.fixture
def worker_replying() -> Iterator[tuple[list[tuple[int, bytes]], str]]:
    """A stand-in worker answering each request with the next (status, body) of a list."""
    replies: list[tuple[int, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, payload = replies.pop(0)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _answer  # noqa: N815 (http.server's handler names)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield replies, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def test_an_api_error_is_printed_as_json_and_one_line_naming_it(
    worker_replying: tuple[list[tuple[int, bytes]], str],
) -> None:
    replies, url = worker_replying
    error = {"error": "unknown_reservation", "message": "no reservation r-1"}
    replies.append((404, json.dumps(error).encode()))
    result = CliRunner().invoke(app, ["reservation", "show", "r-1", "--url", url], env=NO_BROKER)
    assert result.exit_code == 2
    assert json.loads(result.stdout) == error
    assert "error: HTTP 404 unknown_reservation: no reservation r-1" in result.stderr


def test_a_reply_that_is_not_json_is_still_named(
    worker_replying: tuple[list[tuple[int, bytes]], str],
) -> None:
    replies, url = worker_replying
    replies.append((502, b"<html>bad gateway</html>"))
    args = ["reserve", "A", "--channel", "web", "--quantity", "1", "--url", url]
    result = CliRunner().invoke(app, args, env=NO_BROKER)
    assert result.exit_code == 2
    assert "error: HTTP 502 not_json: <html>bad gateway</html>" in result.stderr


def test_atp_get_prints_the_workers_refusal_verbatim(
    worker_replying: tuple[list[tuple[int, bytes]], str],
) -> None:
    replies, url = worker_replying
    refusal = b'{"error":"unknown_sku","message":"never seen"}'
    replies += [(404, refusal), (400, b'{"error":"unknown_channel"}')]
    unknown = CliRunner().invoke(app, ["atp", "get", "X", "--url", url], env=NO_BROKER)
    assert (unknown.exit_code, unknown.stderr.strip()) == (1, refusal.decode())
    refused = CliRunner().invoke(app, ["atp", "get", "X", "--url", url], env=NO_BROKER)
    assert refused.exit_code == 2


def test_no_worker_answering_exits_2() -> None:
    result = CliRunner().invoke(
        app, ["atp", "get", "X", "--url", "http://127.0.0.1:1"], env=NO_BROKER
    )
    assert result.exit_code == 2
    assert "error: no worker answers at http://127.0.0.1:1/v1/atp/X" in result.stderr


def test_simulate_outside_a_checkout_exits_2_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an installation where sim/ is neither importable nor next to the package
    # (both entries: other tests may have imported sim.simulator already)
    monkeypatch.setitem(sys.modules, "sim", None)
    monkeypatch.setitem(sys.modules, "sim.simulator", None)
    monkeypatch.setattr(simulate_command, "CHECKOUT", Path("/nonexistent"))
    result = CliRunner().invoke(app, ["simulate", "--events", "1"], env=NO_BROKER)
    assert result.exit_code == 2
    assert "not installed with stocksync" in result.stderr
    assert "checkout" in result.stderr and "PYTHONPATH" in result.stderr
