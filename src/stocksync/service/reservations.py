"""How a reservation request is decided, whatever entry point it came through: a request
already decided is answered from the reservation index, anything else is sent to the SKU's
single writer. Knows no HTTP, Kafka client or faust."""

from __future__ import annotations

from typing import Protocol

from stocksync.domain.reservations import (
    CommandKind,
    ReplyStatus,
    ReservationCommand,
    ReservationReply,
    key_reused,
    request_fingerprint,
)
from stocksync.domain.state import SkuRow


class ReservationIndex(Protocol):
    """The recorded answers, by request id (a RESERVE's request id is its reservation id)."""

    def reservation_reply(self, request_id: str) -> ReservationReply | None: ...


class CommandGateway(Protocol):
    """Sends a command to the worker owning its SKU and waits for the answer."""

    async def request(
        self, command: ReservationCommand, timeout: float
    ) -> ReservationReply | None: ...


class ReservationDesk(ReservationIndex, CommandGateway, Protocol):
    """Both ports: what deciding a request needs."""


def recorded_answer(
    index: ReservationIndex, command: ReservationCommand
) -> ReservationReply | None:
    """The answer already given to this request id: the recorded answer when it was this very
    request (same fingerprint), KEY_REUSED naming the first request when the id was used for
    another one; None for an id never used."""
    earlier = index.reservation_reply(command.request_id)
    if earlier is None:
        return None
    if earlier.fingerprint:
        if earlier.fingerprint == request_fingerprint(command):
            return earlier
        return key_reused(command, earlier.answer(), earlier.sku)
    # answered before requests had fingerprints: the same SKU and action is a retry
    if earlier.sku == command.sku and earlier.kind is command.kind:
        return earlier
    return key_reused(command, earlier.answer(), earlier.sku)


class UnknownSku(LookupError):
    """A reservation for a SKU no event has stocked: nothing to reserve (HTTP 404)."""


class RowLookup(Protocol):
    """The SKU rows the deciding worker holds (it owns the SKU)."""

    def row(self, sku: str) -> SkuRow | None: ...


async def decide(
    desk: ReservationDesk,
    command: ReservationCommand,
    timeout: float,
    owned_rows: RowLookup | None = None,
) -> ReservationReply | None:
    """The answer to a request; None when the owner did not answer within `timeout` (a retry
    with the same request id then gets the decision without deciding twice). With the rows of
    the SKU's owner, a RESERVE of a SKU never stocked raises UnknownSku, sending nothing."""
    # The row remembers only its last answers (domain.reservations.MAX_ANSWERS): a retry older
    # than those would be decided a second time, and a confirmed reservation's retry would take
    # a new hold. The index keeps every answer, so a decided request is never sent again.
    earlier = recorded_answer(desk, command)
    if earlier is not None:
        return earlier
    if owned_rows is not None and command.kind is CommandKind.RESERVE:
        row = owned_rows.row(command.sku)
        if row is None or not row.locations:
            raise UnknownSku(command.sku)
    return await desk.request(command, timeout)


def held_reservation(index: ReservationIndex, reservation_id: str) -> ReservationReply | None:
    """The RESERVE answer of a reservation that was granted; None for an id never held (unknown,
    or refused), which is not a reservation one can look at or act on."""
    reserved = index.reservation_reply(reservation_id)
    if reserved is None or reserved.status is not ReplyStatus.HELD:
        return None
    return reserved
