"""In-memory implementations of the ports, for unit tests and tools: they behave as the
RocksDB store and the Kafka sink do, without either."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from stocksync.codec.outputs import Headers
from stocksync.service.ports import Table


@dataclass
class MemoryRowStore:
    data: dict[tuple[Table, int], dict[bytes, bytes]] = field(default_factory=dict)

    def get(self, table: Table, partition: int, key: bytes) -> bytes | None:
        return self.data.get((table, partition), {}).get(key)

    def find(self, table: Table, key: bytes) -> bytes | None:
        return self.table(table).get(key)

    def write(self, table: Table, partition: int, items: Iterable[tuple[bytes, bytes]]) -> None:
        self.data.setdefault((table, partition), {}).update(items)

    def scan(
        self, table: Table, partition: int, start: bytes = b""
    ) -> Iterator[tuple[bytes, bytes]]:
        items = self.data.get((table, partition), {})
        keys = sorted(items)
        for key in keys[bisect_left(keys, start) :]:
            yield key, items[key]

    def table(self, table: Table) -> dict[bytes, bytes]:
        """Every key of a table, over all partitions."""
        out: dict[bytes, bytes] = {}
        for (name, _partition), items in sorted(self.data.items()):
            if name is table:
                out.update(items)
        return out


@dataclass
class MemorySink:
    """Records in the order sent: (topic, key, value) and (table, partition, key, value)."""

    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    changelog: list[tuple[Table, int, bytes, bytes]] = field(default_factory=list)
    headers: list[tuple[str, bytes | None, Headers]] = field(default_factory=list)

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers | None = None,
    ) -> None:
        self.sent.append((topic, key, value))
        if headers:
            self.headers.append((topic, key, headers))

    def send_changelog(self, table: Table, partition: int, key: bytes, value: bytes) -> None:
        self.changelog.append((table, partition, key, value))

    def to(self, topic: str) -> list[tuple[bytes | None, bytes]]:
        return [(key, value) for name, key, value in self.sent if name == topic]
