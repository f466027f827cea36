"""Deciding reservation requests (stocksync.service.reservations) over the memory adapters: the
owner folds each request sent, the index is read as the HTTP API reads it. No Kafka, no HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from builders import SKU, TOPOLOGY, ev, reserve, stock
from builders import command as reservation_command

from stocksync.domain.events import EventKind as K
from stocksync.domain.reservations import (
    MAX_ANSWERS,
    ReplyStatus,
    ReservationCommand,
    ReservationReply,
    apply_command,
)
from stocksync.service.queries import TableQueries
from stocksync.service.reservations import decide, held_reservation

from .support import PARTITIONS, InputLog, Tables, replies

TIMEOUT = 0.5


@dataclass
class FoldingDesk:
    """Both ports over the memory adapters: a request sent is folded by the SKU's owner in a
    batch of its own; `lose_replies` answers are decided but never come back (a timeout)."""

    tables: Tables = field(default_factory=Tables)
    log: InputLog = field(default_factory=InputLog)
    sent: list[ReservationCommand] = field(default_factory=list)
    lose_replies: int = 0

    def __post_init__(self) -> None:
        ctx = self.tables.ctx
        self.queries = TableQueries(
            self.tables.store, PARTITIONS, ctx.retention, lambda: ctx.topology
        )

    async def request(self, command: ReservationCommand, timeout: float) -> ReservationReply | None:
        self.sent.append(command)
        [reply] = replies(self.tables.fold(self.log.command(command)))
        if self.lose_replies:
            self.lose_replies -= 1
            return None
        return reply

    def reservation_reply(self, request_id: str) -> ReservationReply | None:
        return self.queries.reservation_reply(request_id)


def stocked_desk(lose_replies: int = 0) -> FoldingDesk:
    """10 units at dc-1."""
    desk = FoldingDesk(lose_replies=lose_replies)
    desk.tables.fold(desk.log.event(ev(K.RECEIVED, 10)))
    return desk


def decided(desk: FoldingDesk, command: ReservationCommand) -> ReservationReply | None:
    return asyncio.run(decide(desk, command, TIMEOUT))


def test_a_new_request_is_sent_and_decided_by_the_owner() -> None:
    desk = stocked_desk()
    reply = decided(desk, reserve(3, "order-1"))
    assert reply is not None and reply.status is ReplyStatus.HELD
    assert [c.request_id for c in desk.sent] == ["order-1"]
    assert stock(desk.tables.row()).reserved == 3


def test_a_retry_is_answered_from_the_index_and_not_sent_again() -> None:
    # given order-1 was decided
    desk = stocked_desk()
    first = decided(desk, reserve(3, "order-1"))
    # when the same request comes again
    again = decided(desk, reserve(3, "order-1"))
    # then it gets the recorded answer without reaching the owner
    assert again == first
    assert len(desk.sent) == 1
    assert stock(desk.tables.row()).reserved == 3


def test_a_retry_older_than_the_rows_memory_takes_no_second_hold() -> None:
    # given order-1 was held and released, then the SKU decided MAX_ANSWERS other requests
    desk = stocked_desk()
    held = decided(desk, reserve(3, "order-1"))
    decided(desk, reservation_command("RELEASE", "order-1"))
    for i in range(MAX_ANSWERS):
        decided(desk, reserve(99, f"refused-{i}"))
    row = desk.tables.row()
    assert "order-1" not in row.answers
    retry = reserve(3, "order-1")
    # (the owner, deciding it again, would take a second hold)
    assert stock(apply_command(row, retry, TOPOLOGY).row).reserved == 3
    sent = len(desk.sent)
    # when the client retries order-1
    reply = decided(desk, retry)
    # then it gets the first answer from the index; nothing is sent, nothing is held again
    assert reply == held
    assert len(desk.sent) == sent
    assert stock(desk.tables.row()).reserved == 0


def test_a_lost_reply_is_none_and_the_retry_gets_the_decision_without_deciding_again() -> None:
    # given the owner decided order-7 but its answer did not come back in time
    desk = stocked_desk(lose_replies=1)
    assert decided(desk, reserve(4, "order-7")) is None
    # when the client retries
    reply = decided(desk, reserve(4, "order-7"))
    # then it gets that decision, and the units are held once
    assert reply is not None and reply.status is ReplyStatus.HELD
    assert len(desk.sent) == 1
    assert stock(desk.tables.row()).reserved == 4


@pytest.mark.parametrize(
    "other",
    [
        reserve(1, "order-1", sku="SKU-B"),  # another SKU
        reserve(7, "order-1"),  # another quantity
        reservation_command("RELEASE", "order-1", request_id="order-1"),  # another action
    ],
    ids=["sku", "quantity", "action"],
)
def test_a_request_id_reused_for_another_request_is_key_reused_and_not_sent(
    other: ReservationCommand,
) -> None:
    desk = stocked_desk()
    first = decided(desk, reserve(3, "order-1"))
    assert first is not None
    reply = decided(desk, other)
    assert reply is not None and reply.status is ReplyStatus.KEY_REUSED
    assert f"(RESERVE 3 of {SKU} for web, answered HELD)" in reply.reason
    assert [c.sku for c in desk.sent] == [SKU]
    # and the first request is still answered as it was
    assert decided(desk, reserve(3, "order-1")) == first


def test_only_a_granted_reservation_is_found_by_its_id() -> None:
    desk = stocked_desk()
    decided(desk, reserve(3, "order-1"))
    decided(desk, reserve(99, "order-9"))  # refused
    found = held_reservation(desk, "order-1")
    assert found is not None and (found.sku, found.quantity) == (SKU, 3)
    assert held_reservation(desk, "order-9") is None
    assert held_reservation(desk, "nope") is None
