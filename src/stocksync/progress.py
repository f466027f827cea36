"""Progress of long CLI work (replay, redrive), written to stderr so stdout stays parseable."""

from __future__ import annotations

import sys
import time
from typing import TextIO

REPORT_EVERY_S = 1.0


class Progress:
    """`Progress("replay", total)`; `advance(n)` as work is done; `done()` at the end.

    On a terminal one line is rewritten in place; otherwise a line is printed at most once a
    second, so logs of a long run stay short."""

    def __init__(self, what: str, total: int, stream: TextIO | None = None) -> None:
        self.what = what
        self.total = total
        self.count = 0
        self.stream = stream or sys.stderr
        self._tty = self.stream.isatty()
        self._last = 0.0

    def advance(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if now - self._last >= REPORT_EVERY_S:
            self._last = now
            self._write(final=False)

    def _write(self, final: bool) -> None:
        share = f" ({100 * self.count // self.total}%)" if self.total else ""
        line = f"{self.what}: {self.count}/{self.total}{share}"
        if self._tty:
            self.stream.write(f"\r{line}" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        self._write(final=True)
