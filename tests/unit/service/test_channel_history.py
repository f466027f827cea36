"""A channel's published quantities for a SKU, newest first, each with the event that caused
it; a change no audit record explains (a reservation) is listed where it happened, so the
entries chain from one quantity to the next."""

from __future__ import annotations

from typing import Any

from builders import ev, reserve
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.domain.events import EventKind as K
from stocksync.service.channel_history import HistoryPosition
from stocksync.service.queries import TableQueries

from .support import PARTITIONS, InputLog, Tables

SKU = "SKU-H"


def queries(tables: Tables) -> TableQueries:
    return TableQueries(tables.store, PARTITIONS, tables.ctx.retention, lambda: tables.ctx.topology)


def all_pages(tables: Tables, channel: str, limit: int) -> list[dict[str, Any]]:
    after: HistoryPosition | None = None
    entries: list[dict[str, Any]] = []
    for _ in range(100):
        page = queries(tables).channel_history(SKU, channel, limit, after)
        assert page is not None
        assert len(page.entries) <= limit
        entries.extend(page.entries)
        if page.next is None:
            return entries
        after = page.next
    raise AssertionError("paging did not end")


def sold_and_reserved() -> tuple[Tables, list[Any]]:
    """web: 10 received -> 8 after a sale -> 5 after a hold of 3 -> 4 after another sale."""
    tables, log = Tables(), InputLog()
    receipt = ev(K.RECEIVED, 10, sku=SKU, source="wms")
    first_sale = ev(K.SOLD, 2, sku=SKU, source="pos")
    second_sale = ev(K.SOLD, 1, sku=SKU, source="pos")
    tables.fold(log.event(receipt))
    tables.fold(log.event(first_sale))
    tables.fold(log.command(reserve(3, "hold-1", sku=SKU)))
    tables.fold(log.event(second_sale))
    return tables, [receipt, first_sale, second_sale]


def test_each_published_quantity_comes_with_its_cause_newest_first() -> None:
    tables, (receipt, first_sale, second_sale) = sold_and_reserved()
    entries = all_pages(tables, "web", 20)
    assert [(e["previous"], e["quantity"]) for e in entries] == [
        (5, 4),
        (8, 5),
        (10, 8),
        (None, 10),
    ]
    newest, unrecorded, sale, first = entries
    assert newest["event"] == {
        "event_id": second_sale.event_id,
        "type": "SOLD",
        "source": "pos",
        "location": "dc-1",
        "counterpart_location": None,
        "quantity": 1,
        "reason": None,
    }
    assert (newest["revision"], newest["policy_version"], newest["at"]) == (
        4,
        tables.ctx.topology.version,
        second_sale.occurred_at,
    )
    assert newest["why"] == "dc-1 ATP 5 -> 4"
    # the hold moved web without an audit record: listed, between revisions 2 and 4
    assert (unrecorded["event"], unrecorded["revision"], unrecorded["after_revision"]) == (
        None,
        None,
        2,
    )
    assert "reservation" in unrecorded["why"]
    assert sale["event"]["event_id"] == first_sale.event_id
    assert (first["event"]["event_id"], first["why"]) == (receipt.event_id, "dc-1 ATP 0 -> 10")


@settings(max_examples=20, deadline=None)
@given(limit=st.integers(1, 5))
def test_any_page_size_gives_the_same_entries(limit: int) -> None:
    tables, _ = sold_and_reserved()
    assert all_pages(tables, "web", limit) == all_pages(tables, "web", 20)


def test_a_channel_the_events_did_not_move_has_no_entries() -> None:
    # pos-store-1 sells store-1 only; every event was at dc-1
    tables, _ = sold_and_reserved()
    page = queries(tables).channel_history(SKU, "pos-store-1", 20, None)
    assert page is not None
    assert (page.entries, page.next) == ([], None)


def test_an_unknown_sku_has_no_history() -> None:
    assert queries(Tables()).channel_history("NOPE", "web", 20, None) is None
