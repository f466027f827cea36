"""The doctor's table and JSON."""

from __future__ import annotations

import json

from stocksync.doctor.checks import CheckRow, Status, fail, ok
from stocksync.doctor.report import as_json, as_table

ROWS = [
    ok("broker", "1 broker(s) (kafka:9092), cluster c1"),
    fail("topic s.sale-events", "3 partitions, stocksync expects 4", "recreate it " * 12),
    CheckRow("worker http://w:8080 lag", Status.SKIP, "no answer"),
]


def test_the_table_has_a_column_each_and_wraps_a_long_fix_in_its_column() -> None:
    lines = as_table(ROWS).splitlines()
    header = lines[0]
    assert header.split() == ["CHECK", "STATUS", "DETAIL", "FIX"]
    fix_at = header.index("FIX")
    failing = next(line for line in lines if line.startswith("topic s.sale-events"))
    assert failing.split()[2] == "FAIL"
    assert failing[fix_at:].startswith("recreate it")
    continuation = lines[lines.index(failing) + 1]
    assert continuation[:fix_at].strip() == "" and continuation[fix_at:].startswith("recreate")
    assert lines[-1] == "1 of 3 checks fail, 1 could not run (they need what failed)"


def test_all_green_says_so() -> None:
    assert as_table(ROWS[:1]).splitlines()[-1] == "all 1 checks pass"


def test_json_carries_every_row_and_the_verdict() -> None:
    document = json.loads(as_json(ROWS))
    assert document["ok"] is False
    assert document["checks"][1] == {
        "check": "topic s.sale-events",
        "status": "FAIL",
        "detail": "3 partitions, stocksync expects 4",
        "fix": "recreate it " * 12,
    }
