"""The batch fold over the memory adapters: input records in, rows written, outputs sent.
One behaviour per test, given / when / then; no Kafka."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from itertools import pairwise

import pytest
from builders import OUTSIDE, SKU, TOPOLOGY, ev, reserve, stock
from builders import command as reservation_command
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.codec.outputs import decode_dead_letter, projection_key
from stocksync.codec.rows import row_to_bytes
from stocksync.domain.events import ABSOLUTE_KINDS, RETURN_NOT_RESTOCKABLE, InventoryEvent
from stocksync.domain.events import EventKind as K
from stocksync.domain.fold import apply_event
from stocksync.domain.reservations import ReplyStatus
from stocksync.domain.state import Published, SkuRow, channel_atp
from stocksync.service.batch_fold import ANSWER_PREFIX, ENDED_PREFIX, MAX_RECORD_BYTES
from stocksync.service.ports import Table

from .support import (
    PARTITIONS,
    SPREAD_SKUS,
    TOPICS,
    InputLog,
    Record,
    Tables,
    dead_letters,
    partition_of,
    projections,
    quantities,
    replies,
)

# --- duplicates and redelivery ------------------------------------------------------------


def test_an_event_twice_in_one_batch_changes_the_row_once() -> None:
    # given a receipt delivered twice within one batch
    tables, log = Tables(), InputLog()
    receipt = ev(K.RECEIVED, 10)
    # when the batch is folded
    sink = tables.fold(log.event(receipt), log.event(receipt))
    # then the units are counted once, one revision, one history record
    assert stock(tables.row()).on_hand == 10
    assert tables.row().revision == 1
    assert [t for t, *_ in sink.changelog].count(Table.HISTORY) == 1
    assert (tables.ctx.counters["applied"], tables.ctx.counters["duplicates"]) == (1, 1)


def test_an_event_in_two_batches_changes_the_row_once() -> None:
    # given a sale folded in one batch
    tables, log = Tables(), InputLog()
    sale = ev(K.SOLD, 2, source="pos")
    tables.fold(log.event(ev(K.RECEIVED, 10)), log.event(sale))
    before = tables.row_bytes()
    # when the same sale comes again in a later batch
    sink = tables.fold(log.event(sale))
    # then the row is what it was and no history record is added
    assert tables.row_bytes() == before
    assert stock(tables.row()).on_hand == 8
    assert [t for t, *_ in sink.changelog] == [Table.ROWS]


def test_a_redelivered_batch_leaves_every_row_byte_for_byte_equal() -> None:
    # given a batch over several SKUs, folded
    tables, log = Tables(), InputLog()
    batch = [
        log.event(ev(K.RECEIVED, 10, sku="SKU-A")),
        log.event(ev(K.RECEIVED, 4, loc="store-1", sku="SKU-B")),
        log.event(ev(K.SOLD, 3, loc="store-1", source="pos", sku="SKU-B")),
        log.event(ev(K.RESERVED, 2, source="web", sku="SKU-C")),
    ]
    tables.fold(*batch)
    tables_before = copy.deepcopy(tables.store.data)
    # when the very same records are delivered again (a crash before the commit)
    tables.fold(*batch)
    # then every table is byte for byte what it was
    assert tables.store.data == tables_before


def test_a_redelivered_batch_sends_the_rows_and_current_channel_quantities_again() -> None:
    # given a batch whose outputs may have died with the process that folded it
    tables, log = Tables(), InputLog()
    batch = [
        log.event(ev(K.RECEIVED, 10, sku="SKU-A")),
        log.event(ev(K.SOLD, 1, source="pos", sku="SKU-A")),
        log.event(ev(K.RECEIVED, 5, loc="store-1", sku="SKU-B")),
    ]
    first = tables.fold(*batch)
    # when it is redelivered
    again = tables.fold(*batch)
    # then each row's changelog record and each channel's current quantity is sent again
    rows_sent = {key: value for table, _, key, value in again.changelog if table is Table.ROWS}
    assert rows_sent == {b"SKU-A": tables.row_bytes("SKU-A"), b"SKU-B": tables.row_bytes("SKU-B")}
    assert sorted(quantities(again)) == sorted(quantities(first))
    assert sorted(quantities(again)) == [
        ("marketplace", "SKU-A", 8),  # 9 - 10% (0) - 1 unit
        ("pos-store-1", "SKU-B", 5),
        ("web", "SKU-A", 9),
        ("web", "SKU-B", 5),
    ]
    # and nothing is appended to the history again
    assert not [t for t, *_ in again.changelog if t is not Table.ROWS]


def test_a_redelivered_event_resends_the_quantities_under_the_current_revision() -> None:
    tables, log = Tables(), InputLog()
    receipt = log.event(ev(K.RECEIVED, 10))
    tables.fold(receipt, log.event(ev(K.SOLD, 1, source="pos")))
    # when only the first event of that batch comes again
    sink = tables.fold(receipt)
    # then the quantities re-sent are today's, not the ones that event first caused
    assert {(p.channel, p.quantity, p.revision) for p in projections(sink)} == {
        ("web", 9, 2),
        ("marketplace", 8, 2),
    }


# --- several SKUs, several partitions -----------------------------------------------------


def many_skus_batch(log: InputLog) -> list[Record]:
    """Events of four SKUs on four partitions, interleaved, SKU-A with many events."""
    return [
        log.event(ev(K.RECEIVED, 10, sku="SKU-A")),
        log.event(ev(K.RECEIVED, 5, sku="SKU-B")),
        log.event(ev(K.SOLD, 1, source="pos", sku="SKU-A")),
        log.event(ev(K.RECEIVED, 7, loc="store-1", sku="SKU-C")),
        log.event(ev(K.SOLD, 1, source="pos", sku="SKU-A")),
        log.event(ev(K.RECEIVED, 2, loc="dc-2", sku="SKU-D")),
        log.event(ev(K.ADJUSTED, -3, reason="shrink", sku="SKU-A")),
        log.event(ev(K.SOLD, 2, source="pos", sku="SKU-B")),
    ]


def test_the_batch_spans_several_partitions() -> None:
    # the premise of the tests below: the four SKUs are on four different partitions
    assert len({partition_of(sku) for sku in SPREAD_SKUS}) == len(SPREAD_SKUS)


def test_each_row_lands_in_its_skus_partition_of_the_store() -> None:
    # given a batch over four SKUs on four partitions
    tables, log = Tables(), InputLog()
    # when it is folded
    tables.fold(*many_skus_batch(log))
    # then each row is in the ROWS store of its SKU's murmur2 partition, and only there
    where = {
        key: partition
        for (table, partition), items in tables.store.data.items()
        if table is Table.ROWS
        for key in items
    }
    assert where == {sku.encode(): partition_of(sku) for sku in SPREAD_SKUS}
    assert stock(tables.row("SKU-A")).on_hand == 5


def test_changelog_records_go_to_the_table_and_partition_of_their_sku() -> None:
    tables, log = Tables(), InputLog()
    sink = tables.fold(*many_skus_batch(log))
    for table, partition, key, value in sink.changelog:
        sku = key.split(b"\x00")[0].decode()  # history keys are <sku> NUL <slot>
        assert partition == partition_of(sku), (table, key)
        assert tables.store.get(table, partition, key) == value
    assert {(t, p) for t, p, *_ in sink.changelog} == {
        (table, partition_of(sku)) for table in (Table.ROWS, Table.HISTORY) for sku in SPREAD_SKUS
    }


def test_a_sku_with_many_events_in_a_batch_has_its_row_written_once() -> None:
    # given a batch in which SKU-A has four events, SKU-B two
    tables, log = Tables(), InputLog()
    # when it is folded
    sink = tables.fold(*many_skus_batch(log))
    # then each SKU's row is written once, in one write batch per partition
    rows_written = Counter(key for t, _, key, _ in sink.changelog if t is Table.ROWS)
    assert rows_written == {sku.encode(): 1 for sku in SPREAD_SKUS}
    row_writes = [(p, keys) for t, p, keys in tables.store.writes if t is Table.ROWS]
    assert sorted(row_writes) == sorted((partition_of(s), [s.encode()]) for s in SPREAD_SKUS)


def test_two_skus_of_one_partition_share_its_write_batch() -> None:
    # SKU-1 and SKU-B are both on partition 4
    assert partition_of(SKU) == partition_of("SKU-B")
    tables, log = Tables(), InputLog()
    tables.fold(log.event(ev(K.RECEIVED, 1)), log.event(ev(K.RECEIVED, 2, sku="SKU-B")))
    assert [(p, keys) for t, p, keys in tables.store.writes if t is Table.ROWS] == [
        (partition_of(SKU), [SKU.encode(), b"SKU-B"])
    ]


def test_each_applied_event_appends_one_history_record() -> None:
    # given a batch of eight events, one of them delivered twice
    tables, log = Tables(), InputLog()
    batch = many_skus_batch(log)
    # when it is folded with the duplicate
    sink = tables.fold(*batch, batch[2])
    # then one history record per applied event, in its SKU's partition
    history = Counter(
        key.split(b"\x00")[0] for t, _, key, _ in sink.changelog if t is Table.HISTORY
    )
    assert history == {b"SKU-A": 4, b"SKU-B": 2, b"SKU-C": 1, b"SKU-D": 1}


# --- admission inside a batch -------------------------------------------------------------

BadInput = Callable[[InputLog], Record]


def undecodable_bytes(log: InputLog) -> Record:
    return log.raw(TOPICS.stock_events, partition_of(SKU), SKU.encode(), b"\x01not avro")


def key_not_the_sku(log: InputLog) -> Record:
    record = log.event(ev(K.RECEIVED, 100))
    return log.raw(record.topic, partition_of("SKU-2"), b"SKU-2", record.value)


def wrong_partition(log: InputLog) -> Record:
    record = log.event(ev(K.RECEIVED, 100))
    return log.raw(record.topic, (record.partition + 1) % PARTITIONS, record.key, record.value)


def over_long_reason(log: InputLog) -> Record:
    return log.event(ev(K.ADJUSTED, 100, reason="x" * 300))


@pytest.mark.parametrize(
    ("bad_input", "error", "says"),
    [
        (undecodable_bytes, "undecodable", "expected 0x00 (Confluent wire format header)"),
        (key_not_the_sku, "key_mismatch", "message key b'SKU-2' is not the message's sku"),
        (wrong_partition, "wrong_partition", "set partitioner=murmur2_random"),
        (over_long_reason, "invalid", "reason is 300 characters, the limit is 256"),
    ],
)
def test_a_rejected_input_is_dead_lettered_and_the_inputs_around_it_are_folded(
    bad_input: BadInput, error: str, says: str
) -> None:
    # given a batch with a message that fails admission between two good ones
    tables, log = Tables(), InputLog()
    before = log.event(ev(K.RECEIVED, 5))
    bad = bad_input(log)
    after = log.event(ev(K.RECEIVED, 7))
    # when it is folded
    sink = tables.fold(before, bad, after)
    # then the bad one is on the dead-letter topic, with the error and the fix
    [letter] = dead_letters(sink)
    assert letter["error"] == error
    assert says in str(letter["reason"])
    assert (letter["topic"], letter["partition"], letter["offset"]) == (
        bad.topic,
        bad.partition,
        bad.offset,
    )
    assert (letter["original_key"], letter["original_value"]) == (bad.key, bad.value)
    assert sink.to(TOPICS.dead_letter)[0][0] == bad.key
    # and the good ones on both sides are folded
    assert stock(tables.row()).on_hand == 12
    assert tables.row().revision == 2
    assert tables.ctx.counters["dead_lettered"] == 1


def test_a_dead_letter_is_stamped_with_the_workers_clock() -> None:
    tables, log = Tables(), InputLog()
    tables.ctx.clock_ms = lambda: 1_700_000_000_000
    [letter] = dead_letters(tables.fold(undecodable_bytes(log)))
    assert letter["dead_lettered_at"] == 1_700_000_000_000


# --- projections --------------------------------------------------------------------------


def test_a_channel_quantity_is_published_once_per_batch_with_its_last_value() -> None:
    # given a batch in which the web quantity moves three times
    tables, log = Tables(), InputLog()
    batch = [
        log.event(ev(K.RECEIVED, 10)),
        log.event(ev(K.SOLD, 1, source="pos")),
        log.event(ev(K.SOLD, 2, source="pos")),
    ]
    # when it is folded
    sink = tables.fold(*batch)
    # then each channel is told once, its last value, with the batch's last revision
    assert [(p.channel, p.quantity, p.revision) for p in projections(sink)] == [
        ("web", 7, 3),
        ("marketplace", 6, 3),  # 7 - 10% (0) - 1 unit, after 9 -> 8 -> 7 raw
    ]
    assert sink.to(TOPICS.channel_atp)[0][0] == projection_key("web", SKU)


def test_nothing_is_published_for_a_quantity_that_changed_and_changed_back_in_a_batch() -> None:
    # given web told 10 in an earlier batch
    tables, log = Tables(), InputLog()
    tables.fold(log.event(ev(K.RECEIVED, 10)))
    # when a hold and its release come in one batch
    sink = tables.fold(
        log.event(ev(K.RESERVED, 3, source="web")), log.event(ev(K.RELEASED, 3, source="web"))
    )
    # then the row moves on but the channels hear nothing
    assert tables.row().revision == 3
    assert projections(sink) == []
    assert tables.row().published["web"] == Published(10, TOPOLOGY.version)


def test_a_location_outside_the_topology_publishes_nothing() -> None:
    tables, log = Tables(), InputLog()
    sink = tables.fold(log.event(ev(K.RECEIVED, 10, loc=OUTSIDE)))
    assert projections(sink) == []
    assert stock(tables.row(), OUTSIDE).on_hand == 10


# --- the batch fold is the event-by-event fold --------------------------------------------

PROPERTY = settings(max_examples=60, deadline=None)
FOLD_SKUS = ("SKU-A", "SKU-B", "SKU-C")
FOLD_LOCATIONS = ("dc-1", "dc-2", "store-1", OUTSIDE)
FOLD_SOURCES = ("wms", "pos", "web")


@st.composite
def logs(draw: st.DrawFn) -> list[InventoryEvent]:
    """A small log over three SKUs in which a step may deliver an earlier event again."""
    seqs: Counter[str] = Counter()
    events: list[InventoryEvent] = []
    for _ in range(draw(st.integers(0, 24))):
        if events and draw(st.integers(0, 5)) == 0:
            events.append(draw(st.sampled_from(events)))  # a redelivery
            continue
        kind = draw(st.sampled_from(list(K)))
        source = draw(st.sampled_from(FOLD_SOURCES))
        loc = draw(st.sampled_from(FOLD_LOCATIONS))
        size = draw(st.integers(1, 12))
        flag = draw(st.booleans())
        seqs[source] += draw(st.integers(0, 2))  # 0: same seq again, a duplicate
        if kind is K.ADJUSTED:
            quantity = size if flag else -size
        elif kind in ABSOLUTE_KINDS:
            quantity = size - 1
        else:
            quantity = size
        counterpart = None
        if kind is K.TRANSFER_OUT and flag:
            counterpart = next(other for other in FOLD_LOCATIONS if other != loc)
        events.append(
            ev(
                kind,
                quantity,
                loc=loc,
                seq=seqs[source],
                source=source,
                sku=draw(st.sampled_from(FOLD_SKUS)),
                at=draw(st.integers(0, 50_000)),
                reason=RETURN_NOT_RESTOCKABLE if kind is K.RETURNED and flag else None,
                counterpart=counterpart,
            )
        )
    return events


def split(records: list[Record], cuts: list[int]) -> list[list[Record]]:
    """The records cut into consecutive batches at the given positions."""
    bounds = sorted({0, len(records), *(min(cut, len(records)) for cut in cuts)})
    return [records[a:b] for a, b in pairwise(bounds)]


@PROPERTY
@given(events=logs(), cuts=st.lists(st.integers(0, 24), max_size=5))
def test_folding_in_batches_gives_the_rows_of_folding_event_by_event(
    events: list[InventoryEvent], cuts: list[int]
) -> None:
    # given a log, split into batches at random
    log = InputLog()
    records = [log.event(event) for event in events]
    batches = split(records, cuts)
    # when the batches are folded
    tables = Tables()
    for batch in batches:
        tables.fold(*batch)
    # then every row is, byte for byte, the one apply_event gives event by event
    expected: dict[str, SkuRow] = {}
    for event in events:
        expected[event.sku] = apply_event(expected.get(event.sku), event, TOPOLOGY).row
    assert tables.store.table(Table.ROWS) == {
        sku.encode(): row_to_bytes(row) for sku, row in expected.items()
    }


@PROPERTY
@given(events=logs(), cuts=st.lists(st.integers(0, 24), max_size=5), again=st.integers(0, 24))
def test_folding_the_log_again_in_other_batches_leaves_every_table_as_it_was(
    events: list[InventoryEvent], cuts: list[int], again: int
) -> None:
    # given a log folded in batches
    log = InputLog()
    records = [log.event(event) for event in events]
    tables = Tables()
    for batch in split(records, cuts):
        tables.fold(*batch)
    once = copy.deepcopy(tables.store.data)
    # when the whole log is delivered again, cut differently
    for batch in split(records, [again]):
        tables.fold(*batch)
    # then the rows, the history and the index are unchanged
    assert tables.store.data == once


@PROPERTY
@given(events=logs(), cuts=st.lists(st.integers(0, 24), max_size=5))
def test_the_last_quantity_published_per_channel_is_the_channels_current_quantity(
    events: list[InventoryEvent], cuts: list[int]
) -> None:
    # given a log folded in batches
    log = InputLog()
    tables = Tables()
    last: dict[tuple[str, str], int] = {}
    for batch in split([log.event(event) for event in events], cuts):
        # when the channel-atp topic is compacted (last record per key)
        for change in projections(tables.fold(*batch)):
            last[(change.channel, change.sku)] = change.quantity
    # then it holds each channel's current quantity, and all the rows remember publishing
    for (channel, sku), quantity in last.items():
        assert quantity == channel_atp(tables.row(sku), TOPOLOGY, channel), (channel, sku)
    published = {
        (channel, sku): told.quantity
        for sku in {e.sku for e in events}
        for channel, told in tables.row(sku).published.items()
    }
    assert published.items() <= last.items()


# --- reservations -------------------------------------------------------------------------


def reserved_tables() -> tuple[Tables, InputLog, list[tuple[int, str, str]]]:
    """10 units received at dc-1; every hold taken is told to the list returned."""
    tables, log = Tables(), InputLog()
    holds: list[tuple[int, str, str]] = []
    tables.ctx.on_hold = lambda at, sku, rid: holds.append((at, sku, rid))
    tables.fold(log.event(ev(K.RECEIVED, 10)))
    return tables, log, holds


def test_a_reserve_is_answered_on_the_replies_topic() -> None:
    # given 10 units
    tables, log, _ = reserved_tables()
    # when a RESERVE of 3 for 60 s is folded
    sink = tables.fold(log.command(reserve(3, "res-1", at=1_000, ttl=60_000)))
    # then its answer goes to the replies topic, keyed by the request id
    [reply] = replies(sink)
    assert (reply.request_id, reply.status, reply.quantity, reply.location) == (
        "res-1",
        ReplyStatus.HELD,
        3,
        "dc-1",
    )
    assert reply.expires_at == 61_000
    assert [key for key, _ in sink.to(TOPICS.reservation_replies)] == [b"res-1"]
    # and the hold counts as reserved, which the web channel is told
    assert stock(tables.row()).reserved == 3
    assert ("web", SKU, 7) in quantities(sink)
    assert tables.ctx.counters["commands"] == 1


def test_a_reserves_answer_is_indexed_under_its_request_id() -> None:
    tables, log, _ = reserved_tables()
    sink = tables.fold(log.command(reserve(3, "res-1", request_id="req-9")))
    [(_, sent)] = sink.to(TOPICS.reservation_replies)
    key = ANSWER_PREFIX + b"req-9"
    assert tables.store.get(Table.INDEX, partition_of(SKU), key) == sent
    assert (Table.INDEX, partition_of(SKU), key, sent) in sink.changelog


def test_a_hold_is_told_to_on_hold_with_its_expiry() -> None:
    tables, log, holds = reserved_tables()
    tables.fold(log.command(reserve(3, "res-1", at=5_000, ttl=30_000)))
    assert holds == [(35_000, SKU, "res-1")]


def test_an_extended_hold_is_told_to_on_hold_with_its_new_expiry() -> None:
    tables, log, holds = reserved_tables()
    tables.fold(log.command(reserve(3, "res-1", at=5_000, ttl=30_000)))
    tables.fold(log.command(reservation_command("EXTEND", "res-1", at=20_000, ttl=60_000)))
    assert holds == [(35_000, SKU, "res-1"), (80_000, SKU, "res-1")]


def test_a_rejected_reserve_takes_no_hold() -> None:
    tables, log, holds = reserved_tables()
    sink = tables.fold(log.command(reserve(11, "res-1")))
    assert [r.status for r in replies(sink)] == [ReplyStatus.REJECTED]
    assert holds == []
    assert stock(tables.row()).reserved == 0


def test_a_released_reservation_is_indexed_as_ended() -> None:
    tables, log, _ = reserved_tables()
    tables.fold(log.command(reserve(3, "res-1")))
    sink = tables.fold(log.command(reservation_command("RELEASE", "res-1")))
    [(_, sent)] = sink.to(TOPICS.reservation_replies)
    assert replies(sink)[0].status is ReplyStatus.RELEASED
    assert tables.store.get(Table.INDEX, partition_of(SKU), ENDED_PREFIX + b"res-1") == sent
    assert stock(tables.row()).reserved == 0
    assert ("web", SKU, 10) in quantities(sink)


def test_a_retried_reserve_gets_the_same_answer_and_no_second_hold() -> None:
    # given a RESERVE answered HELD
    tables, log, holds = reserved_tables()
    first = tables.fold(log.command(reserve(3, "res-1")))
    # when the client retries it (a new record with the same request id)
    retry = tables.fold(log.command(reserve(3, "res-1")))
    # then the answer is the same bytes, and there is still one hold of 3
    assert retry.to(TOPICS.reservation_replies) == first.to(TOPICS.reservation_replies)
    assert stock(tables.row()).reserved == 3
    assert len(holds) == 1
    assert tables.ctx.counters["commands"] == 1


def test_a_redelivered_reserve_changes_nothing_and_is_answered_again() -> None:
    tables, log, holds = reserved_tables()
    command = log.command(reserve(3, "res-1"))
    first = tables.fold(command)
    row = tables.row_bytes()
    again = tables.fold(command)
    assert tables.row_bytes() == row
    assert again.to(TOPICS.reservation_replies) == first.to(TOPICS.reservation_replies)
    assert len(holds) == 1


def test_a_redelivered_reserve_sends_the_channel_quantities_it_changed_again() -> None:
    # given a RESERVE folded, its outputs lost with the process (web 10 -> 7)
    tables, log, _ = reserved_tables()
    command = log.command(reserve(3, "res-1"))
    first = tables.fold(command)
    assert ("web", SKU, 7) in quantities(first)
    # when it is redelivered after the restart
    again = tables.fold(command)
    # then the row's changelog record and web's 7 are sent again, as for a redelivered event
    assert ("web", SKU, 7) in quantities(again)
    assert [(t, key) for t, _, key, _ in again.changelog if t is Table.ROWS] == [
        (Table.ROWS, SKU.encode())
    ]


def test_a_redelivered_command_resends_only_the_channels_the_row_has_published() -> None:
    # given a SKU stocked at dc-1 only: web and marketplace told, pos-store-1 never
    tables, log, _ = reserved_tables()
    command = log.command(reserve(3, "res-1"))
    tables.fold(command)
    assert set(tables.row().published) == {"web", "marketplace"}
    # when the RESERVE is redelivered
    again = tables.fold(command)
    # then only the channels the row remembers publishing are told again
    assert {channel for channel, _, _ in quantities(again)} == {"web", "marketplace"}


def test_a_command_on_an_event_topic_is_dead_lettered_and_later_commands_are_answered() -> None:
    # given 10 units, and the SKU's stock-events partition at offset 5000 (commands: 0)
    tables, log, _ = reserved_tables()
    log.next_offsets[(TOPICS.stock_events, partition_of(SKU))] = 5_000
    # when a RESERVE is written to the stock-events topic, then one to the commands topic
    stray = tables.fold(log.command(reserve(1, "stray"), topic=TOPICS.stock_events))
    sink = tables.fold(log.command(reserve(2, "res-1")))
    # then the stray one is dead-lettered, naming where commands go, and takes no hold
    [letter] = dead_letters(stray)
    assert letter["error"] == "invalid"
    assert TOPICS.reservation_commands in str(letter["reason"])
    assert replies(stray) == []
    # and its offset does not make the commands topic's next command look like a redelivery
    assert [(r.request_id, r.status) for r in replies(sink)] == [("res-1", ReplyStatus.HELD)]
    assert stock(tables.row()).reserved == 2


# --- oversized input ----------------------------------------------------------------------

HUGE = 1_200_000


def huge_undecodable(log: InputLog) -> Record:
    return log.raw(TOPICS.stock_events, partition_of(SKU), SKU.encode(), b"\x01" + bytes(HUGE))


def huge_reason(log: InputLog) -> Record:
    return log.event(ev(K.ADJUSTED, 1, reason="r" * HUGE))


@pytest.mark.parametrize(
    ("huge_input", "error"), [(huge_undecodable, "undecodable"), (huge_reason, "invalid")]
)
def test_an_oversized_input_is_dead_lettered_cut_to_fit_one_record(
    huge_input: BadInput, error: str
) -> None:
    # given a message of about 1.2 MB that cannot be folded
    tables, log = Tables(), InputLog()
    record = huge_input(log)
    assert record.value is not None and len(record.value) > HUGE
    # when it is folded
    sink = tables.fold(record)
    # then its dead letter fits one record and says that the original was cut
    [(key, encoded)] = sink.to(TOPICS.dead_letter)
    assert len(encoded) <= MAX_RECORD_BYTES
    assert len(key or b"") + len(encoded) <= MAX_RECORD_BYTES
    letter = decode_dead_letter(encoded)
    assert letter["error"] == error
    reason = str(letter["reason"])
    assert "cut to fit one record" in reason
    assert f"{len(SKU)} + {len(record.value)} bytes" in reason
    assert len(reason) < 1_000  # the value is never quoted in the reason
    assert letter["original_key"] == SKU.encode()
    assert record.value.startswith(letter["original_value"])


def test_an_oversized_input_with_a_long_key_is_dead_lettered_within_one_record() -> None:
    # given a 1.2 MB message whose key is 5 KB (librdkafka refuses a record over
    # message.max.bytes, key included, at produce(): the worker would stop on it for good)
    tables, log = Tables(), InputLog()
    key = b"k" * 5_000
    record = log.raw(TOPICS.stock_events, partition_of(key.decode()), key, b"\x01" + bytes(HUGE))
    # when it is folded
    sink = tables.fold(record)
    # then the dead letter, its key counted too, fits one record and says what was cut
    [(sent_key, encoded)] = sink.to(TOPICS.dead_letter)
    assert len(sent_key or b"") + len(encoded) <= MAX_RECORD_BYTES
    letter = decode_dead_letter(encoded)
    assert f"5000 + {HUGE + 1} bytes" in str(letter["reason"])
    assert key.startswith(letter["original_key"])
    assert record.value is not None
    assert record.value.startswith(letter["original_value"])
