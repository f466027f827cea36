"""stocksync.logs: one structlog rendering for stocksync's events and the libraries' records
(faust, mode, aiokafka log through `logging`), each written once, colors only on a terminal."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
import structlog

from stocksync.logs import configure_logging

ESCAPE = "\x1b"
# what ConsoleRenderer writes first: an ISO timestamp and the padded level
STRUCTLOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z \[\w+\s*\] ")


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("NO_COLOR", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def emit_one_of_each() -> None:
    """A stocksync event, a faust warning and a faust info line, as the worker emits them."""
    structlog.get_logger("stocksync.test").info("event_once", sku="SKU-1")
    logging.getLogger("faust.tables.recovery").warning("[^---Recovery]: warning_once")
    logging.getLogger("faust.tables.recovery").info("Highwater table\n+---+\n| 1 |\n+---+")


def test_off_a_terminal_nothing_carries_escape_codes() -> None:
    # given logs written to a file or a pipe
    out = io.StringIO()
    configure_logging("info", stream=out)
    # when stocksync, a library and an exception log
    emit_one_of_each()
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger("stocksync.test").exception("failed_once")
    text = out.getvalue()
    # then no line carries a terminal escape code, and the traceback is Python's plain one
    assert ESCAPE not in text, repr(text)
    assert "Traceback (most recent call last)" in text and "ValueError: boom" in text
    assert "╭" not in text  # no rich box drawing (nor its dump of local variables)


def test_on_a_terminal_levels_are_colored_unless_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = Terminal()
    configure_logging("info", stream=terminal)
    structlog.get_logger("stocksync.test").info("colored")
    assert ESCAPE in terminal.getvalue()

    monkeypatch.setenv("NO_COLOR", "1")
    plain = Terminal()
    configure_logging("info", stream=plain)
    structlog.get_logger("stocksync.test").info("plain")
    assert "plain" in plain.getvalue() and ESCAPE not in plain.getvalue()


def test_every_event_is_written_once_even_when_configured_twice() -> None:
    # given logging configured twice (a command that configures it again, a test)
    configure_logging("info", stream=io.StringIO())
    out = io.StringIO()
    configure_logging("info", stream=out)
    # when a stocksync event and a library warning are logged
    emit_one_of_each()
    lines = out.getvalue().splitlines()
    # then each is one line, rendered by structlog, and nothing else is written
    assert sum("event_once" in line for line in lines) == 1, lines
    assert sum("warning_once" in line for line in lines) == 1, lines
    assert len(lines) == 2, lines
    for line in lines:
        assert STRUCTLOG_LINE.match(line), line
    assert "[faust.tables.recovery]" in lines[1]  # the library logger, named


def test_library_info_lines_and_tables_only_when_asked_for() -> None:
    quiet = io.StringIO()
    configure_logging("info", stream=quiet)
    emit_one_of_each()
    assert "Highwater" not in quiet.getvalue()  # faust's info line with its ASCII table

    verbose = io.StringIO()
    configure_logging("info", libraries_verbose=True, stream=verbose)
    emit_one_of_each()
    assert verbose.getvalue().count("Highwater") == 1


def test_json_lines_carry_library_records_and_tracebacks() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, stream=out)
    emit_one_of_each()
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("aiokafka").exception("fetch_failed")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["event"] for r in records] == [
        "event_once",
        "[^---Recovery]: warning_once",
        "fetch_failed",
    ]
    assert records[1]["logger"] == "faust.tables.recovery" and records[1]["level"] == "warning"
    assert "ValueError: boom" in records[2]["exception"]


def test_a_supervisor_restarting_a_crashed_service_shows_as_a_warning() -> None:
    # mode logs the restart of a crashed service (faust's agent) at info, after its prefix
    out = io.StringIO()
    configure_logging("info", stream=out)
    logging.getLogger("mode.supervisors").info(
        "[^----OneForOneSupervisor: (1@0x7f)]: Restarting dead %r! Last crash reason: %r",
        "<Agent fold_events>",
        "KeyError('x')",
    )
    logging.getLogger("mode.supervisors").info("[^----OneForOneSupervisor: (1@0x7f)]: Starting...")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "[warning  ]" in lines[0] and "Restarting dead '<Agent fold_events>'" in lines[0]
