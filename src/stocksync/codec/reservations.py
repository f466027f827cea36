"""Reservation commands and replies <-> Avro."""

from __future__ import annotations

from typing import Any

from stocksync.codec.bindings import RESERVATION_COMMAND, RESERVATION_REPLY
from stocksync.domain.reservations import (
    ReservationCommand,
    ReservationReply,
    validate_command,
)

COMMAND_SUBJECT = RESERVATION_COMMAND.subject
REPLY_SUBJECT = RESERVATION_REPLY.subject


def encode_command(cmd: ReservationCommand) -> bytes:
    return RESERVATION_COMMAND.encode(cmd)


def command_from_record(record: dict[str, Any]) -> ReservationCommand:
    """A decoded record to a command; raises InvalidCommand (a ValueError: dead letter
    `invalid`) for a field over its limit."""
    cmd = RESERVATION_COMMAND.from_record(record)
    validate_command(cmd)
    return cmd


def encode_reply(reply: ReservationReply) -> bytes:
    return RESERVATION_REPLY.encode(reply)


def reply_from_record(record: dict[str, Any]) -> ReservationReply:
    return RESERVATION_REPLY.from_record(record)
