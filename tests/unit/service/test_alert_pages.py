"""Pages of the alerts topic, newest first, over a topic held in memory: paging through with
any page size, chunk and budget yields every matching alert exactly once, a partition is
never read past what the page needs, and `since` and a SKU narrow what is read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.service.admission import murmur2_partition
from stocksync.service.alert_pages import (
    NO_OFFSET,
    AlertFilter,
    LoggedAlert,
    Ranges,
    alert_page,
    first_ranges,
)

from .alert_log_support import ALERT_PARTITIONS, MemoryAlertLog

SKUS = ("SKU-A", "SKU-B", "SKU-C", "SKU-D")
TYPES = ("OVERSELL", "LOW_STOCK", "OUT_OF_STOCK")


def page_through(
    alert_log: MemoryAlertLog, wanted: AlertFilter, limit: int, chunk: int, budget: int
) -> list[tuple[int, int]]:
    """(partition, offset) of every alert of every page."""
    ranges: Ranges | None = None
    seen: list[tuple[int, int]] = []
    for _ in range(10_000):
        if ranges is None:
            ranges = first_ranges(alert_log, wanted)
        page = alert_page(alert_log, ranges, wanted, limit, chunk, budget)
        assert len(page.items) <= limit
        seen.extend((item["partition"], item["offset"]) for item in page.items)
        if page.remaining is None:
            return seen
        ranges = page.remaining
    raise AssertionError("paging did not end")


ALERTS = st.lists(
    st.tuples(st.sampled_from(SKUS), st.sampled_from(TYPES), st.integers(0, 50), st.booleans()),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(
    alerts=ALERTS,
    limit=st.integers(1, 6),
    chunk=st.integers(1, 7),
    budget=st.integers(1, 8),
    kind=st.none() | st.sampled_from(TYPES),
    sku=st.none() | st.sampled_from(SKUS),
    channel=st.none() | st.just("web"),
    since=st.none() | st.integers(0, 60),
)
def test_paging_yields_every_matching_alert_once(
    alerts: list[tuple[str, str, int, bool]],
    limit: int,
    chunk: int,
    budget: int,
    kind: str | None,
    sku: str | None,
    channel: str | None,
    since: int | None,
) -> None:
    # given alerts whose timestamps need not follow their offsets (producer clocks)
    alert_log = MemoryAlertLog()
    written = [alert_log.append(s, k, ts, header) for s, k, ts, header in alerts]
    wanted = AlertFilter(kind, sku, channel, since)
    seen = page_through(alert_log, wanted, limit, chunk, budget)
    floors = alert_log.offsets_at(since) if since is not None else {}

    def matches(record: LoggedAlert, s: str, k: str) -> bool:
        floor = floors.get(record.partition, 0)
        in_time = floor != NO_OFFSET and record.offset >= floor
        web = record.offset % 2 == 1 and k != "OVERSELL"
        return (
            in_time
            and (kind is None or k == kind)
            and (sku is None or s == sku)
            and (channel is None or web)
        )

    expected = {
        (r.partition, r.offset)
        for r, (s, k, _, _) in zip(written, alerts, strict=True)
        if matches(r, s, k)
    }
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(expected), "an alert listed twice"


@settings(max_examples=40, deadline=None)
@given(
    stamps=st.lists(st.integers(0, 10**6), max_size=30),
    limit=st.integers(1, 6),
    chunk=st.integers(1, 7),
)
def test_alerts_come_newest_first(stamps: list[int], limit: int, chunk: int) -> None:
    # given each partition's alerts written in time order (one producer clock)
    alert_log = MemoryAlertLog()
    for i, at in enumerate(sorted(stamps)):
        alert_log.append(SKUS[i % len(SKUS)], "LOW_STOCK", at)
    seen = page_through(alert_log, AlertFilter(), limit, chunk, budget=1000)
    times = [alert_log.partitions[p][o].timestamp for p, o in seen]
    assert times == sorted(times, reverse=True)
    assert len(seen) == len(stamps)


def test_a_page_reads_only_what_it_needs_and_a_sku_only_its_partition() -> None:
    alert_log = MemoryAlertLog()
    for i in range(100):
        alert_log.append(SKUS[i % len(SKUS)], "LOW_STOCK", i)
    page = alert_page(alert_log, first_ranges(alert_log, AlertFilter()), AlertFilter(), 5, 10, 50)
    assert len(page.items) == 5
    # one chunk of each partition at its end, and nothing more
    assert alert_log.reads == [
        {p: (len(r) - 10, len(r)) for p, r in alert_log.partitions.items() if r}
    ]
    alert_log.reads.clear()
    wanted = AlertFilter(sku="SKU-C")
    page = alert_page(alert_log, first_ranges(alert_log, wanted), wanted, 5, 10, 50)
    assert {item["sku"] for item in page.items} == {"SKU-C"}
    partition = murmur2_partition(b"SKU-C", ALERT_PARTITIONS)
    assert {p for read in alert_log.reads for p in read} == {partition}


def test_a_filter_that_matches_little_stops_at_its_budget_and_goes_on_from_there() -> None:
    alert_log = MemoryAlertLog()
    alert_log.append("SKU-A", "OVERSELL", 1)
    for i in range(30):
        alert_log.append("SKU-A", "LOW_STOCK", 2 + i)
    wanted = AlertFilter(type="OVERSELL")
    page = alert_page(alert_log, first_ranges(alert_log, wanted), wanted, 5, 10, 20)
    assert (page.items, page.scanned) == ([], 20)
    assert page.remaining is not None
    page = alert_page(alert_log, page.remaining, wanted, 5, 10, 20)
    assert [item["type"] for item in page.items] == ["OVERSELL"]
    assert page.remaining is None


def test_the_type_header_spares_decoding() -> None:
    alert_log = MemoryAlertLog()
    record = alert_log.append("SKU-A", "LOW_STOCK", 1)
    # a record whose bytes say otherwise: the header is believed, the record is not decoded
    alert_log.partitions[record.partition][0] = LoggedAlert(
        record.partition, 0, 1, record.key, "LOW_STOCK", b"not avro"
    )
    wanted = AlertFilter(type="OVERSELL")
    page = alert_page(alert_log, first_ranges(alert_log, wanted), wanted, 5, 10, 20)
    assert page.items == []


@pytest.mark.parametrize("since", [0, 5, 99])
def test_since_starts_each_partition_at_its_first_alert_at_or_after_it(since: int) -> None:
    alert_log = MemoryAlertLog()
    for i in range(10):
        alert_log.append("SKU-A", "LOW_STOCK", i * 10)
    ranges = first_ranges(alert_log, AlertFilter(since=since))
    partition = murmur2_partition(b"SKU-A", ALERT_PARTITIONS)
    first = next((i for i in range(10) if i * 10 >= since), 10)
    assert ranges[partition] == (first, 10)
