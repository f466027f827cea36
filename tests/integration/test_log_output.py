"""What the commands write, on the real broker: every line once, structlog's (or the command's
own table), no terminal escape codes when the output is not a terminal, and none of faust's
service chatter or ASCII tables unless asked for (STOCKSYNC_FAUST_VERBOSE)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from stocksync.provision import topic_specs
from tests.integration.support import (
    REPO,
    WorkerProcess,
    settings_env,
    unique_settings,
    wait_for,
)

ESCAPE = "\x1b"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z ")
STRUCTLOG_LINE = re.compile(TIMESTAMP.pattern + r"\[(debug|info|warning|error|critical)\s*\] ")
# what faust writes when left to itself: mode's service prefix "[^--Producer]: Starting...",
# and the recovery tables' rules
FAUST_CHATTER = ("[^", "+---", "Highwater")


def repeated(lines: list[str]) -> list[str]:
    """Lines written more than once (a log line's timestamp aside)."""
    counts = Counter(TIMESTAMP.sub("", line) for line in lines)
    return [line for line, count in counts.items() if count > 1]


def test_topics_create_reports_each_topic_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path / "state")
    names = [spec.name for spec in topic_specs(settings)]
    for state in ("created", "exists"):
        # when `stocksync topics create` runs, its output and its log in one pipe (not a tty)
        done = subprocess.run(
            [sys.executable, "-m", "stocksync.cli", "topics", "create"],
            env=settings_env(settings),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=90,
        )
        output = done.stdout
        lines = output.splitlines()
        assert done.returncode == 0, output
        # then each topic is on one line, its row in the table, and no line is written twice
        for name in names:
            naming = [line for line in lines if re.search(rf"\s{re.escape(name)}\s", line)]
            assert len(naming) == 1, f"{name} on {len(naming)} lines:\n{output}"
            assert naming[0].startswith(state), output
        assert not repeated(lines), output
        assert ESCAPE not in output, repr(output)
        # and anything else is a structlog line
        others = [line for line in lines if not line.startswith(("created ", "exists "))]
        for line in others:
            assert STRUCTLOG_LINE.match(line), f"not a structlog line: {line!r}\n{output}"


def test_worker_log_is_structlog_lines_only(kafka_bootstrap: str, tmp_path: Path) -> None:
    # given a worker that creates its own topics, writing to a file
    settings = unique_settings(kafka_bootstrap, tmp_path / "state")
    worker = WorkerProcess(settings, tmp_path / "worker.log").start(provision=False)
    # when it starts, serves (said within a second of /readyz: the watchdog's tick) and stops
    wait_for(lambda: "] worker_serving " in worker.tail(), 10, "worker_serving in the log")
    assert worker.stop(signal.SIGTERM) == 0, worker.tail()
    text = worker.log_path.read_text(errors="replace")
    lines = text.splitlines()
    # then every line is structlog's, once, with no escape code and none of faust's chatter
    assert ESCAPE not in text, repr(text)
    for line in lines:
        assert STRUCTLOG_LINE.match(line), f"not a structlog line: {line!r}\n{text}"
        for chatter in FAUST_CHATTER:
            assert chatter not in line, f"faust's {chatter!r} in {line!r}\n{text}"
    assert not repeated(lines), text
    # and stocksync's own events tell the story faust's lines told
    for event in ("topics_created", "worker_starting", "http_started", "worker_serving"):
        assert sum(f"] {event} " in line for line in lines) == 1, f"{event}:\n{text}"
