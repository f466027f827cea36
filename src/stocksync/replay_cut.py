"""Where `stocksync replay` stops, SKU by SKU: the input positions the live row had folded.

Under traffic the live table is always a few records ahead of any replay that stops at a fixed
offset, so comparing both at "the end of the log" reports a difference that is only timing.
Instead the replay folds, for each SKU, exactly the records its live row says it has folded:

- an event whose `source_seq` is at or below the row's `sources[dedupe_key(event)]`;
- a reservation command at or below the row's `command_offset`;
- and every record below the worker group's committed offset of its partition.

Why this cut and not "replay to the end, compare only SKUs whose row is at the same position":
that alternative never compares a SKU that is busy (its row moves on while the replay reads),
which under steady traffic are the SKUs that matter most, and it cannot tell a row that is
behind from a row that is wrong. The per-row cut is exact for every SKU:

- A dedupe stream (one source's stock or sale events of one SKU) lives on one partition of one
  topic, and the worker folds a partition in offset order. So a row whose highest applied
  sequence of a stream is S has folded every record of that stream up to the one carrying S;
  a later record with a sequence at or below S was, or will be, a duplicate (it changes nothing
  either way), and one above S has not been folded. The same holds for commands, which are all
  on one topic and ordered by offset.
- The row's own positions could be wrong too (a lost update leaves a row that is old but
  consistent with itself). The committed offsets catch that: the worker commits an input offset
  only after Kafka has acknowledged every changelog record its batch wrote, so any record below
  the committed offset must be inside the row. Folding it in makes a row that is behind show up
  as a difference (its sources, revision and quantities), never as SAME.

The reading order makes both bounds safe: the committed offsets are read first, then the
changelog's end, then the input topics' ends (`replay.plan_replay`). Every changelog row read
was written after its input was in Kafka, and every committed record's row is in the changelog
read, so the input read always contains what the rows and the commits claim.

Pure: plain rows and offsets in, a decision per record out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stocksync.domain.events import InventoryEvent
from stocksync.domain.fold import dedupe_key
from stocksync.domain.reservations import ReservationCommand
from stocksync.domain.state import SkuRow


@dataclass(frozen=True, slots=True)
class RowPosition:
    """What one live row says it has folded."""

    sources: Mapping[str, int]  # dedupe stream -> highest source_seq applied
    command_offset: int = -1  # offset of the last reservation command applied

    @classmethod
    def of(cls, row: SkuRow) -> RowPosition:
        return cls(dict(row.sources), row.command_offset)


@dataclass(frozen=True, slots=True)
class ReplayCut:
    """The records a replay folds to stand where the live table stands."""

    rows: Mapping[str, RowPosition] = field(default_factory=dict)  # SKU -> its live row's
    # (input topic, partition) -> the worker group's committed offset (the next to fold)
    committed: Mapping[tuple[str, int], int] = field(default_factory=dict)

    def includes(
        self,
        topic: str,
        partition: int,
        offset: int,
        decoded: InventoryEvent | ReservationCommand,
    ) -> bool:
        if offset < self.committed.get((topic, partition), 0):
            return True
        position = self.rows.get(decoded.sku)
        if position is None:
            return False
        if isinstance(decoded, ReservationCommand):
            return offset <= position.command_offset
        return decoded.source_seq <= position.sources.get(dedupe_key(decoded), -1)


def cut_of(
    live: Mapping[str, SkuRow], committed: Mapping[tuple[str, int], int] | None = None
) -> ReplayCut:
    """The cut of a live table (SKU -> its row) and the worker's committed input offsets."""
    return ReplayCut(
        rows={sku: RowPosition.of(row) for sku, row in live.items()},
        committed=dict(committed or {}),
    )
