"""Messages channel connectors write: the published-quantity ledger and drift alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stocksync.codec.avro import decode_as, encode_latest
from stocksync.codec.outputs import ALERT_SUBJECT, projection_key

LEDGER_SUBJECT = "published-quantity"
DRIFT = "DRIFT"


@dataclass(frozen=True, slots=True)
class PublishedQuantity:
    """One ledger entry: the channel acknowledged this value."""

    channel: str
    sku: str
    quantity: int
    revision: int
    policy_version: int
    as_of: int
    reason: str
    attempts: int
    sent_at: int
    acknowledged_at: int
    endpoint: str


def ledger_key(channel: str, sku: str) -> bytes:
    """Same key as the projection topic: '<channel>:<sku>'."""
    return projection_key(channel, sku)


def encode_published(entry: PublishedQuantity) -> bytes:
    return encode_latest(
        {
            "channel": entry.channel,
            "sku": entry.sku,
            "quantity": entry.quantity,
            "revision": entry.revision,
            "policy_version": entry.policy_version,
            "as_of": entry.as_of,
            "reason": entry.reason,
            "attempts": entry.attempts,
            "sent_at": entry.sent_at,
            "acknowledged_at": entry.acknowledged_at,
            "endpoint": entry.endpoint,
        },
        LEDGER_SUBJECT,
    )


def decode_published(payload: bytes) -> PublishedQuantity:
    return PublishedQuantity(**decode_as(payload, LEDGER_SUBJECT))


def drift_alert_record(
    *,
    channel: str,
    sku: str,
    published: int,
    displayed: int,
    allowed: int,
    revision: int,
    policy_version: int,
    as_of: int,
    reported_at: int,
) -> dict[str, Any]:
    """An Alert (schema alert v2) of type DRIFT: the channel displays `displayed` though it
    was told `published`; the connector sends `published` (or a newer value) again."""
    return {
        "alert_id": f"{sku}:{revision}:{DRIFT}:{channel}:{reported_at}",
        "type": DRIFT,
        "sku": sku,
        "channel": channel,
        "location": None,
        "quantity": published,
        "previous": None,
        "threshold": allowed,
        "event_id": None,
        "source": None,
        "policy_version": policy_version,
        "revision": revision,
        "as_of": as_of,
        "message": f"{channel} displays {displayed} of {sku} but was told {published} "
        f"(more than {allowed} apart): sending {published} again",
        "displayed": displayed,
    }


def encode_drift_alert(**fields: Any) -> bytes:
    return encode_latest(drift_alert_record(**fields), ALERT_SUBJECT)
