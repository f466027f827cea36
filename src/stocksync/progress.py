"""Progress of long CLI work (replay, redrive, import), written to stderr so stdout stays
parseable: the count, the share of the total, the rate and the time left."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

REPORT_EVERY_S = 1.0


class Progress:
    """`Progress("replay", total)`; `advance(n)` as work is done; `done()` at the end.

    On a terminal one line is rewritten in place; otherwise a line is printed at most once a
    second, so logs of a long run stay short."""

    def __init__(
        self,
        what: str,
        total: int,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = total
        self.count = 0
        self.stream = stream or sys.stderr
        self._tty = self.stream.isatty()
        self._clock = clock
        self._started = clock()
        self._last = 0.0

    def advance(self, n: int = 1) -> None:
        self.count += n
        now = self._clock()
        if now - self._last >= REPORT_EVERY_S:
            self._last = now
            self._write(final=False)

    def rate_and_eta(self) -> str:
        """The rate so far and the time left at that rate, as ", 51,234/s, ETA 12s"."""
        elapsed = self._clock() - self._started
        if elapsed <= 0 or not self.count:
            return ""
        rate = self.count / elapsed
        text = f", {rate:,.0f}/s"
        if self.total > self.count:
            text += f", ETA {_duration((self.total - self.count) / rate)}"
        return text

    def _write(self, final: bool) -> None:
        share = f" ({100 * self.count // self.total}%)" if self.total else ""
        line = f"{self.what}: {self.count}/{self.total}{share}{self.rate_and_eta()}"
        if self._tty:
            # (clear to the end of the line: the ETA can get shorter)
            self.stream.write(f"\r{line}\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        self._write(final=True)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole // 60 % 60:02d}m"
