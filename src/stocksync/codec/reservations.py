"""Reservation commands and replies <-> Avro."""

from __future__ import annotations

from typing import Any

from stocksync.codec.avro import encode_latest
from stocksync.domain.reservations import (
    CommandKind,
    ReplyStatus,
    ReservationCommand,
    ReservationReply,
    validate_command,
)

COMMAND_SUBJECT = "reservation-command"
REPLY_SUBJECT = "reservation-reply"


def encode_command(cmd: ReservationCommand) -> bytes:
    return encode_latest(
        {
            "request_id": cmd.request_id,
            "kind": cmd.kind.value,
            "sku": cmd.sku,
            "reservation_id": cmd.reservation_id,
            "issued_at": cmd.issued_at,
            "channel": cmd.channel,
            "quantity": cmd.quantity,
            "location": cmd.location,
            "ttl_ms": cmd.ttl_ms,
            "allow_partial": cmd.allow_partial,
        },
        COMMAND_SUBJECT,
    )


def command_from_record(record: dict[str, Any]) -> ReservationCommand:
    """A decoded record to a command; raises InvalidCommand (a ValueError: dead letter
    `invalid`) for a field over its limit."""
    cmd = ReservationCommand(
        request_id=record["request_id"],
        kind=CommandKind(record["kind"]),
        sku=record["sku"],
        reservation_id=record["reservation_id"],
        issued_at=record["issued_at"],
        channel=record["channel"],
        quantity=record["quantity"],
        location=record["location"],
        ttl_ms=record["ttl_ms"],
        allow_partial=record["allow_partial"],
    )
    validate_command(cmd)
    return cmd


def encode_reply(reply: ReservationReply) -> bytes:
    return encode_latest(
        {
            "request_id": reply.request_id,
            "reservation_id": reply.reservation_id,
            "kind": reply.kind.value,
            "status": reply.status.value,
            "sku": reply.sku,
            "channel": reply.channel,
            "location": reply.location,
            "quantity": reply.quantity,
            "requested": reply.requested,
            "available": reply.available,
            "expires_at": reply.expires_at,
            "reason": reply.reason,
        },
        REPLY_SUBJECT,
    )


def reply_from_record(record: dict[str, Any]) -> ReservationReply:
    return ReservationReply(
        request_id=record["request_id"],
        reservation_id=record["reservation_id"],
        kind=CommandKind(record["kind"]),
        status=ReplyStatus(record["status"]),
        sku=record["sku"],
        channel=record["channel"],
        location=record["location"],
        quantity=record["quantity"],
        requested=record["requested"],
        available=record["available"],
        expires_at=record["expires_at"],
        reason=record["reason"],
    )
