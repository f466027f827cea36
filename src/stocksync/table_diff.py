"""Compare two ATP tables (a replay of the log and the live table) SKU by SKU.

Pure: takes rows, returns a `TableDiff`. What counts as a difference is a decision about what a
replay can know. Kafka orders each partition of each topic, but not a partition of the stock
topic against the same partition of the sale and command topics: the order in which the worker
interleaved them is not recorded anywhere. So the fields of a row fall in two groups.

Compared (a difference means the live table is not what the log says):
- per location `on_hand`, `reserved`, `damaged`, `in_transit`, `safety_stock`: sums of
  commutative movements (cycle counts merge by event time, not arrival order; releases and
  fulfilments are clamped on the sale topic, whose order Kafka keeps);
- `revision` (events and commands applied), `sources` (highest sequence applied per source and
  topic), `last_event_at` (newest event time), `command_offset`: which input was applied;
- `holds`: the reservations held now. A RESERVE is decided against the ATP of the moment, so a
  replay that interleaves stock and commands differently could decide differently; the replay
  interleaves them by record timestamp, the order the worker most likely saw.

Order-dependent (reported as notes, never a failure unless strict): `oversold` (a sale folded
before the receipt it raced with counts as a shortfall), `counted_at`/`journal`/
`journal_floor` (the count-merge bookkeeping), `published` (the last quantity per channel and
the topology version in force when it changed: topology versions are applied by the worker as
they arrive, the replay uses one) and `answers` (the remembered replies).

Strict mode compares the stored bytes too: equal only when the replay order and topology were
the worker's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stocksync.domain.state import LocationStock, SkuRow

LOCATION_QUANTITIES = ("on_hand", "reserved", "damaged", "in_transit", "safety_stock")
LOCATION_ORDER_DEPENDENT = ("oversold", "counted_at", "journal", "journal_floor")
ROW_COMPARED = ("revision", "sources", "last_event_at", "command_offset", "holds")
ROW_ORDER_DEPENDENT = ("published", "answers")


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """One field that differs: `where` is "row" or a location id."""

    where: str
    field: str
    replayed: Any
    live: Any
    order_dependent: bool

    def describe(self) -> str:
        place = "" if self.where == "row" else f"{self.where}."
        note = " (order-dependent)" if self.order_dependent else ""
        return f"{place}{self.field}: replay={self.replayed!r} live={self.live!r}{note}"


@dataclass(frozen=True, slots=True)
class SkuDiff:
    sku: str
    fields: tuple[FieldDiff, ...]
    bytes_differ: bool

    @property
    def material(self) -> tuple[FieldDiff, ...]:
        return tuple(f for f in self.fields if not f.order_dependent)

    @property
    def notes(self) -> tuple[FieldDiff, ...]:
        return tuple(f for f in self.fields if f.order_dependent)


@dataclass(frozen=True, slots=True)
class TableDiff:
    only_replayed: tuple[str, ...] = ()  # in the log, missing from the live table
    only_live: tuple[str, ...] = ()  # in the live table, not produced by the log
    unreadable_live: tuple[str, ...] = ()  # live bytes that are not a row
    differing: tuple[SkuDiff, ...] = field(default=())
    compared: int = 0  # SKUs present on both sides

    def equal(self, strict: bool = False) -> bool:
        if self.only_replayed or self.only_live or self.unreadable_live:
            return False
        if strict:
            return not any(d.bytes_differ for d in self.differing)
        return not any(d.material for d in self.differing)


def _location_fields(loc: str, replayed: LocationStock, live: LocationStock) -> list[FieldDiff]:
    out = []
    for name in LOCATION_QUANTITIES:
        a, b = getattr(replayed, name), getattr(live, name)
        if a != b:
            out.append(FieldDiff(loc, name, a, b, order_dependent=False))
    for name in LOCATION_ORDER_DEPENDENT:
        a, b = getattr(replayed, name), getattr(live, name)
        if a != b:
            out.append(FieldDiff(loc, name, a, b, order_dependent=True))
    return out


def _plain(value: Any) -> Any:
    """Holds as plain tuples, so the printed diff reads (channel, location, quantity, expires)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in sorted(value.items())}
    if hasattr(value, "__struct_fields__"):
        return tuple(getattr(value, f) for f in value.__struct_fields__)
    return value


def diff_rows(replayed: SkuRow, live: SkuRow) -> list[FieldDiff]:
    """The fields that differ between two rows of one SKU. Maps are compared as maps: the
    insertion order a different interleaving gives them is not a difference."""
    out: list[FieldDiff] = []
    empty = LocationStock()
    for loc in sorted(set(replayed.locations) | set(live.locations)):
        out.extend(
            _location_fields(
                loc, replayed.locations.get(loc, empty), live.locations.get(loc, empty)
            )
        )
    for name in ROW_COMPARED:
        a, b = getattr(replayed, name), getattr(live, name)
        if a != b:
            out.append(FieldDiff("row", name, _plain(a), _plain(b), order_dependent=False))
    for name in ROW_ORDER_DEPENDENT:
        a, b = getattr(replayed, name), getattr(live, name)
        if a != b:
            out.append(FieldDiff("row", name, _plain(a), _plain(b), order_dependent=True))
    return out


def diff_tables(
    replayed: Mapping[str, bytes],
    live: Mapping[str, bytes],
    decode: Any,
    skus: Iterable[str] | None = None,
) -> TableDiff:
    """Compare stored rows (SKU -> row bytes) of a replay and of the live table.

    `decode` turns row bytes into a SkuRow (stocksync.codec.rows.row_from_bytes) and raises
    ValueError for bytes that are not a row. `skus` limits the comparison to those SKUs."""
    wanted = set(skus) if skus is not None else set(replayed) | set(live)
    only_replayed = sorted(s for s in wanted if s in replayed and s not in live)
    only_live = sorted(s for s in wanted if s in live and s not in replayed)
    unreadable: list[str] = []
    differing: list[SkuDiff] = []
    compared = 0
    for sku in sorted(s for s in wanted if s in replayed and s in live):
        compared += 1
        a, b = replayed[sku], live[sku]
        if a == b:
            continue
        try:
            live_row = decode(b)
        except ValueError:
            unreadable.append(sku)
            continue
        differing.append(SkuDiff(sku, tuple(diff_rows(decode(a), live_row)), bytes_differ=True))
    return TableDiff(
        only_replayed=tuple(only_replayed),
        only_live=tuple(only_live),
        unreadable_live=tuple(unreadable),
        differing=tuple(differing),
        compared=compared,
    )
