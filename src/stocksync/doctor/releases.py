"""Which Kafka release a `metadata.version` feature level belongs to.

From Kafka's own table (org.apache.kafka.server.common.MetadataVersion, kafka-server-common
4.3.1): each release added levels, so a broker's highest supported level names its release and
the cluster's finalized level names the release whose metadata format is in force.
"""

from __future__ import annotations

# (first level of the release, release), ascending
FIRST_LEVELS: tuple[tuple[int, tuple[int, int]], ...] = (
    (7, (3, 3)),  # 3.3-IV3: the first production KRaft level
    (8, (3, 4)),
    (9, (3, 5)),
    (12, (3, 6)),
    (15, (3, 7)),
    (20, (3, 8)),
    (21, (3, 9)),
    (22, (4, 0)),
    (26, (4, 1)),
    (28, (4, 2)),
    (30, (4, 3)),
    (31, (4, 4)),  # 4.4-IV0, still unstable in 4.3.1
)
LAST_KNOWN = FIRST_LEVELS[-1][1]


def release_of(level: int) -> tuple[int, int] | None:
    """The release whose levels include `level`; None below the first KRaft level. A level
    past the table is reported as the newest release known (a newer broker is at least it)."""
    found = None
    for first, release in FIRST_LEVELS:
        if level >= first:
            found = release
    return found


def shown(release: tuple[int, int]) -> str:
    return f"{release[0]}.{release[1]}"
