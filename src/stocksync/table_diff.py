"""Compare two ATP tables (a replay of the log and the live table) SKU by SKU.

Pure: takes rows, returns a `TableDiff`. What counts as a difference is a decision about what a
replay can know. Kafka orders each partition of each topic, but not a partition of the stock
topic against the same partition of the sale and command topics: the order in which the worker
interleaved them is not recorded anywhere. So the fields of a row fall in two groups. (Which
input each side has folded is not a question here: `stocksync replay` folds, per SKU, exactly
what the live row had folded; see replay_cut.py.)

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

from msgspec import Struct

from stocksync.domain.state import Answer, Hold, LocationStock, Movement, Published, SkuRow

LOCATION_QUANTITIES = ("on_hand", "reserved", "damaged", "in_transit", "safety_stock")
LOCATION_ORDER_DEPENDENT = ("oversold", "counted_at", "journal", "journal_floor")
ROW_COMPARED = ("revision", "sources", "last_event_at", "command_offset", "holds")
ROW_ORDER_DEPENDENT = ("published", "answers")


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """One field that differs: `where` is "row" or a location id; a map field (sources, holds,
    published, answers) differs key by key, as `field` "holds.<reservation id>" (a value absent
    on one side is None)."""

    where: str
    field: str
    replayed: Any
    live: Any
    order_dependent: bool

    @property
    def path(self) -> str:
        return self.field if self.where == "row" else f"locations.{self.where}.{self.field}"

    def describe(self) -> str:
        """`locations.dc-1.on_hand: live 12, replay 10`, values summarised to one line."""
        note = " (order-dependent)" if self.order_dependent else ""
        live, replayed = show(self.live), show(self.replayed)
        if live != replayed:
            return f"{self.path}: live {live}, replay {replayed}{note}"
        # the summaries hide where they differ: say it another way
        if isinstance(self.live, tuple) and sorted(self.live) == sorted(self.replayed):
            return f"{self.path}: the same {live}, in another order{note}"
        if isinstance(self.live, Struct) and type(self.live) is type(self.replayed):
            names = [
                f for f in self.live.__struct_fields__ if _differs(f, self.live, self.replayed)
            ]
            live = ", ".join(f"{f} {show(getattr(self.live, f))}" for f in names)
            replayed = ", ".join(f"{f} {show(getattr(self.replayed, f))}" for f in names)
            return f"{self.path}: live {live}, replay {replayed}{note}"
        return f"{self.path}: live {live}, replay {replayed} (entries differ){note}"


def _differs(name: str, a: Struct, b: Struct) -> bool:
    return bool(getattr(a, name) != getattr(b, name))


def show(value: Any) -> str:
    """A field's value in a few words: journals are summarised, holds and answers named by what
    an operator checks first, never dumped as tuples."""
    if value is None:
        return "none"
    if isinstance(value, tuple) and all(isinstance(m, Movement) for m in value):
        return _journal(value)
    if isinstance(value, Hold):
        lines = ", ".join(f"{loc} {qty}" for loc, qty in value.allocation().items())
        until = value.expires_at
        return f"{value.status} {value.quantity} for {value.channel} ({lines}) until {until}"
    if isinstance(value, Published):
        return f"{value.quantity} (topology v{value.version})"
    if isinstance(value, Answer):
        return f"{value.kind} {value.status} {value.quantity}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _journal(movements: tuple[Movement, ...]) -> str:
    if not movements:
        return "empty"
    net = sum(m.delta for m in movements)
    first, last = movements[0].occurred_at, movements[-1].occurred_at
    return f"{len(movements)} movement(s), net {net:+d}, event times {first}..{last}"


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


def _map_fields(name: str, replayed: Mapping[str, Any], live: Mapping[str, Any]) -> list[FieldDiff]:
    """A map field key by key (maps compare as maps: insertion order is not a difference)."""
    order_dependent = name in ROW_ORDER_DEPENDENT
    return [
        FieldDiff("row", f"{name}.{key}", replayed.get(key), live.get(key), order_dependent)
        for key in sorted(set(replayed) | set(live))
        if replayed.get(key) != live.get(key)
    ]


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
    for name in (*ROW_COMPARED, *ROW_ORDER_DEPENDENT):
        a, b = getattr(replayed, name), getattr(live, name)
        if a == b:
            continue
        if isinstance(a, Mapping):
            out.extend(_map_fields(name, a, b))
        else:
            out.append(FieldDiff("row", name, a, b, name in ROW_ORDER_DEPENDENT))
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
