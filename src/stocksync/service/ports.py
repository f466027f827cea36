"""The ports the batch fold works over: where rows live and where its outputs go."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Protocol

from stocksync.codec.outputs import Headers


class Table(StrEnum):
    """The worker's tables. Each is one store per input partition plus a compacted changelog
    topic; a row always lives in the partition of its SKU."""

    ROWS = "rows"  # SKU -> SkuRow
    HISTORY = "history"  # SKU + slot -> one audit record
    INDEX = "index"  # reservation answers and endings, for lookups by id


class InputRecord(Protocol):
    """An input message as the fold reads it (aiokafka's ConsumerRecord has this shape)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int | None: ...  # epoch ms
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class RowStore(Protocol):
    """The tables' local state, one store per (table, partition)."""

    def get(self, table: Table, partition: int, key: bytes) -> bytes | None: ...

    def find(self, table: Table, key: bytes) -> bytes | None:
        """A key of unknown partition (the reservation index is looked up by request id)."""
        ...

    def write(self, table: Table, partition: int, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Write many keys of one partition at once (a RocksDB write batch)."""
        ...

    def scan(
        self, table: Table, partition: int, start: bytes = b""
    ) -> Iterator[tuple[bytes, bytes]]:
        """The keys of one partition from `start` on (included), in byte order, with their
        values; lazy, so a listing reads only as far as its page needs. Nothing for a
        partition this worker has not opened."""
        ...


class OutputSink(Protocol):
    """Where the fold's records go. Nothing sent is acknowledged until the caller waits for
    delivery; the input is committed only after that."""

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers | None = None,
    ) -> None: ...

    def send_changelog(self, table: Table, partition: int, key: bytes, value: bytes) -> None:
        """A table change, on the changelog partition of the input partition it came from."""
        ...
