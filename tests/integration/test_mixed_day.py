"""A retail day on a real broker: POS sales, web orders, a marketplace sale with no stock, a
cycle count racing in-flight sales, a DC-to-store transfer and a policy change mid-stream."""

from __future__ import annotations

from typing import Any

import yaml

from stocksync.channels.producer import ChannelProducer
from stocksync.codec.outputs import decode_alert, decode_projection
from stocksync.domain.events import EventKind as K
from stocksync.topology_log import publish_topology
from tests.integration.support import TOPOLOGY, WorkerProcess, read_topic, wait_for

SKU = "DAY-1"


def projections_for(worker: WorkerProcess, sku: str) -> list[Any]:
    settings = worker.settings
    changes = [
        decode_projection(v or b"")
        for _, v in read_topic(settings.bootstrap_servers, settings.topics.channel_atp)
    ]
    return [c for c in changes if c.sku == sku]


def test_a_mixed_day_gives_the_expected_channel_quantities_and_alerts(
    worker: WorkerProcess,
) -> None:
    s = worker.settings
    wms = ChannelProducer(s.bootstrap_servers, "wms", s.topics)
    pos = ChannelProducer(s.bootstrap_servers, "pos-store-1", s.topics)
    web = ChannelProducer(s.bootstrap_servers, "web", s.topics)
    market = ChannelProducer(s.bootstrap_servers, "marketplace", s.topics)

    applied = 0

    def send(producer: ChannelProducer, kind: K, loc: str, qty: int, at: int, **extra: Any) -> None:
        # Stock and sale events travel on two topics, and Kafka orders only within one
        # partition: like a real day, each event is applied before the next one happens.
        nonlocal applied
        producer.emit(kind, SKU, loc, qty, occurred_at=at, **extra)
        producer.flush()
        applied += 1
        worker.wait_revision(SKU, applied)

    # given stock at a DC and a store (event times are event-time milliseconds)
    send(wms, K.RECEIVED, "dc-1", 20, 1000)
    send(wms, K.RECEIVED, "store-1", 10, 1000)
    # store sales and a web order; the till at t=5000 reports before the count taken at t=4000,
    # and the till at t=3500 reports only after it (a cycle count racing in-flight sales)
    send(pos, K.SOLD, "store-1", 2, 2000)
    send(web, K.RESERVED, "dc-1", 3, 3000)
    send(pos, K.SOLD, "store-1", 1, 5000)
    send(wms, K.COUNTED, "store-1", 5, 4000, reason="cycle-count")  # saw 8 - 2 sold - 1 shrink
    send(pos, K.SOLD, "store-1", 2, 3500)  # already inside the count
    # a marketplace sells a unit dc-2 never had
    send(market, K.SOLD, "dc-2", 1, 6000)
    # a transfer of 5 from dc-1 to store-1 ships and arrives
    send(wms, K.TRANSFER_OUT, "dc-1", 5, 7000, counterpart_location="store-1")
    assert worker.atp(SKU)[1]["locations"]["store-1"]["in_transit"] == 5
    send(wms, K.TRANSFER_IN, "store-1", 5, 8000, counterpart_location="dc-1")

    # when the marketplace policy changes mid-stream (no buffers, a ring-fence of 5 units)
    document = yaml.safe_load(TOPOLOGY.read_text())
    document["version"] = 2
    document["channels"]["marketplace"]["policy"] = {"cap": 5}
    publish_topology(s, document)
    wait_for(
        lambda: [
            c
            for c in projections_for(worker, SKU)
            if c.channel == "marketplace" and c.policy_version == 2
        ],
        30,
        "marketplace re-published under policy version 2",
    )
    # and the day goes on
    send(web, K.RESERVED, "dc-1", 8, 9000)
    send(pos, K.SOLD, "store-1", 8, 10000)

    # then the quantities are the ones worked out by hand
    view = worker.wait_revision(SKU, 12)
    assert view["revision"] == 12
    locations = view["locations"]
    assert (
        locations["dc-1"]["on_hand"],
        locations["dc-1"]["reserved"],
        locations["dc-1"]["atp"],
    ) == (15, 11, 2)
    assert (
        locations["dc-2"]["on_hand"],
        locations["dc-2"]["oversold"],
        locations["dc-2"]["atp"],
    ) == (-1, 1, 0)
    assert (
        locations["store-1"]["on_hand"],
        locations["store-1"]["in_transit"],
        locations["store-1"]["atp"],
    ) == (1, 0, 0)
    assert {ch: v["atp"] for ch, v in view["channels"].items()} == {
        "web": 2,
        "pos-store-1": 0,
        "marketplace": 2,
    }
    assert all(v["policy_version"] == 2 for v in view["channels"].values())

    # and the projection topic's last word per channel agrees, with the policy version used
    latest = {c.channel: c for c in projections_for(worker, SKU)}
    assert {ch: (c.quantity, c.policy_version) for ch, c in latest.items()} == {
        "web": (2, 2),
        "pos-store-1": (0, 2),
        "marketplace": (2, 2),
    }
    marketplace_values = [
        (c.quantity, c.policy_version)
        for c in projections_for(worker, SKU)
        if c.channel == "marketplace"
    ]
    assert marketplace_values == [(16, 1), (13, 1), (8, 1), (5, 2), (2, 2)]

    # and the alerts are exactly: POS low on stock after the count, the marketplace oversell,
    # POS out of stock at the end
    alerts = [decode_alert(v or b"") for _, v in read_topic(s.bootstrap_servers, s.topics.alerts)]
    mine = [(a["type"], a["channel"] or a["location"]) for a in alerts if a["sku"] == SKU]
    assert mine == [
        ("LOW_STOCK", "pos-store-1"),
        ("OVERSELL", "dc-2"),
        ("OUT_OF_STOCK", "pos-store-1"),
    ]

    # and the audit trail explains the count: store-1 at 4 after it, POS moved because of it
    status, history = worker.http(f"/v1/atp/{SKU}/history")
    assert status == 200
    count = next(e for e in history["entries"] if e["type"] == "COUNTED")
    assert count["locations"]["store-1"]["on_hand"] == 4
    assert count["channels"]["pos-store-1"] == {"from": 6, "to": 3, "why": "store-1 ATP 6 -> 3"}
    assert history["entries"][0]["revision"] == 12
