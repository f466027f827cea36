"""A SKU's audit trail: one record per applied event, appended, never rewritten.

Records live in the history table under `<sku> NUL <slot>`, where slot = revision mod the
per-SKU retention count: each new record overwrites the one `retention` revisions older, so a
SKU keeps at most `retention` records and the compacted changelog keeps nothing more, with no
tombstones to write. A record carries its revision, so a slot holding an older (or, after a
change of the retention count, unrelated) record is told apart and skipped. The age limit is
applied when reading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from stocksync.domain.audit import AuditRecord, audit_view
from stocksync.domain.topology import Topology

SEPARATOR = b"\x00"
DAY_MS = 24 * 60 * 60 * 1000
DEFAULT_PAGE = 20  # records in a page when the reader does not say

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AuditRecord)


@dataclass(frozen=True, slots=True)
class HistoryRetention:
    per_sku: int = 50  # records kept per SKU
    max_age_days: int = 30  # older records are not shown (by event time, against the newest)


def history_key(sku_key: bytes, revision: int, retention: HistoryRetention) -> bytes:
    return sku_key + SEPARATOR + b"%d" % (revision % retention.per_sku)


def encode_record(record: AuditRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes) -> AuditRecord | None:
    """The record, or None for what is not one (a slot written by an older format)."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError:
        return None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: list[dict[str, Any]]  # newest first
    next_before: int | None  # the `before` of the next page; None: nothing older is kept


def read_history(
    get: Callable[[bytes], bytes | None],
    sku_key: bytes,
    latest_revision: int,
    newest_at: int,
    retention: HistoryRetention,
    topology: Topology,
    limit: int,
    before: int | None = None,
) -> HistoryPage:
    """The records of revisions below `before` (default: all), newest first, at most `limit`.
    `get` reads one key of the history table; `newest_at` is the SKU's newest event time,
    against which the age limit is applied."""
    top = latest_revision if before is None else min(before - 1, latest_revision)
    oldest = max(1, latest_revision - retention.per_sku + 1)
    entries: list[dict[str, Any]] = []
    horizon = newest_at - retention.max_age_days * DAY_MS
    revision = top
    while revision >= oldest and len(entries) < limit:
        stored = get(history_key(sku_key, revision, retention))
        revision -= 1
        if stored is None:
            continue
        record = decode_record(stored)
        if record is None or record.revision != revision + 1:
            continue  # a command's revision (no record) or an overwritten slot
        if record.occurred_at < horizon:
            continue  # past the age limit (a late event may sit among newer revisions)
        entries.append(audit_view(record, topology))
    more = revision >= oldest and len(entries) == limit
    return HistoryPage(entries, revision + 1 if more else None)
