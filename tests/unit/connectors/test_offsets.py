"""Which projection offsets a connector may commit: never past an unacknowledged value."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.connectors.offsets import OffsetTracker


def test_nothing_held_commits_past_the_last_message_read() -> None:
    t = OffsetTracker()
    t.read(0, 0)
    t.read(0, 1)
    assert t.positions() == {0: 2}


def test_the_oldest_unacknowledged_message_stops_the_commit() -> None:
    # given a value at offset 3 not yet acknowledged and later messages of other SKUs done
    t = OffsetTracker()
    t.read(0, 2)
    t.hold(0, 3, "A", (1, 1))
    t.hold(0, 4, "B", (1, 1))
    t.read(0, 5)
    t.release("B", (1, 1))
    # then a restart must read offset 3 again
    assert t.positions() == {0: 3}
    # when A is acknowledged
    t.release("A", (1, 1))
    assert t.positions() == {0: 6}


def test_a_newer_acknowledged_version_releases_the_values_it_replaced() -> None:
    t = OffsetTracker()
    t.hold(1, 10, "A", (1, 1))
    t.hold(1, 11, "A", (2, 1))
    t.hold(1, 12, "A", (3, 1))
    assert t.release("A", (2, 1)) == 2
    assert t.positions() == {1: 12}


def test_only_moved_positions_are_committed_again() -> None:
    t = OffsetTracker()
    t.read(0, 0)
    t.committed(t.to_commit())
    assert t.to_commit() == {}
    t.read(0, 1)
    assert t.to_commit() == {0: 2}


def test_a_revoked_partition_is_forgotten() -> None:
    t = OffsetTracker()
    t.hold(0, 1, "A", (1, 1))
    t.hold(1, 1, "B", (1, 1))
    t.forget(0)
    assert t.positions() == {1: 1}
    assert t.held() == 1


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("ABCD"), st.booleans(), st.integers(0, 3)),
        min_size=1,
        max_size=60,
    ),
    st.data(),
)
def test_a_commit_never_passes_a_message_whose_value_is_not_acknowledged(
    messages: list[tuple[str, bool, int]], data: st.DataObject
) -> None:
    # given messages on one partition, some for this channel with increasing versions per SKU
    t = OffsetTracker()
    version: dict[str, int] = {}
    held: list[tuple[int, str, int]] = []
    for offset, (sku, mine, step) in enumerate(messages):
        if mine:
            version[sku] = version.get(sku, 0) + step
            t.hold(0, offset, sku, (version[sku], 1))
            held.append((offset, sku, version[sku]))
        else:
            t.read(0, offset)
    # when some SKUs get some version acknowledged
    acked: dict[str, int] = {}
    for sku in data.draw(st.lists(st.sampled_from(sorted(version) or ["A"]), max_size=4)):
        if sku in version:
            v = data.draw(st.integers(0, version[sku]))
            t.release(sku, (v, 1))
            acked[sku] = max(v, acked.get(sku, -1))
    # then every message before the committed position is acknowledged
    position = t.positions()[0]
    for offset, sku, v in held:
        if offset < position:
            assert v <= acked.get(sku, -1)
