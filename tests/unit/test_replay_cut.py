"""The replay's cut: per SKU, exactly the input the live row had folded, so a replay under
traffic stands where the live table stands."""

from __future__ import annotations

from collections.abc import Sequence

from builders import TOPOLOGY, ev, reserve
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.codec.events import encode_event
from stocksync.codec.reservations import encode_command
from stocksync.codec.rows import row_to_bytes
from stocksync.domain.events import EventKind, InventoryEvent
from stocksync.domain.reservations import ReservationCommand
from stocksync.domain.state import SkuRow
from stocksync.replay import LogRecord, interleave, replay_records
from stocksync.replay_cut import ReplayCut, RowPosition, cut_of

STOCK, SALE, COMMANDS = "stock-events", "sale-events", "reservation-commands"


def record(topic: str, offset: int, item: InventoryEvent | ReservationCommand) -> LogRecord:
    value = encode_command(item) if isinstance(item, ReservationCommand) else encode_event(item)
    timestamp = item.issued_at if isinstance(item, ReservationCommand) else item.occurred_at
    return LogRecord(topic, 0, offset, timestamp, item.sku.encode(), value)


def log(topic: str, items: Sequence[InventoryEvent | ReservationCommand]) -> list[LogRecord]:
    return [record(topic, offset, item) for offset, item in enumerate(items)]


def replayed(
    streams: list[list[LogRecord]], cut: ReplayCut | None = None
) -> tuple[SkuRow | None, int]:
    left_out: list[LogRecord] = []
    rows = replay_records(interleave(streams), TOPOLOGY, 1, cut=cut, on_left_out=left_out.append)
    return rows.get("SKU-1"), len(left_out)


def test_an_event_is_inside_up_to_the_rows_sequence_of_its_stream() -> None:
    cut = ReplayCut(rows={"SKU-1": RowPosition({"wms": 5, "web|sale": 2})})
    assert cut.includes(STOCK, 0, 99, ev("RECEIVED", seq=5, source="wms"))
    assert not cut.includes(STOCK, 0, 99, ev("RECEIVED", seq=6, source="wms"))
    # the sale stream of the same source is another stream, with its own position
    assert cut.includes(SALE, 0, 99, ev("SOLD", seq=2, source="web"))
    assert not cut.includes(SALE, 0, 99, ev("SOLD", seq=3, source="web"))
    # a stream the row never saw, and a SKU with no live row, have folded nothing
    assert not cut.includes(STOCK, 0, 99, ev("RECEIVED", seq=1, source="erp"))
    assert not cut.includes(STOCK, 0, 0, ev("RECEIVED", seq=1, sku="SKU-2"))


def test_a_command_is_inside_up_to_the_rows_command_offset() -> None:
    cut = ReplayCut(rows={"SKU-1": RowPosition({}, command_offset=7)})
    assert cut.includes(COMMANDS, 0, 7, reserve(1))
    assert not cut.includes(COMMANDS, 0, 8, reserve(1))


def test_everything_the_worker_committed_is_inside_whatever_the_row_says() -> None:
    # a row that is behind (a lost update) must not move the cut back with it
    cut = ReplayCut(rows={"SKU-1": RowPosition({"wms": 1})}, committed={(STOCK, 0): 10})
    assert cut.includes(STOCK, 0, 9, ev("RECEIVED", seq=4, source="wms"))
    assert not cut.includes(STOCK, 0, 10, ev("RECEIVED", seq=5, source="wms"))
    assert cut.includes(STOCK, 0, 3, ev("RECEIVED", seq=1, sku="SKU-2"))
    assert not cut.includes(SALE, 0, 3, ev("SOLD", seq=1, source="web"))  # another partition


def test_a_live_row_behind_its_committed_input_differs_from_the_replay() -> None:
    stock = log(STOCK, [ev("RECEIVED", 5, seq=1), ev("RECEIVED", 3, seq=2)])
    stale, _ = replayed([stock[:1]])
    assert stale is not None
    full, _ = replayed([stock])
    # cut at the stale row alone: the replay agrees with it (that is why commits count too)
    assert replayed([stock], cut_of({"SKU-1": stale}))[0] == stale
    committed = {(STOCK, 0): 2}
    assert replayed([stock], cut_of({"SKU-1": stale}, committed))[0] == full


def test_a_redelivered_lower_sequence_after_the_cut_is_inside_and_changes_nothing() -> None:
    # given a live row that folded seq 1 and 5, and then a straggler with seq 3 in the log
    items = [ev("RECEIVED", 2, seq=1, at=1), ev("RECEIVED", 4, seq=5, at=2)]
    items.append(ev("RECEIVED", 100, seq=3, at=3))
    live, _ = replayed([log(STOCK, items[:2])])
    assert live is not None
    # then the replay at the row's cut folds it (a duplicate) and is the row
    row, left_out = replayed([log(STOCK, items)], cut_of({"SKU-1": live}))
    assert row == live and left_out == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["wms", "erp"]), st.integers(1, 9)), max_size=12),
    st.lists(
        st.tuples(st.sampled_from(["web", "pos"]), st.sampled_from(["SOLD", "RESERVED"])),
        max_size=12,
    ),
    st.lists(st.integers(1, 4), max_size=6),
    st.data(),
)
def test_a_replay_at_the_live_rows_cut_is_the_live_row_byte_for_byte(
    receipts: list[tuple[str, int]],
    sales: list[tuple[str, str]],
    holds: list[int],
    data: st.DataObject,
) -> None:
    # given a log of stock events, sale events and reservation commands for one SKU, stamped
    # so that the timestamp order interleaves them
    stock = [
        ev("RECEIVED", qty, seq=10 + i, source=source, at=1_000 + 3 * i)
        for i, (source, qty) in enumerate(receipts)
    ]
    sale = [
        ev(kind, 1, seq=10 + i, source=source, at=1_001 + 3 * i)
        for i, (source, kind) in enumerate(sales)
    ]
    commands = [reserve(qty, f"r-{i}", at=1_002 + 3 * i, ttl=10**9) for i, qty in enumerate(holds)]
    streams = [log(STOCK, stock), log(SALE, sale), log(COMMANDS, commands)]
    # and a worker that has folded some prefix of each topic (it fetched them at its own pace)
    folded = [data.draw(st.integers(0, len(s)), label=f"folded {s[:1]}") for s in streams]
    live, _ = replayed([s[:n] for s, n in zip(streams, folded, strict=True)])
    if live is None:
        return
    # when the whole log is replayed at the live row's cut
    row, left_out = replayed(streams, cut_of({"SKU-1": live}))
    # then it is the live row, and what the worker had not folded yet was left out
    assert row is not None and row_to_bytes(row) == row_to_bytes(live)
    assert left_out == sum(len(s) - n for s, n in zip(streams, folded, strict=True))


def test_without_a_cut_the_whole_log_is_replayed() -> None:
    stock = log(STOCK, [ev(EventKind.RECEIVED, 5, seq=1), ev(EventKind.RECEIVED, 3, seq=2)])
    row, left_out = replayed([stock])
    assert row is not None and row.locations["dc-1"].on_hand == 8 and left_out == 0
