"""Which offsets of the projection topic a connector may commit.

A projection message is *held* from the moment it is read until the channel acknowledged its
value, or a newer value of the same SKU, and that acknowledgement is on the ledger topic. The
committed position of a partition is its oldest held offset (or one past the last message read
when nothing is held), so a connector killed at any point starts again at or before the first
value its channel has not acknowledged: nothing is lost. What it reads again that the ledger
already covers is skipped, so nothing is sent twice out of order.

Within a partition messages arrive in offset order, so the first held offset in insertion order
is the smallest one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stocksync.connectors.plan import Version


@dataclass
class OffsetTracker:
    _held: dict[int, dict[int, None]] = field(default_factory=dict)  # partition -> offsets
    _by_sku: dict[str, list[tuple[Version, int, int]]] = field(default_factory=dict)
    _next: dict[int, int] = field(default_factory=dict)  # partition -> last read + 1
    _committed: dict[int, int] = field(default_factory=dict)

    def read(self, partition: int, offset: int) -> None:
        """A message was read (whether or not it concerns this channel)."""
        if offset + 1 > self._next.get(partition, 0):
            self._next[partition] = offset + 1

    def hold(self, partition: int, offset: int, sku: str, version: Version) -> None:
        """This message's value is not acknowledged yet."""
        self.read(partition, offset)
        self._held.setdefault(partition, {})[offset] = None
        self._by_sku.setdefault(sku, []).append((version, partition, offset))

    def release(self, sku: str, version: Version) -> int:
        """The channel durably acknowledged `version` of `sku` (or a value superseding it):
        every held message of the SKU up to that version is done. Returns how many."""
        entries = self._by_sku.get(sku)
        if not entries:
            return 0
        keep = []
        released = 0
        for entry in entries:
            held_version, partition, offset = entry
            if held_version <= version:
                self._held[partition].pop(offset, None)
                released += 1
            else:
                keep.append(entry)
        if keep:
            self._by_sku[sku] = keep
        else:
            del self._by_sku[sku]
        return released

    def forget(self, partition: int) -> None:
        """The partition was revoked: another consumer continues from the committed offset."""
        held = self._held.pop(partition, {})
        self._next.pop(partition, None)
        self._committed.pop(partition, None)
        if not held:
            return
        for sku in list(self._by_sku):
            kept = [e for e in self._by_sku[sku] if e[1] != partition]
            if kept:
                self._by_sku[sku] = kept
            else:
                del self._by_sku[sku]

    def positions(self) -> dict[int, int]:
        """The offset to commit per partition: the next message a restart must read."""
        result = {}
        for partition, after_last in self._next.items():
            held = self._held.get(partition)
            result[partition] = next(iter(held)) if held else after_last
        return result

    def to_commit(self) -> dict[int, int]:
        """Positions that moved since the last `committed` call."""
        return {p: o for p, o in self.positions().items() if self._committed.get(p) != o}

    def committed(self, positions: dict[int, int]) -> None:
        self._committed.update(positions)

    def held(self) -> int:
        return sum(len(h) for h in self._held.values())
