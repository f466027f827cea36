"""What folding an event caused, besides the new row: things the adapters publish."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChannelQuantityChanged:
    channel: str
    sku: str
    quantity: int
    policy_version: int
    revision: int
    as_of: int


@dataclass(frozen=True, slots=True)
class OversellDetected:
    sku: str
    location: str
    source: str
    event_id: str
    units: int  # new shortfall this event caused
    as_of: int


@dataclass(frozen=True, slots=True)
class DuplicateIgnored:
    sku: str
    event_id: str
    source: str
    source_seq: int


Effect = ChannelQuantityChanged | OversellDetected | DuplicateIgnored
