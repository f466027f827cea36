"""`stocksync endpoints run` without the simulated endpoints: sim/ is not installed with the
library, so an installed stocksync must say what to do instead of failing on an import."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stocksync.connectors import cli


def test_endpoints_run_outside_a_checkout_exits_2_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an installation where sim/ is neither importable nor next to the package
    # (both entries: other tests may have imported sim.endpoints already)
    monkeypatch.setitem(sys.modules, "sim", None)
    monkeypatch.setitem(sys.modules, "sim.endpoints", None)
    monkeypatch.setattr(cli, "SIM_ENDPOINTS", Path("sim") / "not-here.py")
    # should the command get past the import anyway: never serve, never log to the runner's
    # stream (closed after invoke)
    monkeypatch.setattr(cli, "_run_until_signalled", lambda _main: None)
    monkeypatch.setattr(cli, "configure_logging", lambda: None)
    result = CliRunner().invoke(cli.app, ["endpoints", "run"])
    assert result.exit_code == 2
    assert "not installed with stocksync" in result.output
    assert "checkout" in result.output and "PYTHONPATH" in result.output
