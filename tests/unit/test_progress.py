"""The progress line of long CLI work: count, share, rate and time left."""

from __future__ import annotations

import io

from stocksync.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_line_shows_the_rate_so_far_and_the_time_left_at_that_rate() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("import: rows", 1_000_000, out, clock)
    clock.now += 10
    progress.advance(250_000)
    clock.now += 10
    progress.advance(250_000)
    lines = out.getvalue().splitlines()
    assert lines == [
        "import: rows: 250000/1000000 (25%), 25,000/s, ETA 30s",
        "import: rows: 500000/1000000 (50%), 25,000/s, ETA 20s",
    ]


def test_long_waits_are_minutes_and_hours_and_the_end_has_no_eta() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("replay", 10_000, out, clock)
    clock.now += 1
    progress.advance(1)
    clock.now += 1
    progress.advance(100)
    progress.count = 10_000
    progress.done()
    assert out.getvalue().splitlines() == [
        "replay: 1/10000 (0%), 1/s, ETA 2h46m",
        "replay: 101/10000 (1%), 50/s, ETA 3m16s",
        "replay: 10000/10000 (100%), 5,000/s",
    ]
