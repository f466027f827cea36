"""Channels may compress what they produce: the worker folds every codec librdkafka offers."""

from __future__ import annotations

import pytest

from stocksync.channels.producer import ChannelProducer
from stocksync.domain.events import EventKind
from tests.integration.support import WorkerProcess, wait_for


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_channel_events_are_folded(worker: WorkerProcess, codec: str) -> None:
    # given a channel whose producer compresses its batches
    sku = f"COMPRESSED-{codec}"
    topics = worker.settings.topics
    with ChannelProducer(
        worker.settings.bootstrap_servers, f"wms-{codec}", topics, {"compression.type": codec}
    ) as producer:
        # (librdkafka sends a batch uncompressed unless compressing makes it smaller)
        producer.emit(EventKind.RECEIVED, sku, "dc-2", 400)
        for _ in range(300):
            producer.emit(EventKind.SOLD, sku, "dc-2", 1)

    # then the worker decodes and folds them (an aiokafka client without the codec crashes)
    def on_hand() -> int | None:
        status, body = worker.atp(sku)
        return body["locations"]["dc-2"]["on_hand"] if status == 200 else None

    assert wait_for(lambda: on_hand() == 100, 30, f"{codec} events to be folded")
    assert worker.process is not None and worker.process.poll() is None
