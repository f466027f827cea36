"""Response bodies of the ATP API, computed from a row and the topology (no I/O)."""

from __future__ import annotations

from typing import Any

from stocksync.domain.state import SkuRow, channel_atp, location_atp
from stocksync.domain.topology import Topology


def location_view(row: SkuRow, topology: Topology) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for loc in sorted(row.locations):
        stock = row.locations[loc]
        default = topology.default_safety_stock(loc)
        out[loc] = {
            "on_hand": stock.on_hand,
            "reserved": stock.reserved,
            "damaged": stock.damaged,
            "in_transit": stock.in_transit,
            "safety_stock": default if stock.safety_stock is None else stock.safety_stock,
            "oversold": stock.oversold,
            "atp": location_atp(stock, default),
        }
    return out


def channel_view(row: SkuRow, topology: Topology, channel: str) -> dict[str, Any]:
    return {
        "atp": channel_atp(row, topology, channel),
        "policy_version": topology.version,
        "locations": list(topology.channels[channel].locations),
    }


def sku_view(row: SkuRow, topology: Topology) -> dict[str, Any]:
    return {
        "sku": row.sku,
        "revision": row.revision,
        "last_event_at": row.last_event_at,
        "locations": location_view(row, topology),
        "channels": {ch: channel_view(row, topology, ch) for ch in sorted(topology.channels)},
    }


def sku_channel_view(row: SkuRow, topology: Topology, channel: str) -> dict[str, Any]:
    return {
        "sku": row.sku,
        "channel": channel,
        "revision": row.revision,
        **channel_view(row, topology, channel),
    }
