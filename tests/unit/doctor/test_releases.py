"""metadata.version levels to Kafka releases."""

from __future__ import annotations

from stocksync.doctor.releases import LAST_KNOWN, release_of


def test_levels_map_to_their_release() -> None:
    assert release_of(7) == (3, 3)
    assert release_of(21) == (3, 9)
    assert release_of(25) == (4, 0)  # 4.0-IV3
    assert release_of(30) == (4, 3)  # what Kafka 4.3.1 supports


def test_below_kraft_there_is_no_release_and_past_the_table_the_newest_known() -> None:
    assert release_of(6) is None
    assert release_of(99) == LAST_KNOWN
