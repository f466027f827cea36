"""Stock snapshot import, the pure part: a CSV or JSON-lines file of absolute stock levels
(`sku, location, on_hand[, safety_stock]`) becomes, row by row, either the events that set them
or the reason the row is refused. No I/O: `stocksync import` and `POST /v1/imports` read the
bytes and send the events (channels/snapshot_sender.py).

Idempotent by construction. The fold dedupes by (source, source_seq), not by event id
(domain/fold.py `apply_event`, `dedupe_key`): an import's source is derived from a digest of
the file's bytes and each row's sequences from its line number (2 * line for its COUNTED,
2 * line + 1 for its SAFETY_STOCK_SET), so importing the same file again sends the same pairs
and the fold takes them for duplicates: no revision moves. Event ids are derived the same way
(`<source>:<line>:<kind>`), so the log says which file and line an event came from.

Rows are checked with plain code over the worker's limits (domain/limits.py) and the location
rule of channels/validation.py: a pydantic model per row would cost more than everything
else an import does together (a million rows in well under a minute is the budget).
"""

from __future__ import annotations

import csv
import hashlib
import re
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any, Final, Literal

import msgspec
from msgspec import Struct

from stocksync.channels.validation import IDENT
from stocksync.domain.events import EventKind, InventoryEvent
from stocksync.domain.limits import LOCATION_MAX, QUANTITY_MAX, SKU_MAX, too_long

Format = Literal["csv", "jsonl"]
FORMATS: Final[tuple[Format, ...]] = ("csv", "jsonl")
# File name endings and Content-Types that say which format a snapshot is in.
FORMAT_OF_SUFFIX: Final[dict[str, Format]] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
FORMAT_OF_MEDIA_TYPE: Final[dict[str, Format]] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
}

FIELDS: Final = ("sku", "location", "on_hand", "safety_stock")
SOURCE_PREFIX: Final = "import-"
SOURCE_DIGEST_CHARS: Final = 16
# A count dated later than this past the importer's clock is refused: the fold ignores every
# movement at or before a location's last count, so a count dated next year would freeze
# on_hand until then.
AS_OF_FUTURE_SLACK_MS: Final = 5 * 60 * 1000
UNKNOWN_LOCATIONS_LISTED: Final = 50

_LOCATION = re.compile(IDENT)  # one token: no whitespace, no ':' (as the channels' validation)
# A whole number as exports write them: "12", "+12", "-3" (refused later as negative), and
# "12.0" or "12.000" from spreadsheets; not "1,200", "1_200", "12.5" or non-ASCII digits.
_WHOLE = re.compile(r"[+-]?[0-9]+(?:\.0*)?")
_CSV_ERROR = csv.Error
_COUNTED = EventKind.COUNTED
_MASK_64 = (1 << 64) - 1
_SAFETY_STOCK_SET = EventKind.SAFETY_STOCK_SET


class SnapshotError(ValueError):
    """The import cannot start: an option, the header or the file is wrong. The message names
    it and the fix."""


# -- options -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Columns:
    """The file's column (CSV header) or key (JSON lines) of each field."""

    sku: str = "sku"
    location: str = "location"
    on_hand: str = "on_hand"
    safety_stock: str = "safety_stock"
    # Mapped explicitly: the header must have it (by default it is optional).
    safety_stock_required: bool = False

    @property
    def is_default(self) -> bool:
        return self == Columns()

    def describe(self) -> str:
        return ",".join(f"{name}={getattr(self, name)}" for name in FIELDS)


def parse_columns(options: Iterable[str], flag: str = "--column") -> Columns:
    """`["sku=ItemNo", "on_hand=Qty"]` as Columns; SnapshotError names the option at fault."""
    names: dict[str, str] = {}
    for option in options:
        name, sep, column = option.partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not column:
            raise SnapshotError(
                f"{flag} {option!r}: write FIELD=COLUMN, e.g. {flag} on_hand=Qty "
                f"(fields: {', '.join(FIELDS)})"
            )
        if name not in FIELDS:
            raise SnapshotError(
                f"{flag} {option!r}: unknown field {name!r}; map one of {', '.join(FIELDS)}"
            )
        if name in names:
            raise SnapshotError(f"{flag} {option!r}: {name} is already mapped to {names[name]!r}")
        names[name] = column
    columns = Columns(**names, safety_stock_required="safety_stock" in names)
    seen: dict[str, str] = {}
    for name in FIELDS:
        column = getattr(columns, name)
        if column in seen:
            raise SnapshotError(
                f"{flag}: {seen[column]} and {name} both read column {column!r}; map each field "
                f"to a column of its own"
            )
        seen[column] = name
    return columns


def format_for(name: str | None, explicit: str | None) -> Format:
    """The format asked for, else the one of the file name's ending."""
    if explicit is not None:
        chosen = explicit.strip().lower()
        if chosen not in FORMATS:
            raise SnapshotError(f"format {explicit!r} is not one of {', '.join(FORMATS)}")
        return "csv" if chosen == "csv" else "jsonl"
    found = None if name is None else FORMAT_OF_SUFFIX.get(PurePath(name).suffix.lower())
    if found is None:
        raise SnapshotError(
            f"cannot tell the format of {name!r} from its name ending "
            f"({', '.join(FORMAT_OF_SUFFIX)}): give --format csv or --format jsonl"
        )
    return found


def parse_as_of(text: str | None, now_ms: int, field_name: str = "--as-of") -> int:
    """An RFC 3339 time with a zone as epoch milliseconds; `now_ms` when not given."""
    if text is None or not text.strip():
        return now_ms
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SnapshotError(
            f"{field_name} {text!r} is not an RFC 3339 time such as 2026-11-03T06:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise SnapshotError(
            f"{field_name} {text!r} has no time zone: add Z (UTC) or an offset such as +01:00"
        )
    as_of = int(moment.timestamp() * 1000)
    if as_of < 0:
        raise SnapshotError(f"{field_name} {text!r} is before 1970")
    if as_of > now_ms + AS_OF_FUTURE_SLACK_MS:
        raise SnapshotError(
            f"{field_name} {text!r} is in the future; a count dated later than now would make "
            f"every movement until then count for nothing: give the time the snapshot was taken"
        )
    return as_of


def rfc3339(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- identity ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportIdentity:
    sha256: str  # hex digest of the file's bytes (preceded by the column mapping if not default)

    @property
    def source(self) -> str:
        return SOURCE_PREFIX + self.sha256[:SOURCE_DIGEST_CHARS]

    def event_id(self, line: int, kind: EventKind) -> str:
        return f"{self.source}:{line}:{kind.value}"


class SnapshotDigest:
    """The digest an import's identity comes from, fed the file's bytes as they are read. A
    mapping other than the default is hashed first: the same bytes read through other columns
    are another import (else re-importing a file with a corrected mapping would be ignored)."""

    def __init__(self, columns: Columns) -> None:
        self._hash = hashlib.sha256()
        if not columns.is_default:
            self._hash.update(f"stocksync-import columns {columns.describe()}\n".encode())

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def identity(self) -> ImportIdentity:
        return ImportIdentity(self._hash.hexdigest())


def line_of_event(event_id: str) -> int | None:
    """The line an import's event came from (None: not an import's event id)."""
    if not event_id.startswith(SOURCE_PREFIX):
        return None
    parts = event_id.split(":")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


# -- rows ----------------------------------------------------------------------------------


class SnapshotRow(Struct, frozen=True):
    """A row that passed every check."""

    line: int
    sku: str
    location: str
    on_hand: int
    safety_stock: int | None = None


class Rejection(Struct, frozen=True):
    """A row that is refused, nothing of it sent: its line (1 = the CSV header) and why."""

    line: int
    reason: str
    sku: str | None = None
    location: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "reason": self.reason}
        if self.sku is not None:
            out["sku"] = self.sku
        if self.location is not None:
            out["location"] = self.location
        return out


Parsed = SnapshotRow | Rejection


def _kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _shown(value: object) -> str:
    """A value in a reason, cut short: a cell may be a megabyte."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _utf8_problem(name: str, text: str) -> str | None:
    if text.isascii():
        return None
    try:
        text.encode()
    except UnicodeEncodeError:  # the reader kept undecodable bytes as lone surrogates
        return f"{name} is not valid UTF-8"
    return None


def _identifier(name: str, value: object, limit: int, problems: list[str]) -> str | None:
    """The value if it is a usable id (the string), else None with the problem noted."""
    if not isinstance(value, str):
        problems.append(
            f"{name} is missing"
            if value is None
            else f"{name} must be a string, not {_kind_of(value)} ({_shown(value)})"
        )
        return None
    if not 0 < len(value) <= limit:
        problems.append(f"{name} is empty" if not value else too_long(name, len(value), limit))
        return None
    bad = _utf8_problem(name, value)
    if bad is not None:
        problems.append(bad)
        return None
    return value


def _units(name: str, value: object, problems: list[str]) -> int | None:
    """A whole number from 0 to QUANTITY_MAX, from a CSV cell or a JSON value."""
    if isinstance(value, str):
        if value.isdigit() and value.isascii():  # nearly every cell
            units = int(value)
        elif _WHOLE.fullmatch(value.strip()):
            units = int(value.strip().partition(".")[0])
        else:
            problems.append(
                f"{name} is missing"
                if not value.strip()
                else f"{name} {_shown(value)} is not a whole number"
            )
            return None
    elif isinstance(value, int) and not isinstance(value, bool):
        units = value
    elif isinstance(value, float) and value.is_integer():
        units = int(value)
    else:
        problems.append(
            f"{name} is missing"
            if value is None
            else f"{name} must be a whole number, not {_kind_of(value)} ({_shown(value)})"
        )
        return None
    if units < 0:
        problems.append(f"{name} {units} must be >= 0")
        return None
    if units > QUANTITY_MAX:
        problems.append(f"{name} {units} is over the limit of {QUANTITY_MAX}")
        return None
    return units


def check_row(
    line: int, sku: object, location: object, on_hand: object, safety_stock: object = None
) -> Parsed:
    """One row's values (CSV cells or JSON values) as a SnapshotRow, or every reason it is
    refused. An empty safety_stock cell (or a JSON null) sets no safety stock."""
    problems: list[str] = []
    sku_ok = _identifier("sku", sku, SKU_MAX, problems)
    location_ok = _identifier("location", location, LOCATION_MAX, problems)
    if location_ok is not None and _LOCATION.match(location_ok) is None:
        problems.append(
            f"location {location_ok!r} has whitespace or ':' in it (a location id is one "
            "token, such as dc-east)"
        )
        location_ok = None
    units = _units("on_hand", on_hand, problems)
    safety = None
    if safety_stock is not None and safety_stock != "":
        safety = _units("safety_stock", safety_stock, problems)
    if problems or sku_ok is None or location_ok is None or units is None:
        return Rejection(line, "; ".join(problems), sku_ok, location_ok)
    return SnapshotRow(line, sku_ok, location_ok, units, safety)


# -- readers -------------------------------------------------------------------------------


def _header_indexes(header: list[str], columns: Columns) -> tuple[int, int, int, int | None]:
    where = {name.strip(): i for i, name in reversed(list(enumerate(header)))}
    if header:
        first = header[0].strip().removeprefix("\ufeff")  # a byte order mark read as text
        where.setdefault(first, 0)
    found: list[int | None] = []
    for name in FIELDS:
        column = getattr(columns, name)
        index = where.get(column)
        optional = name == "safety_stock" and not columns.safety_stock_required
        if index is None and not optional:
            shown = ", ".join(repr(h) for h in header[:20]) or "nothing"
            raise SnapshotError(
                f"the header (line 1) has no column {column!r} for {name}; it has {shown}: map "
                f"it with --column {name}=<column> (HTTP: ?column={name}=<column>)"
                + _separator_hint(header)
            )
        found.append(index)
    sku, location, on_hand, safety = found
    assert sku is not None and location is not None and on_hand is not None
    return sku, location, on_hand, safety


def _separator_hint(header: list[str]) -> str:
    """Spreadsheets in many locales save "CSV" separated by ';' (or tabs): say so."""
    if len(header) == 1:
        for separator, name in ((";", "';'"), ("\t", "tabs"), ("|", "'|'")):
            if separator in header[0]:
                return (
                    f"; the header looks separated by {name}: save the file with commas "
                    "(stocksync reads comma-separated CSV)"
                )
    return ""


def csv_rows(lines: Iterable[str], columns: Columns) -> Iterator[Parsed]:
    """The data rows of a CSV text (its first line the header), checked. Blank lines are
    skipped; a line the csv module cannot read is a Rejection, and reading goes on."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise SnapshotError("the file is empty: a CSV snapshot starts with a header line")
    sku_at, location_at, on_hand_at, safety_at = _header_indexes(header, columns)
    width = max(sku_at, location_at, on_hand_at, -1 if safety_at is None else safety_at) + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except _CSV_ERROR as exc:
            yield Rejection(reader.line_num, f"not readable as CSV: {exc}")
            continue
        if not fields:
            continue
        line = reader.line_num
        if len(fields) < width:
            if len(fields) == 1 and not fields[0].strip():
                continue  # a line of spaces
            yield Rejection(
                line, f"{len(fields)} column(s); the header has {len(header)}: a cell is missing"
            )
            continue
        yield check_row(
            line,
            fields[sku_at],
            fields[location_at],
            fields[on_hand_at],
            None if safety_at is None else fields[safety_at],
        )


_JSON_DECODE = msgspec.json.Decoder().decode


def jsonl_rows(lines: Iterable[bytes], columns: Columns) -> Iterator[Parsed]:
    """The rows of a JSON-lines text (one object a line, from line 1), checked. Blank lines
    are skipped."""
    sku, location, on_hand, safety = (
        columns.sku,
        columns.location,
        columns.on_hand,
        columns.safety_stock,
    )
    for line, raw in enumerate(lines, start=1):
        text = raw.removeprefix(b"\xef\xbb\xbf") if line == 1 else raw
        if not text.strip():
            continue
        try:
            item = _JSON_DECODE(text)
        except msgspec.DecodeError as exc:
            yield Rejection(line, f"not a JSON object: {exc}")
            continue
        if not isinstance(item, dict):
            yield Rejection(line, f"not a JSON object but {_kind_of(item)}")
            continue
        if columns.safety_stock_required and safety not in item:
            yield Rejection(line, f"safety_stock is missing (key {safety!r})")
            continue
        yield check_row(
            line, item.get(sku), item.get(location), item.get(on_hand), item.get(safety)
        )


# -- events and the report -----------------------------------------------------------------


def snapshot_events(
    row: SnapshotRow, identity: ImportIdentity, as_of_ms: int
) -> tuple[InventoryEvent, ...]:
    """The events that set a row's levels: an absolute COUNTED as of `as_of_ms`, then, if the
    row has one, its SAFETY_STOCK_SET. Only the file and the line decide ids and sequences."""
    source = identity.source
    line = row.line
    counted = InventoryEvent(
        event_id=identity.event_id(line, _COUNTED),
        source=source,
        source_seq=2 * line,
        sku=row.sku,
        location=row.location,
        quantity=row.on_hand,
        occurred_at=as_of_ms,
        kind=_COUNTED,
    )
    if row.safety_stock is None:
        return (counted,)
    return (
        counted,
        InventoryEvent(
            event_id=identity.event_id(line, _SAFETY_STOCK_SET),
            source=source,
            source_seq=2 * line + 1,
            sku=row.sku,
            location=row.location,
            quantity=row.safety_stock,
            occurred_at=as_of_ms,
            kind=_SAFETY_STOCK_SET,
        ),
    )


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did: the answer of POST /v1/imports and what `stocksync import` prints."""

    source: str
    sha256: str
    format: Format
    as_of_ms: int
    dry_run: bool
    rows: int  # data rows read (blank lines not counted)
    rejected: int  # rows refused, nothing of them sent
    imported: int  # rows whose every event Kafka acknowledged
    not_delivered: int  # events Kafka refused (or did not acknowledge in time)
    not_delivered_lines: tuple[int, ...]  # the first lines with such events
    delivery_error: str | None  # the first refusal's reason
    events: dict[str, int]  # acknowledged events by kind
    rejections: tuple[Rejection, ...]  # the first rejected rows, in line order
    unknown_locations: dict[str, int]  # good rows at a location the topology does not name
    seconds: float = 0.0

    @property
    def valid(self) -> int:
        return self.rows - self.rejected

    @property
    def complete(self) -> bool:
        """Every row imported (or, for a dry run, valid)."""
        return self.rejected == 0 and self.not_delivered == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "format": self.format,
            "as_of": rfc3339(self.as_of_ms),
            "as_of_ms": self.as_of_ms,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "valid": self.valid,
            "rejected": self.rejected,
            "imported": self.imported,
            "not_delivered": self.not_delivered,
            "not_delivered_lines": list(self.not_delivered_lines),
            "delivery_error": self.delivery_error,
            "events": dict(self.events),
            "rejects": [r.to_json() for r in self.rejections],
            "rejects_shown": len(self.rejections),
            "unknown_locations": dict(self.unknown_locations),
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows / self.seconds) if self.seconds > 0 else None,
        }


class FirstLines:
    """The first line of each key (a 64-bit hash of a row's SKU and location), in two flat
    arrays (open addressing, linear probing): 16 bytes a slot, at most 64 bytes a row, where a
    dict of Python ints takes about 100, and the worker runs imports of up to
    STOCKSYNC_IMPORT_MAX_BYTES. A hash collision (a good row refused as a repeat) has odds of
    about 1 in 30 million in a million-row file."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self._keys = array("Q", bytes(8 * capacity))  # 0: an empty slot
        self._lines = array("Q", bytes(8 * capacity))
        self._mask = capacity - 1
        self._used = 0

    def __len__(self) -> int:
        return self._used

    def first_line(self, key: int, line: int) -> int:
        """The line `key` was first seen on; `line` (remembered) if it is new."""
        key = (key & _MASK_64) or 1
        keys, mask = self._keys, self._mask
        slot = key & mask
        while True:
            found = keys[slot]
            if found == key:
                return self._lines[slot]
            if not found:
                break
            slot = (slot + 1) & mask
        keys[slot] = key
        self._lines[slot] = line
        self._used += 1
        if 2 * self._used > mask:  # at most half full: probes stay short
            self._grow()
        return line

    def _grow(self) -> None:
        old_keys, old_lines = self._keys, self._lines
        self._allocate(2 * len(old_keys))
        for key, line in zip(old_keys, old_lines, strict=True):
            if key:
                self.first_line(key, line)


@dataclass(slots=True)
class SnapshotImport:
    """One import as it goes: `take` each parsed row and get the events to send (or the
    Rejection), report `undelivered` events, then `report`. A second row of a SKU-location
    already in the file is refused: both would be counts as of the same time, and the fold
    would merge only the first (the second raising COUNT_NOT_MERGED)."""

    identity: ImportIdentity
    format: Format
    as_of_ms: int
    known_locations: Collection[str] | None = None  # None: do not check
    keep_rejections: int = 100
    dry_run: bool = False
    rows: int = 0
    rejected: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)
    unknown_locations: Counter[str] = field(default_factory=Counter)
    undelivered: Counter[str] = field(default_factory=Counter)
    undelivered_lines: set[int] = field(default_factory=set)
    unplaced_undelivered: int = 0  # refused events whose line is not known
    delivery_error: str | None = None
    _seen: FirstLines = field(default_factory=lambda: FirstLines())

    def take(self, parsed: Parsed) -> tuple[InventoryEvent, ...] | Rejection:
        self.rows += 1
        if isinstance(parsed, Rejection):
            return self._reject(parsed)
        first = self._seen.first_line(hash((parsed.sku, parsed.location)), parsed.line)
        if first != parsed.line:
            return self._reject(
                Rejection(
                    parsed.line,
                    f"{parsed.sku} at {parsed.location} is already on line {first} of this "
                    "file; keep one row per SKU and location",
                    parsed.sku,
                    parsed.location,
                )
            )
        known = self.known_locations
        if known is not None and parsed.location not in known:
            self.unknown_locations[parsed.location] += 1
        events = snapshot_events(parsed, self.identity, self.as_of_ms)
        if not self.dry_run:
            for event in events:
                self.sent[event.kind.value] += 1
        return events

    def _reject(self, rejection: Rejection) -> Rejection:
        self.rejected += 1
        if len(self.rejections) < self.keep_rejections:
            self.rejections.append(rejection)
        return rejection

    def refused(self, event_id: str, sku: str, error: str) -> Rejection | None:
        """Kafka did not take one of the events sent: the row's Rejection the first time one
        of its events is refused (None after that, or when the event is not this import's)."""
        if self.delivery_error is None:
            self.delivery_error = error
        kind = event_id.rsplit(":", 1)[-1]
        line = line_of_event(event_id)
        if line is None or kind not in self.sent:
            self.unplaced_undelivered += 1
            return None
        self.undelivered[kind] += 1
        if line in self.undelivered_lines:
            return None
        self.undelivered_lines.add(line)
        return Rejection(line, f"not delivered: {error}", sku)

    def report(self, seconds: float = 0.0) -> ImportReport:
        not_delivered = sum(self.undelivered.values()) + self.unplaced_undelivered
        events = {kind: n - self.undelivered[kind] for kind, n in sorted(self.sent.items())}
        valid = self.rows - self.rejected
        if self.dry_run:
            imported = 0
        elif self.unplaced_undelivered:
            imported = 0  # which rows got through is not known: claim none
        else:
            imported = valid - len(self.undelivered_lines)
        listed = self.unknown_locations.most_common(UNKNOWN_LOCATIONS_LISTED)
        return ImportReport(
            source=self.identity.source,
            sha256=self.identity.sha256,
            format=self.format,
            as_of_ms=self.as_of_ms,
            dry_run=self.dry_run,
            rows=self.rows,
            rejected=self.rejected,
            imported=imported,
            not_delivered=not_delivered,
            not_delivered_lines=tuple(sorted(self.undelivered_lines)[: self.keep_rejections]),
            delivery_error=self.delivery_error,
            events=events,
            rejections=tuple(self.rejections),
            unknown_locations=dict(sorted(listed)),
            seconds=seconds,
        )
