"""The batching transport's consumer, on faust's own commit arithmetic."""

from __future__ import annotations

import asyncio

from faust.types import TP

from stocksync.streams.batch_transport import BatchingApp, BatchingConsumer


def committed_after_batches(
    batches: list[tuple[int, int]], commit_every: int = 1
) -> list[int | None]:
    """Drive the consumer as faust's fetch loop does for one batch message per fetch (the
    message's offset is the batch's last record's): record the gap since the previous
    message, ack the message, and every `commit_every` batches commit where faust would."""
    app = BatchingApp("batch-transport-test", broker="stocksync-kafka://127.0.0.1:1")
    consumer = app.consumer
    assert isinstance(consumer, BatchingConsumer)
    tp = TP("input", 0)
    consumer._committed_offset[tp] = None
    commits: list[int | None] = []

    async def run() -> None:
        read: int | None = None
        for i, (_first, last) in enumerate(batches, 1):
            if read is not None and last - read > 1:
                await consumer._add_gap(tp, read + 1, last)  # as _drain_messages calls it
            read = last
            consumer._acked[tp].append(last)  # what ack() records
            consumer._acked_index[tp].add(last)
            if i % commit_every:
                continue
            new = consumer._new_offset(tp)
            if new is not None:
                consumer._committed_offset[tp] = new - 1
            commits.append(new)

    asyncio.run(run())
    return commits


def test_each_acked_batch_moves_the_commit_to_its_end() -> None:
    batches = [(i * 10, i * 10 + 9) for i in range(20)]
    # the commit follows every batch: the offset after its last record
    assert committed_after_batches(batches) == [last + 1 for _, last in batches]


def test_a_periodic_commit_goes_to_the_end_of_every_batch_acked_since_the_last() -> None:
    # faust commits every commit_interval, many batches at a time; before the fix each commit
    # advanced by one batch only (10, 20, 30, 40 here)
    batches = [(i * 10, i * 10 + 9) for i in range(20)]
    assert committed_after_batches(batches, commit_every=5) == [50, 100, 150, 200]


def test_a_single_record_batch_after_a_big_one_is_committed_too() -> None:
    assert committed_after_batches([(0, 0), (1, 499), (500, 500), (501, 502)]) == [
        1,
        500,
        501,
        503,
    ]
