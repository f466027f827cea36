"""`stocksync import` without a broker: dry runs, the report and its exit codes, the rejects
file, options named when wrong; sending through a fake sink. (Against a real broker and
worker: tests/integration/test_import.py.)"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import stocksync.cli.imports as import_command
import stocksync.cli_settings
from stocksync.bootstrap import file_topology
from stocksync.channels.producer import DeliveryError, DeliveryFailed
from stocksync.channels.snapshot_sender import EventSink
from stocksync.cli import app
from stocksync.config import Settings
from stocksync.domain.events import InventoryEvent
from stocksync.service.snapshot_import import ImportIdentity

NO_BROKER = {"STOCKSYNC_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
GOOD = "sku,location,on_hand\nA,dc-east,10\nB,dc-east,4\n"
WITH_BAD = "ItemNo,location,Qty,safety_stock\nA,dc-east,10,2\nB,dc east,4,\nC,dc-east,x,1\n"


@pytest.fixture(autouse=True)
def no_logging_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    # structlog would keep writing to the runner's stream, which is closed after invoke
    monkeypatch.setattr(stocksync.cli_settings, "configure_logging", lambda *_args: None)


def snapshot(tmp_path: Path, text: str, name: str = "stock.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["import", *args], env=NO_BROKER)
    return result.exit_code, result.stdout, result.stderr


def test_a_valid_file_checks_clean_with_exit_0(tmp_path: Path) -> None:
    code, out, err = invoke(str(snapshot(tmp_path, GOOD)), "--dry-run")
    assert code == 0, err
    assert "2 rows" in out and "dry run: nothing sent" in out
    assert "import import-" in err  # the progress line


def test_refused_rows_are_printed_written_and_exit_1(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    args = ["--dry-run", "--column", "sku=ItemNo", "--column", "on_hand=Qty"]
    code, out, _ = invoke(str(snapshot(tmp_path, WITH_BAD)), *args, "--rejects", str(rejects))
    assert code == import_command.EXIT_REJECTED
    assert "line 3 (B at ?): location 'dc east' has whitespace" in out
    assert "line 4 (C at dc-east): on_hand 'x' is not a whole number" in out
    with rejects.open() as written:
        rows = list(csv.DictReader(written))
    assert [(r["line"], r["sku"]) for r in rows] == [("3", "B"), ("4", "C")]


def test_only_the_first_refused_rows_are_printed_and_the_rest_counted(tmp_path: Path) -> None:
    text = "sku,location,on_hand\n" + "".join(f"S{i},dc-east,-1\n" for i in range(30))
    code, out, _ = invoke(str(snapshot(tmp_path, text)), "--dry-run", "--show", "5")
    assert code == 1
    assert out.count("must be >= 0") == 5
    assert "... and 25 more: write them all with --rejects FILE" in out


def test_json_prints_the_report_as_the_http_api_answers(tmp_path: Path) -> None:
    path = snapshot(tmp_path, "\n".join(['{"sku":"A","location":"dc-east","on_hand":3}'] * 2))
    code, out, _ = invoke(str(path), "--format", "jsonl", "--dry-run", "--json")
    assert code == 1
    body = json.loads(out[out.index("{\n") :])  # (after any log line: logging is not set up)
    assert (body["rows"], body["valid"], body["rejected"]) == (2, 1, 1)
    assert body["rejects"][0]["line"] == 2
    assert body["rejects"][0]["reason"].startswith("A at dc-east is already on line 1")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--column", "qty=Qty"], "unknown field 'qty'"),
        (["--as-of", "2026-11-03"], "no time zone"),
        (["--format", "xls"], "'xls' is not one of csv, jsonl"),
        (["--column", "on_hand=Qty"], "no column 'Qty' for on_hand"),
    ],
)
def test_a_wrong_option_or_header_exits_2_naming_it(
    tmp_path: Path, args: list[str], named: str
) -> None:
    code, _, err = invoke(str(snapshot(tmp_path, GOOD)), "--dry-run", *args)
    assert code == import_command.EXIT_CANNOT_START
    assert named in err


def test_a_file_whose_format_is_not_told_by_its_name_asks_for_format(tmp_path: Path) -> None:
    code, _, err = invoke(str(snapshot(tmp_path, GOOD, "stock.txt")), "--dry-run")
    assert code == 2 and "--format csv or --format jsonl" in err


def test_events_kafka_refused_exit_3_naming_how_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[InventoryEvent] = []

    class RefusingSink:
        def send(self, event: InventoryEvent) -> None:
            sent.append(event)

        def flush(self, timeout: float = 30.0) -> None:
            raise DeliveryFailed(
                [DeliveryError(e.event_id, e.sku, "Broker: request timed out") for e in sent]
            )

    def producer(_settings: Settings, _identity: ImportIdentity) -> EventSink:
        return RefusingSink()

    monkeypatch.setattr(import_command, "check_topic", lambda *_args: None)
    monkeypatch.setattr(import_command, "import_producer", producer)
    monkeypatch.setattr(import_command, "current_topology", file_topology)
    rejects = tmp_path / "rejects.csv"
    code, out, _ = invoke(str(snapshot(tmp_path, GOOD)), "--rejects", str(rejects))
    assert code == import_command.EXIT_NOT_DELIVERED
    assert "NOT DELIVERED 2 event(s), Kafka said: Broker: request timed out" in out
    assert "imported             0 rows" in out
    assert "not delivered: Broker: request timed out" in rejects.read_text()
