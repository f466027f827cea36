"""Rebuild ATP rows by folding the log from offset 0, outside the worker: the check that the
live table is what the log says."""

from __future__ import annotations

from collections.abc import Iterable

from stocksync.codec.avro import decode
from stocksync.codec.events import EVENT_SUBJECTS, record_to_event
from stocksync.codec.reservations import COMMAND_SUBJECT, command_from_record
from stocksync.domain.fold import apply_event
from stocksync.domain.reservations import apply_command
from stocksync.domain.state import SkuRow
from stocksync.domain.topology import Topology


def replay(messages: Iterable[tuple[int, bytes]], topology: Topology) -> dict[str, SkuRow]:
    """Fold (offset, payload) messages in the given order, exactly as the worker does:
    duplicate events ignored, retried requests answered from the row, commands keyed by their
    log offset. Offsets matter only for reservation commands."""
    rows: dict[str, SkuRow] = {}
    for offset, payload in messages:
        try:
            subject, record = decode(payload)
        except ValueError:
            continue  # the worker dead-letters it
        if subject in EVENT_SUBJECTS:
            event = record_to_event(subject, record)
            rows[event.sku] = apply_event(rows.get(event.sku), event, topology).row
        elif subject == COMMAND_SUBJECT:
            command = command_from_record(record)
            rows[command.sku] = apply_command(rows.get(command.sku), command, topology, offset).row
    return rows
