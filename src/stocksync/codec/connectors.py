"""Messages channel connectors write: the published-quantity ledger and drift alerts."""

from __future__ import annotations

from typing import Any

from stocksync.codec.bindings import ALERT, PUBLISHED_QUANTITY
from stocksync.codec.bindings import PublishedQuantity as PublishedQuantity
from stocksync.codec.outputs import projection_key
from stocksync.domain.effects import AlertRecord

LEDGER_SUBJECT = PUBLISHED_QUANTITY.subject
DRIFT = "DRIFT"


def ledger_key(channel: str, sku: str) -> bytes:
    """Same key as the projection topic: '<channel>:<sku>'."""
    return projection_key(channel, sku)


def encode_published(entry: PublishedQuantity) -> bytes:
    return PUBLISHED_QUANTITY.encode(entry)


def decode_published(payload: bytes) -> PublishedQuantity:
    return PUBLISHED_QUANTITY.decode(payload)


def drift_alert(
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
) -> AlertRecord:
    """An Alert (schema alert v2) of type DRIFT: the channel displays `displayed` though it
    was told `published`; the connector sends `published` (or a newer value) again."""
    return AlertRecord(
        alert_id=f"{sku}:{revision}:{DRIFT}:{channel}:{reported_at}",
        type=DRIFT,
        sku=sku,
        channel=channel,
        quantity=published,
        threshold=allowed,
        policy_version=policy_version,
        revision=revision,
        as_of=as_of,
        message=f"{channel} displays {displayed} of {sku} but was told {published} "
        f"(more than {allowed} apart): sending {published} again",
        displayed=displayed,
    )


def drift_alert_record(**fields: Any) -> dict[str, Any]:
    """The Avro record of drift_alert(**fields)."""
    return ALERT.to_record(drift_alert(**fields))


def encode_drift_alert(**fields: Any) -> bytes:
    return ALERT.encode(drift_alert(**fields))
