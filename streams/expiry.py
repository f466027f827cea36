"""Holds whose time runs out: an EXPIRE command is written to the log for each, when due.

The wall clock is read here, outside the fold; the fold decides on the command's own time, so
a replay of the log agrees with what the worker did."""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable
from typing import Any

import structlog

from stocksync.codec.reservations import encode_command
from stocksync.codec.rows import holds_from_bytes
from stocksync.domain.reservations import CommandKind, ReservationCommand

log = structlog.get_logger("stocksync.expiry")


class HoldExpiry:
    def __init__(self, commands_topic: Any) -> None:
        self._commands = commands_topic  # a faust topic: sends go through the app's producer
        # (expires_at, sku, reservation id) of holds this worker owns
        self.queue: list[tuple[int, str, str]] = []

    def hold_taken(self, expires_at: int, sku: str, reservation_id: str) -> None:
        heapq.heappush(self.queue, (expires_at, sku, reservation_id))

    async def expire_due(self) -> None:
        """Write an EXPIRE command for every hold whose time ran out."""
        now = int(time.time() * 1000)
        queue = self.queue
        while queue and queue[0][0] <= now:
            expires_at, sku, reservation_id = heapq.heappop(queue)
            command = ReservationCommand(
                request_id=f"expire:{reservation_id}:{expires_at}",
                kind=CommandKind.EXPIRE,
                sku=sku,
                reservation_id=reservation_id,
                issued_at=now,
            )
            await self._commands.send(key=sku.encode(), value=encode_command(command))

    def load(self, rows: Iterable[bytes]) -> None:
        """After recovery: the holds in the table that need an expiry, reading only the SKU and
        holds of each stored row."""
        started = time.monotonic()
        count = 0
        for stored in rows:
            try:
                sku, holds = holds_from_bytes(stored)
            except ValueError as exc:
                log.error("row_unreadable", error=str(exc))
                continue
            count += 1
            for reservation_id, hold in holds.items():
                heapq.heappush(self.queue, (hold.expires_at, sku, reservation_id))
        log.info(
            "expiry_queue_loaded",
            holds=len(self.queue),
            rows=count,
            seconds=round(time.monotonic() - started, 3),
        )
