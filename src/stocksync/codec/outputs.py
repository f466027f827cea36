"""Messages the worker publishes: channel projections and dead letters."""

from __future__ import annotations

from typing import Any

from stocksync.codec.avro import decode_as
from stocksync.codec.bindings import ALERT, CHANNEL_ATP, DEAD_LETTER, DeadLetter
from stocksync.domain.effects import (
    Alert,
    AlertRecord,
    ChannelQuantityChanged,
    CountNotMerged,
    OversellDetected,
    StockLevelCrossed,
    UnknownLocation,
)

CHANNEL_ATP_SUBJECT = CHANNEL_ATP.subject
DEAD_LETTER_SUBJECT = DEAD_LETTER.subject
ALERT_SUBJECT = ALERT.subject


def projection_key(channel: str, sku: str) -> bytes:
    # Channel ids never contain ':' (the topology refuses them), so the first ':' splits.
    return f"{channel}:{sku}".encode()


def encode_projection(change: ChannelQuantityChanged) -> bytes:
    return CHANNEL_ATP.encode(change)


def decode_projection(payload: bytes) -> ChannelQuantityChanged:
    return CHANNEL_ATP.decode(payload)


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
    return DEAD_LETTER.encode(
        DeadLetter(
            reason=reason,
            error=error,
            topic=topic,
            partition=partition,
            offset=offset,
            original_key=key,
            original_value=value,
            dead_lettered_at=at_ms,
        )
    )


def decode_dead_letter(payload: bytes) -> dict[str, Any]:
    return decode_as(payload, DEAD_LETTER_SUBJECT)


def alert_of(alert: Alert, revision: int) -> AlertRecord:
    """The published form of an alert; revision is the SKU row's revision after the event."""
    if isinstance(alert, OversellDetected):
        return AlertRecord(
            alert_id=f"{alert.sku}:{revision}:OVERSELL:{alert.location}",
            type="OVERSELL",
            sku=alert.sku,
            location=alert.location,
            quantity=alert.units,
            event_id=alert.event_id,
            source=alert.source,
            revision=revision,
            as_of=alert.as_of,
            message=f"{alert.source} sold {alert.units} unit(s) of {alert.sku} at "
            f"{alert.location} beyond its stock",
        )
    if isinstance(alert, StockLevelCrossed):
        kind = alert.level.value
        return AlertRecord(
            alert_id=f"{alert.sku}:{revision}:{kind}:{alert.channel}",
            type=kind,
            sku=alert.sku,
            channel=alert.channel,
            quantity=alert.quantity,
            previous=alert.previous,
            threshold=alert.threshold or None,
            policy_version=alert.policy_version,
            revision=revision,
            as_of=alert.as_of,
            message=f"{alert.channel} may sell {alert.quantity} of {alert.sku} "
            f"(was {alert.previous}): {kind.lower().replace('_', ' ')}",
        )
    if isinstance(alert, CountNotMerged):
        return AlertRecord(
            alert_id=f"{alert.sku}:{revision}:COUNT_NOT_MERGED:{alert.location}",
            type="COUNT_NOT_MERGED",
            sku=alert.sku,
            location=alert.location,
            quantity=alert.quantity,
            event_id=alert.event_id,
            revision=revision,
            as_of=alert.as_of,
            message=f"count of {alert.sku} at {alert.location} as of {alert.counted_at} not "
            f"merged: {alert.reason}",
        )
    if isinstance(alert, UnknownLocation):
        return AlertRecord(
            alert_id=f"{alert.sku}:{revision}:UNKNOWN_LOCATION:{alert.location}",
            type="UNKNOWN_LOCATION",
            sku=alert.sku,
            location=alert.location,
            quantity=alert.quantity,
            event_id=alert.event_id,
            source=alert.source,
            revision=revision,
            as_of=alert.as_of,
            message=f"{alert.source} sent {alert.sku} at {alert.location}, a location the "
            f"topology does not name: its units are kept but no channel sells them; add "
            f"{alert.location} to the topology (or correct the sender)",
        )
    raise TypeError(f"not an alert: {alert!r}")  # pragma: no cover - Alert is a closed union


def alert_record(alert: Alert, revision: int) -> dict[str, Any]:
    """The Avro record of an alert; revision is the SKU row's revision after the event."""
    return ALERT.to_record(alert_of(alert, revision))


# Every alert record carries its type in this header, so a reader that only counts alerts (the
# worker's dashboard feed, in a flash sale thousands a second) need not decode them.
ALERT_TYPE_HEADER = "alert-type"
Headers = list[tuple[str, str | bytes | None]]  # Kafka record headers, as librdkafka takes them


def alert_headers(alert_type: str) -> Headers:
    return [(ALERT_TYPE_HEADER, alert_type.encode())]


def encode_alert(alert: Alert, revision: int) -> bytes:
    return ALERT.encode(alert_of(alert, revision))


def decode_alert(payload: bytes) -> dict[str, Any]:
    return decode_as(payload, ALERT_SUBJECT)
