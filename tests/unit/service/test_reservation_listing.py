"""Reservations listed from the rows' holds (held, confirmed) and the index's ended entries
(released, expired, cancelled, fulfilled), in one order: live ones by SKU then id, then ended
ones by id. Paging through, any way, yields each matching reservation exactly once."""

from __future__ import annotations

from builders import ev
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.domain.events import EventKind as K
from stocksync.domain.reservations import ReservationReply
from stocksync.service.listings import Position, merge_slices
from stocksync.service.reservation_listing import (
    STATUSES,
    LiveReservation,
    Reservation,
    ReservationFilter,
    reservation_slice,
)

from .listing_support import FATES, ListingTables, split
from .support import PARTITIONS

SKUS = ("SKU-A", "SKU-B", "SKU-C", "SKU-D")  # partitions 6, 4, 0, 3


def described(item: Reservation) -> tuple[str, str, str, str]:
    """(reservation id, sku, channel, status) of a listed reservation."""
    if isinstance(item, LiveReservation):
        return (item.reservation_id, item.sku, item.hold.channel, item.hold.status.lower())
    assert isinstance(item, ReservationReply)
    return (item.reservation_id, item.sku, item.channel, item.status.lower())


def page_through(
    built: ListingTables,
    workers: list[list[int]],
    wanted: ReservationFilter,
    limit: int,
    budget: int,
) -> list[Reservation]:
    after: Position | None = None
    seen: list[Reservation] = []
    for _ in range(1000):
        page = merge_slices(
            (
                reservation_slice(built.tables.store, parts, wanted, after, limit, budget)
                for parts in workers
            ),
            limit,
        )
        assert len(page.items) <= limit
        seen.extend(page.items)
        if page.next is None:
            return seen
        assert after is None or page.next > after, "a page must move on"
        after = page.next
    raise AssertionError("paging did not end")


RESERVATIONS = st.lists(
    st.tuples(
        st.sampled_from(SKUS),
        st.sampled_from(sorted(FATES)),
        st.sampled_from(["web", "marketplace"]),
    ),
    max_size=14,
)


@settings(max_examples=40, deadline=None)
@given(
    reservations=RESERVATIONS,
    workers=st.integers(1, 3),
    order=st.permutations(range(PARTITIONS)),
    limit=st.integers(1, 5),
    budget=st.integers(1, 5),
    status=st.none() | st.sampled_from(STATUSES),
    channel=st.none() | st.just("web"),
    sku=st.none() | st.sampled_from(SKUS),
)
def test_paging_yields_every_matching_reservation_once_live_then_ended(
    reservations: list[tuple[str, str, str]],
    workers: int,
    order: list[int],
    limit: int,
    budget: int,
    status: str | None,
    channel: str | None,
    sku: str | None,
) -> None:
    built = ListingTables.stocked(dict.fromkeys(SKUS, 1000))
    made = []
    for i, (on, fate, sold_by) in enumerate(reservations):
        rid = f"r-{i:02d}"
        built.reservation(on, rid, fate, channel=sold_by)
        made.append((rid, on, sold_by, fate))
    seen = page_through(
        built, split(order, workers), ReservationFilter(channel, sku, status), limit, budget
    )
    wanted = [
        r
        for r in made
        if (status is None or r[3] == status)
        and (channel is None or r[2] == channel)
        and (sku is None or r[1] == sku)
    ]
    live = sorted((r for r in wanted if r[3] in ("held", "confirmed")), key=lambda r: (r[1], r[0]))
    ended = sorted((r for r in wanted if r[3] not in ("held", "confirmed")), key=lambda r: r[0])
    assert [described(item) for item in seen] == [*live, *ended]


def test_a_fulfilled_reservation_is_listed_as_ended_with_the_event_that_shipped_it() -> None:
    built = ListingTables.stocked({"SKU-A": 10})
    built.reservation("SKU-A", "order-1", "confirmed", qty=2)
    built.tables.fold(built.log.event(ev(K.FULFILLED, 2, sku="SKU-A", reservation="order-1")))
    [listed] = reservation_slice(
        built.tables.store, range(PARTITIONS), ReservationFilter(), None, 10, 100
    ).items
    position, item = listed
    assert position == ("1", "order-1", "")
    assert isinstance(item, ReservationReply)
    assert (item.status.lower(), item.sku, item.channel) == ("fulfilled", "SKU-A", "web")


def test_a_budget_spent_on_live_holds_covers_them_all_before_any_ended_one() -> None:
    built = ListingTables.stocked({"SKU-A": 10, "SKU-B": 10})
    built.reservation("SKU-A", "a-1", "held")
    built.reservation("SKU-B", "b-1", "released")
    # given a budget of two rows, both read for their holds
    found = reservation_slice(
        built.tables.store, range(PARTITIONS), ReservationFilter(), None, 10, 2
    )
    # then the slice holds the live one and covers every row, nothing ended yet
    assert [at for at, _ in found.items] == [("0", "SKU-A", "a-1")]
    assert found.covered == ("1", "", "")
