"""The doctor's rows as a table for people or JSON for machines."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from itertools import zip_longest

from stocksync.doctor.checks import CheckRow, Status, healthy

HEADERS = ("CHECK", "STATUS", "DETAIL", "FIX")
DETAIL_WIDTH = 60
FIX_WIDTH = 60


def as_json(rows: Sequence[CheckRow]) -> str:
    return json.dumps({"ok": healthy(rows), "checks": [row.as_dict() for row in rows]}, indent=2)


def as_table(rows: Sequence[CheckRow]) -> str:
    """Four columns; a long detail or fix wraps within its column, so a row may take several
    lines (a blank line separates such rows)."""
    check_width = max(len(HEADERS[0]), *(len(row.check) for row in rows))
    status_width = max(len(HEADERS[1]), *(len(str(row.status)) for row in rows))

    def line(check: str, status: str, detail: str, fix: str) -> str:
        text = f"{check:<{check_width}}  {status:<{status_width}}  {detail:<{DETAIL_WIDTH}}  {fix}"
        return text.rstrip()

    out = [line(*HEADERS)]
    for row in rows:
        details = _wrap(row.detail, DETAIL_WIDTH) or [""]
        fixes = _wrap(row.fix, FIX_WIDTH)
        height = max(len(details), len(fixes))
        if height > 1 and out[-1] != "" and len(out) > 1:
            out.append("")
        firsts = ([row.check], [str(row.status)])
        columns = zip_longest(*firsts, details, fixes, fillvalue="")
        out.extend(line(*cells) for cells in columns)
        if height > 1:
            out.append("")
    while out and out[-1] == "":
        out.pop()
    return "\n".join([*out, "", summary(rows)])


def _wrap(text: str, width: int) -> list[str]:
    # a command or topic name in a fix stays whole, to be copied
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def summary(rows: Sequence[CheckRow]) -> str:
    if healthy(rows):
        return f"all {len(rows)} checks pass"
    failing = sum(1 for row in rows if row.status is Status.FAIL)
    skipped = sum(1 for row in rows if row.status is Status.SKIP)
    text = f"{failing} of {len(rows)} checks fail"
    return text + (f", {skipped} could not run (they need what failed)" if skipped else "")
