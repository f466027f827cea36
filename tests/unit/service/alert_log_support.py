"""An alerts topic held in memory, as the alert pages read it (the AlertLog port)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stocksync.codec.bindings import ALERT
from stocksync.domain.effects import AlertRecord
from stocksync.service.admission import murmur2_partition
from stocksync.service.alert_pages import NO_OFFSET, LoggedAlert

ALERT_PARTITIONS = 3


def alert_bytes(sku: str, kind: str, n: int) -> bytes:
    """An alert record; a stock-level one is about web when `n` is odd, else marketplace."""
    channel = None if kind == "OVERSELL" else ("web" if n % 2 else "marketplace")
    return ALERT.encode(
        AlertRecord(
            alert_id=f"{sku}:{n}:{kind}",
            type=kind,
            sku=sku,
            channel=channel,
            location="dc-1" if channel is None else None,
            quantity=n,
            revision=n,
            as_of=n,
            message="test",
        )
    )


@dataclass
class MemoryAlertLog:
    """Records appended per partition (keyed by SKU, murmur2), each at the partition's next
    offset, alert n of a partition at offset n; `reads` remembers every range asked for;
    `broken`: every call fails as a broker out of reach would."""

    partitions: dict[int, list[LoggedAlert]] = field(
        default_factory=lambda: {p: [] for p in range(ALERT_PARTITIONS)}
    )
    reads: list[Mapping[int, tuple[int, int]]] = field(default_factory=list)
    broken: bool = False
    closed: bool = False

    def append(self, sku: str, kind: str, timestamp: int, header: bool = True) -> LoggedAlert:
        partition = murmur2_partition(sku.encode(), ALERT_PARTITIONS)
        records = self.partitions[partition]
        record = LoggedAlert(
            partition,
            len(records),
            timestamp,
            sku.encode(),
            kind if header else None,
            alert_bytes(sku, kind, len(records)),
        )
        records.append(record)
        return record

    def _reachable(self) -> None:
        if self.broken:
            raise RuntimeError("reading test.alerts[0]: Local: Broker transport failure")

    def bounds(self) -> dict[int, tuple[int, int]]:
        self._reachable()
        return {p: (0, len(records)) for p, records in self.partitions.items()}

    def offsets_at(self, at_ms: int) -> dict[int, int]:
        self._reachable()
        return {
            p: next((r.offset for r in records if r.timestamp >= at_ms), NO_OFFSET)
            for p, records in self.partitions.items()
        }

    def read(self, ranges: Mapping[int, tuple[int, int]]) -> dict[int, list[LoggedAlert]]:
        self._reachable()
        self.reads.append(dict(ranges))
        return {
            p: [r for r in self.partitions[p] if start <= r.offset < end]
            for p, (start, end) in ranges.items()
        }

    def close(self) -> None:
        self.closed = True
