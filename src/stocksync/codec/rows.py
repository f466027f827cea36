"""SKU rows <-> the bytes stored in the ATP table and its changelog.

MessagePack (msgspec) of the row Struct, array-like. Maps keep their insertion order, which the
fold makes deterministic (and which bounds the row's memory of answers: oldest first out), so
replaying the log gives the same table byte for byte. The first element is the row format.

Format 4 rows written while the row kept its answers as plain tuples are the same bytes: an
Answer (domain/state.py) is an array of the tuple's elements, in the tuple's order, so those
rows decode into named answers unchanged.
"""

from __future__ import annotations

import msgspec

from stocksync.domain.state import Hold, SkuRow

ROW_FORMAT = 4


class _StoredRow(msgspec.Struct, array_like=True):
    format: int
    row: SkuRow


class _RowHolds(msgspec.Struct, array_like=True):
    """The leading fields of SkuRow up to its holds; the rest of the array is not parsed."""

    sku: str
    _locations: msgspec.Raw
    _sources: msgspec.Raw
    _published: msgspec.Raw
    _revision: msgspec.Raw
    _last_event_at: msgspec.Raw
    holds: dict[str, Hold] = {}


class _StoredHolds(msgspec.Struct, array_like=True):
    format: int
    row: _RowHolds


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_StoredRow)
_holds_decoder = msgspec.msgpack.Decoder(_StoredHolds)


def row_to_bytes(row: SkuRow) -> bytes:
    return _encoder.encode(_StoredRow(ROW_FORMAT, row))


def row_from_bytes(data: bytes) -> SkuRow:
    try:
        stored = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a format-{ROW_FORMAT} row: {exc}") from None
    if stored.format != ROW_FORMAT:
        raise ValueError(f"row format {stored.format} is not {ROW_FORMAT}")
    return stored.row


def holds_from_bytes(data: bytes) -> tuple[str, dict[str, Hold]]:
    """A stored row's SKU and active holds, without decoding the rest (a restart scans every
    row for holds to expire)."""
    try:
        stored = _holds_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a format-{ROW_FORMAT} row: {exc}") from None
    if stored.format != ROW_FORMAT:
        raise ValueError(f"row format {stored.format} is not {ROW_FORMAT}")
    return stored.row.sku, stored.row.holds
