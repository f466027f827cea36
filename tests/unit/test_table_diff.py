"""The replay diff: what counts as a difference between a replayed and a live table."""

from __future__ import annotations

from builders import ev, fold
from msgspec.structs import replace

from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.domain.state import (
    Answer,
    CommandKind,
    Hold,
    LocationStock,
    Movement,
    ReplyStatus,
    SkuRow,
)
from stocksync.table_diff import diff_rows, diff_tables


def _table(*rows: SkuRow) -> dict[str, bytes]:
    return {row.sku: row_to_bytes(row) for row in rows}


def _row(sku: str = "A", on_hand: int = 5, reserved: int = 0, oversold: int = 0) -> SkuRow:
    stock = LocationStock(on_hand=on_hand, reserved=reserved, oversold=oversold)
    return SkuRow(sku=sku, locations={"dc-1": stock}, revision=1)


def test_identical_tables_are_equal() -> None:
    table = _table(_row("A"), _row("B"))
    diff = diff_tables(table, dict(table), row_from_bytes)
    assert diff.equal() and diff.equal(strict=True)
    assert diff.compared == 2


def test_a_sku_on_one_side_only_is_named() -> None:
    diff = diff_tables(_table(_row("A"), _row("B")), _table(_row("B"), _row("C")), row_from_bytes)
    assert diff.only_replayed == ("A",)
    assert diff.only_live == ("C",)
    assert not diff.equal()


def test_a_different_on_hand_is_a_difference_naming_location_and_field() -> None:
    diff = diff_tables(_table(_row(on_hand=5)), _table(_row(on_hand=7)), row_from_bytes)
    assert not diff.equal()
    (sku_diff,) = diff.differing
    (field,) = sku_diff.material
    assert (field.where, field.field, field.replayed, field.live) == ("dc-1", "on_hand", 5, 7)
    assert field.describe() == "locations.dc-1.on_hand: live 7, replay 5"


def test_oversold_alone_is_order_dependent_and_fails_only_strict() -> None:
    diff = diff_tables(_table(_row(oversold=0)), _table(_row(oversold=1)), row_from_bytes)
    assert diff.equal()
    assert not diff.equal(strict=True)
    (sku_diff,) = diff.differing
    assert [f.field for f in sku_diff.notes] == ["oversold"]


def test_location_order_in_the_row_is_not_a_difference() -> None:
    # given the same quantities reached with locations first seen in another order
    first = fold(ev("RECEIVED", 3, loc="dc-1", seq=1), ev("RECEIVED", 4, loc="dc-2", seq=2))[0]
    stocks = first.locations
    reordered = replace(first, locations={"dc-2": stocks["dc-2"], "dc-1": stocks["dc-1"]})
    # when compared, then the bytes differ but no field does
    diff = diff_tables(_table(first), _table(reordered), row_from_bytes)
    assert row_to_bytes(first) != row_to_bytes(reordered)
    assert diff.equal()
    assert diff.differing[0].fields == ()
    assert not diff.equal(strict=True)


def test_a_missing_hold_is_a_difference() -> None:
    held = replace(_row(reserved=2), holds={"r1": Hold("web", "dc-1", 2, 10_000)})
    fields = diff_rows(held, _row(reserved=0))
    assert {f.field for f in fields} == {"reserved", "holds.r1"}
    assert all(not f.order_dependent for f in fields)


def test_a_live_row_that_is_not_a_row_is_reported() -> None:
    diff = diff_tables(_table(_row("A")), {"A": b"bogus"}, row_from_bytes)
    assert diff.unreadable_live == ("A",)
    assert not diff.equal()


def test_skus_limit_the_comparison() -> None:
    diff = diff_tables(
        _table(_row("A"), _row("B", on_hand=1)), _table(_row("A")), row_from_bytes, skus=["A"]
    )
    assert diff.equal()


def test_each_difference_reads_as_one_line_live_then_replay() -> None:
    live = replace(
        _row(on_hand=12, oversold=1), sources={"wms": 9}, holds={"r1": Hold("web", "dc-1", 2, 9)}
    )
    lines = {f.describe() for f in diff_rows(replace(_row(on_hand=10), sources={"wms": 7}), live)}
    assert lines == {
        "locations.dc-1.on_hand: live 12, replay 10",
        "locations.dc-1.oversold: live 1, replay 0 (order-dependent)",
        "sources.wms: live 9, replay 7",
        "holds.r1: live HELD 2 for web (dc-1 2) until 9, replay none",
    }


def test_a_journal_is_summarised_not_dumped() -> None:
    movements = (Movement(1_000, 3), Movement(2_000, -1))
    live = replace(_row(), locations={"dc-1": LocationStock(on_hand=5, journal=movements)})
    replayed = replace(_row(), locations={"dc-1": LocationStock(on_hand=5, journal=())})
    (field,) = diff_rows(replayed, live)
    assert field.describe() == (
        "locations.dc-1.journal: live 2 movement(s), net +2, event times 1000..2000, "
        "replay empty (order-dependent)"
    )
    # entries that summarise alike still say that they differ, and how
    alike = (Movement(1_000, 1), Movement(2_000, 1))
    other = replace(live, locations={"dc-1": LocationStock(on_hand=5, journal=alike)})
    (same_summary,) = diff_rows(other, live)
    assert same_summary.describe().endswith("(entries differ) (order-dependent)")
    at_once = (Movement(1_000, 3), Movement(1_000, -1))
    live = replace(_row(), locations={"dc-1": LocationStock(on_hand=5, journal=at_once)})
    other = replace(live, locations={"dc-1": LocationStock(on_hand=5, journal=at_once[::-1])})
    (reordered,) = diff_rows(other, live)
    assert reordered.describe() == (
        "locations.dc-1.journal: the same 2 movement(s), net +2, event times 1000..1000, "
        "in another order (order-dependent)"
    )


def test_records_that_summarise_alike_show_the_fields_that_differ() -> None:
    answer = Answer("r1", CommandKind.RESERVE, ReplyStatus.HELD, "web", "dc-1", 1, 1, 30)
    live = replace(_row(), answers={"r1": answer})
    replayed = replace(_row(), answers={"r1": replace(answer, available=28)})
    (field,) = diff_rows(replayed, live)
    assert (
        field.describe() == "answers.r1: live available 30, replay available 28 (order-dependent)"
    )
