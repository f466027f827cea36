"""Which worker owns which partition, as faust's assignor last published it: HTTP requests
for a SKU another worker owns are forwarded there."""

from __future__ import annotations

from typing import Any

from stocksync.config import Settings
from stocksync.service.admission import murmur2_partition


class PartitionOwners:
    def __init__(self, app: Any, settings: Settings) -> None:
        self._app = app
        self._own_url = settings.http_url
        self._partitions = settings.partitions
        self._changelog = settings.topics.atp_changelog
        self._owners: dict[int, str] = {}
        self._source: object = None

    def other_workers(self) -> list[str]:
        return sorted({url for url in self._by_partition().values() if url != self._own_url})

    def owner_of(self, sku: str) -> str | None:
        """The HTTP URL of the worker that owns the SKU's partition, or None when it is this
        worker (or the assignment is not known yet: then this worker answers)."""
        url = self._by_partition().get(murmur2_partition(sku.encode(), self._partitions))
        return None if url is None or url == self._own_url else url

    def _by_partition(self) -> dict[int, str]:
        """Partition -> owning worker's URL, rebuilt only when the assignor publishes a new
        distribution (it replaces the mapping on every rebalance): lookups stay O(1)."""
        distribution = self._app.router.tables_metadata()
        if distribution is not self._source:
            self._owners = {
                partition: str(url).rstrip("/")
                for url, topics in distribution.items()
                for partition in topics.get(self._changelog, ())
            }
            self._source = distribution
        return self._owners
