"""A SKU's audit trail: appended by the batch fold, one record per applied event, read in pages
newest first within the retention (count per SKU, age by event time)."""

from __future__ import annotations

import pytest
from builders import SKU, ev, reserve
from builders import command as reservation_command
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.domain.events import EventKind as K
from stocksync.service.history import DAY_MS, HistoryRetention
from stocksync.service.ports import Table

from .support import InputLog, Tables, fold_context, partition_of


def revisions(tables: Tables, limit: int = 100, before: int | None = None) -> list[int]:
    return [entry["revision"] for entry in tables.history(limit=limit, before=before).entries]


def with_retention(per_sku: int = 50, max_age_days: int = 30) -> Tables:
    return Tables(ctx=fold_context(HistoryRetention(per_sku, max_age_days)))


def received(tables: Tables, log: InputLog, count: int, at: int | None = None) -> None:
    """Fold `count` receipts of one unit at dc-1, in one batch."""
    tables.fold(*(log.event(ev(K.RECEIVED, 1, at=at)) for _ in range(count)))


def test_each_applied_event_appends_one_audit_record() -> None:
    # given three events, one of them delivered twice, over two batches
    tables, log = Tables(), InputLog()
    receipt, sale, count = ev(K.RECEIVED, 10), ev(K.SOLD, 3, source="pos"), ev(K.COUNTED, 6)
    tables.fold(log.event(receipt), log.event(sale))
    tables.fold(log.event(sale), log.event(count))
    # when the trail is read
    page = tables.history()
    # then it holds one record per applied event, newest first
    assert [(e["revision"], e["event_id"]) for e in page.entries] == [
        (3, count.event_id),
        (2, sale.event_id),
        (1, receipt.event_id),
    ]
    assert page.next_before is None


def test_a_transfer_in_from_a_location_the_row_never_held_is_recorded_not_dead_lettered() -> None:
    # given a SKU with no stock at dc-2, when units arrive at dc-1 from dc-2 (schema v2)
    tables, log = Tables(), InputLog()
    arrival = ev(K.TRANSFER_IN, 4, counterpart="dc-2")
    sink = tables.fold(log.event(arrival))
    # then the event is applied and recorded where it changed something, and nothing is
    # dead-lettered
    [entry] = tables.history().entries
    assert (entry["event_id"], list(entry["locations"])) == (arrival.event_id, ["dc-1"])
    assert sink.to(tables.ctx.topics.dead_letter) == []


def test_an_audit_record_says_what_the_event_did_and_why_channels_moved() -> None:
    tables, log = Tables(), InputLog()
    tables.fold(log.event(ev(K.RECEIVED, 10)))
    sale = ev(K.SOLD, 3, source="pos", at=7_000)
    tables.fold(log.event(sale))
    [entry] = tables.history(limit=1).entries
    assert (entry["type"], entry["source"], entry["quantity"], entry["occurred_at"]) == (
        "SOLD",
        "pos",
        3,
        7_000,
    )
    assert entry["locations"]["dc-1"] == {
        "on_hand": 7,
        "reserved": 0,
        "damaged": 0,
        "in_transit": 0,
        "atp": 7,
    }
    assert entry["channels"]["web"] == {"from": 10, "to": 7, "why": "dc-1 ATP 10 -> 7"}


def test_history_is_read_newest_first_up_to_the_limit() -> None:
    tables, log = Tables(), InputLog()
    received(tables, log, 5)
    page = tables.history(limit=2)
    assert [e["revision"] for e in page.entries] == [5, 4]
    assert page.next_before == 4


def test_next_before_chains_the_pages_until_nothing_older_is_kept() -> None:
    # given seven records
    tables, log = Tables(), InputLog()
    received(tables, log, 4)
    received(tables, log, 3)
    # when the trail is read three at a time, each page before the last one's next_before
    pages, before = [], None
    while True:
        page = tables.history(limit=3, before=before)
        pages.append([e["revision"] for e in page.entries])
        if page.next_before is None:
            break
        before = page.next_before
    # then every record comes once, newest first
    assert pages == [[7, 6, 5], [4, 3, 2], [1]]


def test_a_page_before_a_revision_starts_below_it() -> None:
    tables, log = Tables(), InputLog()
    received(tables, log, 5)
    assert revisions(tables, before=3) == [2, 1]
    assert revisions(tables, before=1) == []
    assert revisions(tables, before=99) == [5, 4, 3, 2, 1]


def test_a_sku_keeps_only_its_newest_per_sku_records() -> None:
    # given a retention of 5 records per SKU
    tables, log = with_retention(per_sku=5), InputLog()
    # when 12 events are folded, 9 of them in one batch
    received(tables, log, 3)
    received(tables, log, 9)
    # then the newest 5 are read, and the history table holds no more than 5 for the SKU
    assert revisions(tables) == [12, 11, 10, 9, 8]
    stored = tables.store.data[(Table.HISTORY, partition_of(SKU))]
    assert len([k for k in stored if k.startswith(SKU.encode() + b"\x00")]) == 5


def test_records_older_than_max_age_are_not_returned() -> None:
    # given a 2-day age limit and events over four days (event time)
    tables, log = with_retention(max_age_days=2), InputLog()
    for day in (0, 1, 2, 3, 4):
        tables.fold(log.event(ev(K.RECEIVED, 1, at=day * DAY_MS + 1)))
    # when the trail is read
    page = tables.history()
    # then only what happened within 2 days of the newest event is shown
    assert [e["occurred_at"] for e in page.entries] == [
        4 * DAY_MS + 1,
        3 * DAY_MS + 1,
        2 * DAY_MS + 1,
    ]
    assert page.next_before is None


def test_age_is_measured_against_the_newest_event_not_the_clock() -> None:
    # given events 100 days ago (in event time) and nothing since
    tables, log = with_retention(max_age_days=30), InputLog()
    received(tables, log, 3, at=1)
    # then the trail is still shown: the fold and its history read no clock
    assert revisions(tables) == [3, 2, 1]


def test_a_commands_revision_has_no_record_and_is_skipped() -> None:
    # given events and reservation commands of one SKU (commands take revisions too)
    tables, log = Tables(), InputLog()
    tables.fold(log.event(ev(K.RECEIVED, 10)))  # 1
    tables.fold(log.command(reserve(2, "res-1")))  # 2
    tables.fold(log.event(ev(K.SOLD, 1, source="pos")))  # 3
    tables.fold(log.command(reservation_command("RELEASE", "res-1")))  # 4
    tables.fold(log.event(ev(K.RECEIVED, 1)))  # 5
    # then the trail holds the events only, and a page is filled with events
    assert tables.row().revision == 5
    assert revisions(tables) == [5, 3, 1]
    first = tables.history(limit=2)
    assert [e["revision"] for e in first.entries] == [5, 3]
    assert revisions(tables, limit=2, before=first.next_before) == [1]


def test_a_commands_slot_still_holding_an_older_record_is_skipped() -> None:
    # given 3 records per SKU: events take revisions 1-3, a command revision 4 (slot 1,
    # which still holds revision 1's record)
    tables, log = with_retention(per_sku=3), InputLog()
    received(tables, log, 3)
    tables.fold(log.command(reserve(1, "res-1")))
    # then revision 1's record is not shown as revision 4's, nor at all (beyond 3 revisions)
    assert revisions(tables) == [3, 2]


def test_records_written_under_another_per_sku_count_are_not_shown_as_other_revisions() -> None:
    # given 7 records written with 5 slots per SKU
    tables, log = with_retention(per_sku=5), InputLog()
    received(tables, log, 7)
    # when the retention count changes to 3
    tables.ctx.retention = HistoryRetention(per_sku=3)
    # then a slot holding another revision's record is skipped, never mislabelled
    assert revisions(tables) == []
    # and new records are read again as they are written
    received(tables, log, 3)
    assert revisions(tables) == [10, 9, 8]


def test_a_late_event_beyond_the_age_limit_does_not_hide_older_revisions_within_it() -> None:
    # (revision order is not event-time order: a backfill, a till that was offline)
    # given two recent events, then a late one that happened 40 days before, then a recent one
    tables, log = with_retention(max_age_days=30), InputLog()
    now = 100 * DAY_MS
    for at in (now - 2, now - 1, now - 40 * DAY_MS, now):
        tables.fold(log.event(ev(K.RECEIVED, 1, at=at)))
    # then the late one is not shown, the three within 30 days of the newest are
    assert revisions(tables) == [4, 2, 1]


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.booleans(), max_size=30),  # True: an event, False: a command
    per_sku=st.integers(1, 8),
    limit=st.integers(1, 5),
)
def test_paging_through_the_trail_returns_each_kept_event_once_newest_first(
    steps: list[bool], per_sku: int, limit: int
) -> None:
    # given events and commands (commands take a revision and write no record)
    tables, log = with_retention(per_sku=per_sku), InputLog()
    tables.fold(log.event(ev(K.RECEIVED, 1_000)))
    event_revisions = [1]
    for revision, is_event in enumerate(steps, start=2):
        if is_event:
            tables.fold(log.event(ev(K.RECEIVED, 1)))
            event_revisions.append(revision)
        else:
            tables.fold(log.command(reservation_command("RELEASE", f"none-{revision}")))
    # when the trail is read page by page
    seen: list[int] = []
    before = None
    for _ in range(len(steps) + 2):
        page = tables.history(limit=limit, before=before)
        assert len(page.entries) <= limit
        seen.extend(entry["revision"] for entry in page.entries)
        if page.next_before is None:
            break
        before = page.next_before
    else:
        pytest.fail("next_before never reached None")
    # then each event among the newest per_sku revisions comes once, newest first
    latest = len(steps) + 1
    assert seen == [r for r in reversed(event_revisions) if r > latest - per_sku]
