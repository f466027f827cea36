"""The replay diff: what counts as a difference between a replayed and a live table."""

from __future__ import annotations

from builders import ev, fold
from msgspec.structs import replace

from stocksync.codec.rows import row_from_bytes, row_to_bytes
from stocksync.domain.state import Hold, LocationStock, SkuRow
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
    assert field.describe() == "dc-1.on_hand: replay=5 live=7"


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
    assert {f.field for f in fields} == {"reserved", "holds"}
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
