"""structlog configuration shared by the CLI, the worker and the tools.

Every line a stocksync process logs is rendered by structlog, its own events and those of the
libraries it runs (faust, mode, aiokafka log through the standard library's `logging`): one
renderer, one handler, so each event is written once and all lines look alike. Colors only
when the stream is a terminal, so log files and pipes carry no escape codes."""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

import structlog

# The libraries' own info lines (faust's and mode's service "Starting..." per component, the
# recovery progress as ASCII tables, aiokafka's group joins) are many lines per start and
# rebalance that stocksync's own events already summarise (worker_starting, http_started,
# worker_serving): shown only with STOCKSYNC_FAUST_VERBOSE=1. Their warnings and errors always.
LIBRARY_QUIET_LEVEL = logging.WARNING
# Library info lines that are news, not chatter: mode's supervisor restarting a crashed service
# (faust's agent included) says so at info, "[^--OneForOneSupervisor: ...]: Restarting dead
# ...". Shown, as the warning it is.
PROMOTED_TO_WARNING = ("]: Restarting dead",)


class _StocksyncHandler(logging.StreamHandler[TextIO]):
    """The one root handler configure_logging installs: found again and replaced when logging
    is configured a second time, so a record is never written by two of them."""


class _LibraryChatter(logging.Filter):
    """Drops library records below LIBRARY_QUIET_LEVEL unless verbose (all records through
    `logging` are the libraries': stocksync's own events go to structlog directly)."""

    def __init__(self, level: int, verbose: bool) -> None:
        super().__init__()
        self.level = level if verbose else max(level, LIBRARY_QUIET_LEVEL)

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno < LIBRARY_QUIET_LEVEL
            and isinstance(record.msg, str)
            and any(news in record.msg for news in PROMOTED_TO_WARNING)  # after mode's prefix
        ):
            record.levelno, record.levelname = LIBRARY_QUIET_LEVEL, "WARNING"
        return record.levelno >= self.level


def use_colors(stream: TextIO) -> bool:
    """Color only a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def configure_logging(
    level: str = "info",
    json: bool = False,
    libraries_verbose: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Log structlog lines at `level` to `stream` (stderr). `libraries_verbose` lets the
    libraries' info lines through too (STOCKSYNC_FAUST_VERBOSE)."""
    out = stream if stream is not None else sys.stderr
    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer: structlog.typing.Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
    else:
        colors = use_colors(out)
        # off a terminal: a plain Python traceback (greppable, no box drawing, and no dump of
        # local variables into log files)
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors,
            exception_formatter=(
                structlog.dev.default_exception_formatter
                if colors
                else structlog.dev.plain_traceback
            ),
        )
    shared: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # JSON cannot carry exc_info itself: render the traceback into the event as text
    finish: list[structlog.typing.Processor] = (
        [structlog.processors.format_exc_info, renderer] if json else [renderer]
    )

    handler = _StocksyncHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finish],
        )
    )
    handler.addFilter(_LibraryChatter(numeric, libraries_verbose))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StocksyncHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    # stocksync's own events do not pass through `logging` (structlog prints them directly):
    # the root level decides which library records are made at all, the filter which are
    # shown. Their debug records only when verbose (aiokafka logs each fetch); their info ones
    # always, for PROMOTED_TO_WARNING.
    root.setLevel(numeric if libraries_verbose else logging.INFO)
    # Python warnings (deprecations in a library) as log lines too, not bare stderr text
    logging.captureWarnings(True)

    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, *finish],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )
