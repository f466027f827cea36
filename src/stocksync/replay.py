"""Rebuild ATP rows by folding the log from offset 0, outside the worker: the check that the
live table is what the log says."""

from __future__ import annotations

from collections.abc import Iterable

from stocksync.codec.avro import decode
from stocksync.codec.events import EVENT_SUBJECTS, record_to_event
from stocksync.codec.reservations import COMMAND_SUBJECT, command_from_record
from stocksync.domain.fold import apply_event
from stocksync.domain.reservations import ReservationReply, apply_command
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology


def replay(payloads: Iterable[bytes], topology: Topology) -> dict[str, SkuRow]:
    """Fold event and command messages in the given order, as the worker does: duplicates
    ignored, and a retried request answered from the first decision (the worker's index)."""
    rows: dict[str, SkuRow] = {}
    answered: dict[str, ReservationReply] = {}
    for payload in payloads:
        try:
            subject, record = decode(payload)
        except ValueError:
            continue  # the worker dead-letters it
        if subject in EVENT_SUBJECTS:
            event = record_to_event(subject, record)
            rows[event.sku] = apply_event(rows.get(event.sku), event, topology).row
        elif subject == COMMAND_SUBJECT:
            command = command_from_record(record)
            if command.request_id in answered:
                continue
            result = apply_command(rows.get(command.sku), command, topology)
            if result.applied:
                answered[command.request_id] = result.reply
            rows[command.sku] = result.row
    return rows
