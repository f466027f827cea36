"""SKU listings over the tables: slices of each worker's partitions merged into exact pages.
Paging through, with any page size, any scan budget and the partitions spread over any number
of workers, yields every matching SKU exactly once, in key order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.domain.state import channel_atp
from stocksync.service.listings import (
    FAUST_INTERNAL_KEY_PREFIX,
    Page,
    Position,
    SkuFilter,
    Slice,
    merge_slices,
    sku_slice,
)
from stocksync.service.ports import Table

from .listing_support import ListingTables, split
from .support import PARTITIONS, partition_of

SKU_TEXT = st.text(alphabet="ABab01-\u00e9", min_size=1, max_size=5)


def page_through(
    built: ListingTables, workers: list[list[int]], wanted: SkuFilter, limit: int, budget: int
) -> list[str]:
    """Every page from the first to the last, as the API asks each worker for its slice."""
    after: Position | None = None
    seen: list[str] = []
    for _ in range(1000):
        page = merge_slices(
            (
                sku_slice(
                    built.tables.store,
                    parts,
                    built.tables.ctx.topology,
                    wanted,
                    after,
                    limit,
                    budget,
                )
                for parts in workers
            ),
            limit,
        )
        assert len(page.items) <= limit
        seen.extend(row.sku for row in page.items)
        if page.next is None:
            return seen
        assert after is None or page.next > after, "a page must move on"
        after = page.next
    raise AssertionError("paging did not end")


@settings(max_examples=60, deadline=None)
@given(
    skus=st.dictionaries(SKU_TEXT, st.integers(1, 20), min_size=0, max_size=25),
    workers=st.integers(1, 3),
    order=st.permutations(range(PARTITIONS)),
    limit=st.integers(1, 6),
    budget=st.integers(1, 6),
    prefix=st.sampled_from(["", "A", "b0", "\u00e9"]),
    below=st.none() | st.integers(0, 21),
)
def test_paging_yields_every_matching_sku_once_in_key_order(
    skus: dict[str, int],
    workers: int,
    order: list[int],
    limit: int,
    budget: int,
    prefix: str,
    below: int | None,
) -> None:
    built = ListingTables.stocked(skus)
    wanted = SkuFilter(prefix, below, "web" if below is not None else None)
    seen = page_through(built, split(order, workers), wanted, limit, budget)
    expected = sorted(
        sku
        for sku, units in skus.items()
        if sku.startswith(prefix) and (below is None or units < below)  # web sells dc-1 as is
    )
    assert seen == expected


def test_a_channel_filter_compares_that_channels_quantity() -> None:
    # marketplace keeps back 10% (rounded down) and 1 unit: 20 -> 17, 5 -> 4
    built = ListingTables.stocked({"A": 20, "B": 5})
    rows = sku_slice(
        built.tables.store,
        range(PARTITIONS),
        built.tables.ctx.topology,
        SkuFilter(below_atp=18, channel="marketplace"),
        None,
        10,
        100,
    )
    topology = built.tables.ctx.topology
    assert [(row.sku, channel_atp(row, topology, "marketplace")) for _, row in rows.items] == [
        ("A", 17),
        ("B", 4),
    ]


def test_bare_rows_and_fausts_own_keys_are_not_skus() -> None:
    # given a stocked SKU, a row a refused reservation left (no location), and faust's offset key
    built = ListingTables.stocked({"A": 3})
    built.reservation("NEVER-STOCKED", "r-1", "held")  # refused: no stock, a bare row
    store = built.tables.store
    assert store.get(Table.ROWS, partition_of("NEVER-STOCKED"), b"NEVER-STOCKED") is not None
    store.write(
        Table.ROWS, partition_of("A"), [(FAUST_INTERNAL_KEY_PREFIX + b"\x00offset__", b"7")]
    )
    # then the listing holds the stocked SKU only
    found = sku_slice(
        store, range(PARTITIONS), built.tables.ctx.topology, SkuFilter(), None, 10, 100
    )
    assert [row.sku for _, row in found.items] == ["A"]
    assert found.covered is None


def test_a_spent_budget_says_how_far_it_read() -> None:
    built = ListingTables.stocked({"A": 1, "B": 1, "C": 1})
    found = sku_slice(
        built.tables.store,
        range(PARTITIONS),
        built.tables.ctx.topology,
        SkuFilter(below_atp=0, channel="web"),  # nothing is below 0
        None,
        10,
        2,
    )
    assert (found.items, found.covered) == ([], ("B",))


def test_a_page_holds_nothing_a_worker_has_not_looked_at() -> None:
    # worker 1 read up to "C" and stopped (its budget); worker 2 found "B" and "D"
    first = Slice([(("A",), "A"), (("C",), "C")], ("C",), (0,))
    second = Slice([(("B",), "B"), (("D",), "D")], None, (1,))
    # then the page stops at "C": worker 1 may hold something between "C" and "D"
    assert merge_slices([first, second], 10) == Page(["A", "B", "C"], ("C",))
    # and a full page ends at its last item
    assert merge_slices([first, second], 2) == Page(["A", "B"], ("B",))
    # and when every worker has read to the end, there is no next page
    assert merge_slices([Slice([], None, (0,)), second], 10) == Page(["B", "D"], None)
