"""SKU rows <-> the bytes stored in the ATP table and its changelog.

Compact, deterministic JSON (sorted keys, no spaces) so that replaying the log gives the same
table byte for byte. A location is a list: [on_hand, reserved, damaged, in_transit,
safety_stock or null, oversold].
"""

from __future__ import annotations

import json
from typing import Any

from stocksync.domain.state import LocationStock, SkuRow

ROW_FORMAT = 1


def row_to_bytes(row: SkuRow) -> bytes:
    doc = {
        "f": ROW_FORMAT,
        "sku": row.sku,
        "l": {
            loc: [s.on_hand, s.reserved, s.damaged, s.in_transit, s.safety_stock, s.oversold]
            for loc, s in row.locations.items()
        },
        "s": row.sources,
        "p": {ch: list(v) for ch, v in row.published.items()},
        "r": row.revision,
        "t": row.last_event_at,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def row_from_bytes(data: bytes) -> SkuRow:
    doc: dict[str, Any] = json.loads(data)
    if doc.get("f") != ROW_FORMAT:
        raise ValueError(f"row format {doc.get('f')!r} is not {ROW_FORMAT}")
    return SkuRow(
        sku=doc["sku"],
        locations={loc: LocationStock(*values) for loc, values in doc["l"].items()},
        sources=doc["s"],
        published={ch: (v[0], v[1]) for ch, v in doc["p"].items()},
        revision=doc["r"],
        last_event_at=doc["t"],
    )
