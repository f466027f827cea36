"""Stock snapshot import against the real broker and a real worker: `stocksync import FILE` as
a user runs it and POST /v1/imports, each a 10,000-row CSV with 5 bad rows; the worker's HTTP
API shows the 9,995 good SKU-locations at their levels, and importing the same file again
moves no revision."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stocksync.config import Settings
from tests.integration.support import REPO, WorkerProcess, settings_env, wait_for

LOCATIONS = ("dc-1", "dc-2", "store-1", "store-2")  # tests/integration/topology.yaml
ROWS = 10_000
BATCH = 1_000  # POST /v1/atp/batch takes at most this many SKUs
# line -> (the bad row, given its SKU and location; words of the reason it is refused)
BAD_ROWS: dict[int, tuple[Callable[[str, str], str], str]] = {
    17: (lambda sku, loc: f"{sku},{loc},-3,1", "on_hand -3 must be >= 0"),
    1234: (lambda sku, loc: f"{sku},dc 1,5,1", "location 'dc 1' has whitespace"),
    5000: (lambda sku, loc: f"{sku},{loc},many,1", "on_hand 'many' is not a whole number"),
    7777: (lambda sku, loc: f",{loc},5,1", "sku is empty"),
    # its on_hand is fine, but nothing of a refused row is sent: no COUNTED either
    9999: (lambda sku, loc: f"{sku},{loc},5,-1", "safety_stock -1 must be >= 0"),
}

Levels = dict[tuple[str, str], tuple[int, int]]  # (sku, location) -> (on_hand, safety_stock)


def snapshot(prefix: str) -> tuple[bytes, Levels, set[tuple[str, str]]]:
    """A 10,000-row CSV (2,500 SKUs x 4 locations), the levels of its good rows and the
    SKU-locations of its bad ones."""
    lines = ["sku,location,on_hand,safety_stock"]
    good: Levels = {}
    bad: set[tuple[str, str]] = set()
    for i in range(ROWS):
        line = i + 2  # the header is line 1
        sku, location = f"{prefix}-{i // 4:05d}", LOCATIONS[i % 4]
        if line in BAD_ROWS:
            lines.append(BAD_ROWS[line][0](sku, location))
            bad.add((sku, location))
            continue
        on_hand, safety = (i * 7) % 500, i % 3
        lines.append(f"{sku},{location},{on_hand},{safety}")
        good[(sku, location)] = (on_hand, safety)
    return ("\n".join(lines) + "\n").encode(), good, bad


def table(worker: WorkerProcess, skus: list[str]) -> dict[str, Any]:
    items: dict[str, Any] = {}
    for start in range(0, len(skus), BATCH):
        items.update(worker.batch(skus[start : start + BATCH])["items"])
    return items


def levels(items: dict[str, Any]) -> Levels:
    return {
        (sku, loc): (stock["on_hand"], stock["safety_stock"])
        for sku, view in items.items()
        for loc, stock in view["locations"].items()
    }


def wait_for_levels(worker: WorkerProcess, good: Levels) -> dict[str, Any]:
    skus = sorted({sku for sku, _ in good})

    def arrived() -> dict[str, Any] | None:
        items = table(worker, skus)
        return items if levels(items) == good else None

    items: dict[str, Any] = wait_for(arrived, 60, "the imported levels", interval=0.5)
    return items


def revisions(items: dict[str, Any]) -> dict[str, int]:
    return {sku: view["revision"] for sku, view in items.items()}


def duplicates_after(worker: WorkerProcess, before: int, expected: int) -> None:
    """Wait until the worker has counted `expected` more duplicate events than `before`."""
    wait_for(
        lambda: worker.duplicates() >= before + expected,
        60,
        f"{expected} duplicates counted",
        interval=0.5,
    )


def event_count(good: Levels) -> int:
    return 2 * len(good)  # a COUNTED and a SAFETY_STOCK_SET for every good row


def stocksync_import(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stocksync.cli", "import", *args],
        env={**settings_env(settings), "COLUMNS": "200"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def post_import(worker: WorkerProcess, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{worker.url}/v1/imports?as_of=2026-01-05T06:00:00Z",
        data=body,
        method="POST",
        headers={"Content-Type": "text/csv"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return response.status, answer
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_bad_rows_named(rejects: list[dict[str, Any]]) -> None:
    assert [r["line"] for r in rejects] == sorted(BAD_ROWS)
    for rejection in rejects:
        assert BAD_ROWS[rejection["line"]][1] in rejection["reason"], rejection


def test_cli_import_sets_every_good_level_and_a_second_import_changes_nothing(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    data, good, bad = snapshot("IMPCLI")
    path = tmp_path / "stock.csv"
    path.write_bytes(data)
    rejects = tmp_path / "rejects.csv"

    result = stocksync_import(worker.settings, str(path), "--rejects", str(rejects))

    assert result.returncode == 1, result.stderr  # rows were refused, the others imported
    assert "imported         9,995 rows (9,995 COUNTED, 9,995 SAFETY_STOCK_SET)" in result.stdout
    for line, (_, reason) in BAD_ROWS.items():
        assert f"line {line} " in result.stdout and reason in result.stdout
    written = rejects.read_text().splitlines()
    assert [int(row.split(",")[0]) for row in written[1:]] == sorted(BAD_ROWS)
    items = wait_for_levels(worker, good)
    assert len(levels(items)) == 9_995
    assert not bad & set(levels(items))  # nothing of a refused row arrived
    before = revisions(items)
    duplicates = worker.duplicates()

    again = stocksync_import(worker.settings, str(path))

    assert again.returncode == 1
    assert "imported         9,995 rows" in again.stdout
    duplicates_after(worker, duplicates, event_count(good))
    after = table(worker, sorted(before))
    assert revisions(after) == before
    assert levels(after) == good


def test_http_import_answers_the_report_and_a_second_import_changes_nothing(
    worker: WorkerProcess,
) -> None:
    data, good, bad = snapshot("IMPHTTP")
    assert len(data) > worker.settings.http_max_body_bytes  # imports have a limit of their own

    status, report = post_import(worker, data)

    assert status == 200, report
    assert (report["rows"], report["rejected"], report["imported"]) == (10_000, 5, 9_995)
    assert report["events"] == {"COUNTED": 9_995, "SAFETY_STOCK_SET": 9_995}
    assert report["as_of"] == "2026-01-05T06:00:00.000Z"
    assert_bad_rows_named(report["rejects"])
    items = wait_for_levels(worker, good)
    assert not bad & set(levels(items))
    before = revisions(items)
    duplicates = worker.duplicates()

    status, again = post_import(worker, data)

    assert status == 200
    assert again["source"] == report["source"] and again["imported"] == 9_995
    duplicates_after(worker, duplicates, event_count(good))
    assert revisions(table(worker, sorted(before))) == before
