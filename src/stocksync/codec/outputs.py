"""Messages the worker publishes: channel projections and dead letters."""

from __future__ import annotations

from typing import Any

from stocksync.codec.avro import decode, encode_latest
from stocksync.domain.effects import ChannelQuantityChanged

CHANNEL_ATP_SUBJECT = "channel-atp"
DEAD_LETTER_SUBJECT = "dead-letter"


def projection_key(channel: str, sku: str) -> bytes:
    # Channel ids never contain ':' (the topology refuses them), so the first ':' splits.
    return f"{channel}:{sku}".encode()


def encode_projection(change: ChannelQuantityChanged) -> bytes:
    return encode_latest(
        {
            "channel": change.channel,
            "sku": change.sku,
            "quantity": change.quantity,
            "policy_version": change.policy_version,
            "revision": change.revision,
            "as_of": change.as_of,
        },
        CHANNEL_ATP_SUBJECT,
    )


def decode_projection(payload: bytes) -> ChannelQuantityChanged:
    subject, record = decode(payload)
    if subject != CHANNEL_ATP_SUBJECT:
        raise ValueError(f"expected a {CHANNEL_ATP_SUBJECT} message, got {subject}")
    return ChannelQuantityChanged(**record)


def encode_dead_letter(
    *,
    reason: str,
    error: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    at_ms: int,
) -> bytes:
    return encode_latest(
        {
            "reason": reason,
            "error": error,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "original_key": key,
            "original_value": value,
            "dead_lettered_at": at_ms,
        },
        DEAD_LETTER_SUBJECT,
    )


def decode_dead_letter(payload: bytes) -> dict[str, Any]:
    subject, record = decode(payload)
    if subject != DEAD_LETTER_SUBJECT:
        raise ValueError(f"expected a {DEAD_LETTER_SUBJECT} message, got {subject}")
    return record
