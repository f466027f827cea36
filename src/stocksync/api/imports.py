"""POST /v1/imports: a stock snapshot over HTTP, the same import as `stocksync import`.

    curl -X POST -H 'Content-Type: text/csv' --data-binary @stock.csv \\
        'http://worker:8080/v1/imports?column=on_hand=Qty&as_of=2026-11-03T06:00:00Z'

The body is the file: CSV (`text/csv`) or JSON lines (`application/x-ndjson`), or as
`?format=csv|jsonl` says. Query parameters: `column=FIELD=COLUMN` (repeat it), `as_of` (RFC
3339, default now), `dry_run=true` (check, send nothing), `show_rejects=N` (refused rows listed
in the answer, default 100). The answer is the import's report (200), also when rows were
refused (`rejected`, `rejects`); 503 `not_delivered` with the report when Kafka refused events.

The body is read as a stream into a file under `<data dir>/imports` while its digest is
computed (never held in memory), up to STOCKSYNC_IMPORT_MAX_BYTES (413 beyond); then it is
parsed and sent on a thread of its own, so the worker's event loop (and its fold) keep
running. One import at a time per worker (409 `import_running`). Operator keys only.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog
from aiohttp import web
from confluent_kafka import KafkaException

from stocksync.adapters.kafka.clients import TopicMissing
from stocksync.api.auth import scope_of
from stocksync.api.responses import error, json_response
from stocksync.channels.snapshot_sender import (
    EventSink,
    ImportOptions,
    check_topic,
    import_producer,
    open_rows,
    run_import,
)
from stocksync.config import Settings
from stocksync.domain.topology import Topology
from stocksync.service.snapshot_import import (
    FORMAT_OF_MEDIA_TYPE,
    Columns,
    Format,
    ImportIdentity,
    ImportReport,
    SnapshotDigest,
    SnapshotError,
    format_for,
    parse_as_of,
    parse_columns,
)

log = structlog.get_logger("stocksync.http")

IMPORTS_PATH: Final = "/v1/imports"
SPOOL_CHUNK: Final = 256 * 1024
DEFAULT_SHOWN_REJECTS: Final = 100
MAX_SHOWN_REJECTS: Final = 100_000
PARAMETERS: Final = frozenset({"column", "format", "as_of", "dry_run", "show_rejects"})

SinkFactory = Callable[[ImportIdentity], EventSink]


class TooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Spooled:
    path: Path
    identity: ImportIdentity
    size: int


def settings_sink(settings: Settings) -> SinkFactory:
    """A ChannelProducer for each import, after checking that Kafka has the stock topic."""

    def sink_for(identity: ImportIdentity) -> EventSink:
        check_topic(settings, settings.topics.stock_events)
        return import_producer(settings, identity)

    return sink_for


class ImportRoutes:
    def __init__(
        self,
        sink_for: SinkFactory,
        topology: Callable[[], Topology],
        spool_dir: Path,
        max_bytes: int,
    ) -> None:
        self.sink_for = sink_for
        self.topology = topology
        self.spool_dir = spool_dir
        self.max_bytes = max_bytes
        self._running = False

    async def post_import(self, request: web.Request) -> web.StreamResponse:
        """import a stock snapshot (CSV or JSON lines) as absolute counts (operator key)"""
        if scope_of(request) is not None:
            return error(403, "forbidden", 'importing stock needs an operator key (channel "*")')
        options = self._options(request)
        if isinstance(options, web.Response):
            return options
        length = request.content_length
        if length is not None and length > self.max_bytes:
            return self._too_large(length)
        if self._running:
            return error(
                409,
                "import_running",
                "another import is running on this worker; retry when it has finished",
            )
        self._running = True
        spooled: _Spooled | None = None
        try:
            spooled = await self._spool(request, options.columns)
            if spooled.size == 0:
                return error(400, "empty_body", "send the snapshot file as the request body")
            report = await asyncio.to_thread(self._run, spooled, options)
        except TooLarge:
            return self._too_large(None)
        except SnapshotError as exc:
            return error(400, "bad_snapshot", str(exc))
        except (TopicMissing, KafkaException) as exc:
            return error(503, "kafka_unavailable", f"cannot import: {exc}; retry")
        finally:
            self._running = False
            if spooled is not None:
                spooled.path.unlink(missing_ok=True)
        body = report.to_json()
        if report.not_delivered:
            return error(
                503,
                "not_delivered",
                f"Kafka refused {report.not_delivered} event(s) ({report.delivery_error}); "
                "import the file again once it takes them (rows already applied are skipped)",
                **body,
            )
        return json_response(body)

    def _options(self, request: web.Request) -> ImportOptions | web.Response:
        query = request.query
        unknown = sorted(set(query) - PARAMETERS)
        if unknown:
            return error(
                400,
                "bad_parameter",
                f"unknown parameter(s) {', '.join(unknown)}; use {', '.join(sorted(PARAMETERS))}",
            )
        try:
            fmt = _format(request)
            columns = parse_columns(query.getall("column", []), flag="column")
            as_of_ms = parse_as_of(query.get("as_of"), int(time.time() * 1000), "as_of")
        except SnapshotError as exc:
            return error(400, "bad_parameter", str(exc))
        if isinstance(fmt, web.Response):
            return fmt
        dry_run = query.get("dry_run", "false").lower()
        if dry_run not in ("true", "false"):
            return error(400, "bad_parameter", f"dry_run must be true or false, not {dry_run!r}")
        shown = query.get("show_rejects", str(DEFAULT_SHOWN_REJECTS))
        if not shown.isdigit() or int(shown) > MAX_SHOWN_REJECTS:
            return error(
                400,
                "bad_parameter",
                f"show_rejects must be a whole number from 0 to {MAX_SHOWN_REJECTS}, not {shown!r}",
            )
        return ImportOptions(
            fmt, columns, as_of_ms, dry_run=dry_run == "true", keep_rejections=int(shown)
        )

    async def _spool(self, request: web.Request, columns: Columns) -> _Spooled:
        """The body into a file of its own, hashed as it arrives; TooLarge past the limit."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix="import-", suffix=".part", dir=self.spool_dir)
        path = Path(name)
        digest = SnapshotDigest(columns)
        size = 0
        try:
            with os.fdopen(handle, "wb") as out:
                async for chunk in request.content.iter_chunked(SPOOL_CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TooLarge
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return _Spooled(path, digest.identity(), size)

    def _run(self, spooled: _Spooled, options: ImportOptions) -> ImportReport:
        """On a thread: parse, check, send, wait for Kafka's answers."""
        rows = open_rows(spooled.path, options.format, options.columns)
        sink = None if options.dry_run else self.sink_for(spooled.identity)
        try:
            known: frozenset[str] | None = frozenset(self.topology().locations)
        except Exception:  # the worker has no topology yet: rows are not checked against it
            known = None
        return run_import(
            rows,
            spooled.identity,
            options,
            sink,
            known_locations=known,
        )

    def _too_large(self, size: int | None) -> web.Response:
        told = f"a body of {size} bytes" if size is not None else "the body"
        return error(
            413,
            "request_too_large",
            f"{told} is over the {self.max_bytes}-byte limit of imports "
            "(STOCKSYNC_IMPORT_MAX_BYTES); split the snapshot, or import it with "
            "`stocksync import FILE`",
            limit=self.max_bytes,
        )


def _format(request: web.Request) -> Format | web.Response:
    explicit = request.query.get("format")
    if explicit is not None:
        return format_for(None, explicit)
    found = FORMAT_OF_MEDIA_TYPE.get(request.content_type)
    if found is None:
        return error(
            415,
            "unsupported_media_type",
            f"Content-Type {request.content_type!r} is not a snapshot format: send text/csv or "
            "application/x-ndjson, or say ?format=csv|jsonl",
        )
    return found


def add_import_routes(
    app: web.Application,
    settings: Settings,
    topology: Callable[[], Topology],
    *,
    sink_for: SinkFactory | None = None,
) -> None:
    """POST /v1/imports. `sink_for`: where an import's events go (default: a ChannelProducer
    to the settings' Kafka)."""
    routes = ImportRoutes(
        sink_for or settings_sink(settings),
        topology,
        settings.data_dir / "imports",
        settings.import_max_bytes,
    )
    app.router.add_post(IMPORTS_PATH, routes.post_import)
