"""SKU rows <-> the bytes stored in the ATP table and its changelog.

Compact, deterministic JSON (sorted keys, no spaces) so that replaying the log gives the same
table byte for byte. A location is a list: [on_hand, reserved, damaged, in_transit,
safety_stock or null, oversold, counted_at, journal_floor, journal...] where the journal's
(occurred_at, delta) pairs are flattened at the end.
"""

from __future__ import annotations

import json
from typing import Any

from stocksync.domain.state import Hold, LocationStock, SkuRow

ROW_FORMAT = 3


def row_to_bytes(row: SkuRow) -> bytes:
    doc = {
        "f": ROW_FORMAT,
        "sku": row.sku,
        "l": {
            loc: [
                s.on_hand,
                s.reserved,
                s.damaged,
                s.in_transit,
                s.safety_stock,
                s.oversold,
                s.counted_at,
                s.journal_floor,
                *(n for entry in s.journal for n in entry),
            ]
            for loc, s in row.locations.items()
        },
        "s": row.sources,
        "p": {ch: list(v) for ch, v in row.published.items()},
        "r": row.revision,
        "t": row.last_event_at,
        "h": {
            rid: [h.channel, h.location, h.quantity, h.expires_at] for rid, h in row.holds.items()
        },
        # insertion order matters (oldest answers are dropped first): a list, not a mapping
        "a": [[request_id, *answer] for request_id, answer in row.answers.items()],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _location(values: list[Any]) -> LocationStock:
    flat = values[8:]
    return LocationStock(
        on_hand=values[0],
        reserved=values[1],
        damaged=values[2],
        in_transit=values[3],
        safety_stock=values[4],
        oversold=values[5],
        counted_at=values[6],
        journal_floor=values[7],
        journal=tuple(zip(flat[0::2], flat[1::2], strict=True)),
    )


def row_from_bytes(data: bytes) -> SkuRow:
    doc: dict[str, Any] = json.loads(data)
    if doc.get("f") != ROW_FORMAT:
        raise ValueError(f"row format {doc.get('f')!r} is not {ROW_FORMAT}")
    return SkuRow(
        sku=doc["sku"],
        locations={loc: _location(values) for loc, values in doc["l"].items()},
        sources=doc["s"],
        published={ch: (v[0], v[1]) for ch, v in doc["p"].items()},
        revision=doc["r"],
        last_event_at=doc["t"],
        holds={rid: Hold(*values) for rid, values in doc["h"].items()},
        answers={entry[0]: tuple(entry[1:]) for entry in doc["a"]},
    )
