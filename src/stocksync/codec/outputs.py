"""Messages the worker publishes: channel projections and dead letters."""

from __future__ import annotations

from typing import Any

from stocksync.codec.avro import decode_as, encode_latest
from stocksync.domain.effects import (
    Alert,
    ChannelQuantityChanged,
    CountNotMerged,
    OversellDetected,
    StockLevelCrossed,
)

CHANNEL_ATP_SUBJECT = "channel-atp"
DEAD_LETTER_SUBJECT = "dead-letter"
ALERT_SUBJECT = "alert"


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
    return ChannelQuantityChanged(**decode_as(payload, CHANNEL_ATP_SUBJECT))


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
    return decode_as(payload, DEAD_LETTER_SUBJECT)


def alert_record(alert: Alert, revision: int) -> dict[str, Any]:
    """The Avro record of an alert; revision is the SKU row's revision after the event."""
    # One dict literal per kind: a quarter of the events folded raise an alert.
    if isinstance(alert, OversellDetected):
        return {
            "alert_id": f"{alert.sku}:{revision}:OVERSELL:{alert.location}",
            "type": "OVERSELL",
            "sku": alert.sku,
            "channel": None,
            "location": alert.location,
            "quantity": alert.units,
            "previous": None,
            "threshold": None,
            "event_id": alert.event_id,
            "source": alert.source,
            "policy_version": None,
            "revision": revision,
            "as_of": alert.as_of,
            "message": f"{alert.source} sold {alert.units} unit(s) of {alert.sku} at "
            f"{alert.location} beyond its stock",
            "displayed": None,  # alert v2: DRIFT alerts only (written by connectors)
        }
    if isinstance(alert, StockLevelCrossed):
        kind = alert.level.value
        return {
            "alert_id": f"{alert.sku}:{revision}:{kind}:{alert.channel}",
            "type": kind,
            "sku": alert.sku,
            "channel": alert.channel,
            "location": None,
            "quantity": alert.quantity,
            "previous": alert.previous,
            "threshold": alert.threshold if alert.threshold else None,
            "event_id": None,
            "source": None,
            "policy_version": alert.policy_version,
            "revision": revision,
            "as_of": alert.as_of,
            "message": f"{alert.channel} may sell {alert.quantity} of {alert.sku} "
            f"(was {alert.previous}): {kind.lower().replace('_', ' ')}",
            "displayed": None,
        }
    if isinstance(alert, CountNotMerged):
        return {
            "alert_id": f"{alert.sku}:{revision}:COUNT_NOT_MERGED:{alert.location}",
            "type": "COUNT_NOT_MERGED",
            "sku": alert.sku,
            "channel": None,
            "location": alert.location,
            "quantity": alert.quantity,
            "previous": None,
            "threshold": None,
            "event_id": alert.event_id,
            "source": None,
            "policy_version": None,
            "revision": revision,
            "as_of": alert.as_of,
            "message": f"count of {alert.sku} at {alert.location} as of {alert.counted_at} not "
            f"merged: {alert.reason}",
            "displayed": None,
        }
    raise TypeError(f"not an alert: {alert!r}")  # pragma: no cover - Alert is a closed union


# Every alert record carries its type in this header, so a reader that only counts alerts (the
# worker's dashboard feed, in a flash sale thousands a second) need not decode them.
ALERT_TYPE_HEADER = "alert-type"
Headers = list[tuple[str, str | bytes | None]]  # Kafka record headers, as librdkafka takes them


def alert_headers(alert_type: str) -> Headers:
    return [(ALERT_TYPE_HEADER, alert_type.encode())]


def encode_alert(alert: Alert, revision: int) -> bytes:
    return encode_latest(alert_record(alert, revision), ALERT_SUBJECT)


def decode_alert(payload: bytes) -> dict[str, Any]:
    return decode_as(payload, ALERT_SUBJECT)
