"""Reservations that cannot oversell: commands decided by the SKU's single writer.

A RESERVE is accepted only if the channel's ATP (after its policy) and one location's ATP
both cover it; the hold then counts as reserved at that location. Commands carry a request id;
a retried request gets the recorded answer and never a second hold. Expiry is itself a
command written to the log (by the worker that owns the SKU), so a replay decides the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from msgspec.structs import asdict, replace

from stocksync.domain.effects import Effect
from stocksync.domain.fold import project_channels
from stocksync.domain.limits import (
    CHANNEL_MAX,
    LOCATION_MAX,
    REQUEST_ID_MAX,
    RESERVATION_ID_MAX,
    SKU_MAX,
    TIME_MS_MAX,
    too_long,
)
from stocksync.domain.state import (
    EMPTY_LOCATION,
    Answer,
    Hold,
    SkuRow,
    channel_atp,
    location_atp,
)
from stocksync.domain.state import CommandKind as CommandKind  # declared with the row's answers
from stocksync.domain.state import ReplyStatus as ReplyStatus
from stocksync.domain.topology import Topology

# Replies remembered in the row, so a retried or redelivered request gets the same answer. In
# the row itself, because after a crash only the row and its changelog move together. A retry
# older than this many newer requests on the same SKU would be decided again (a held
# reservation still answers HELD: its hold is in the row); the HTTP API answers such retries
# from the reservation index and does not send them (stocksync.service.reservations).
MAX_ANSWERS = 64


@dataclass(frozen=True, slots=True)
class ReservationCommand:
    request_id: str
    kind: CommandKind
    sku: str
    reservation_id: str  # RESERVE: the id the hold will have
    issued_at: int  # epoch ms of the requester (expiry and TTLs are measured in it)
    channel: str = ""
    quantity: int = 0
    location: str | None = None
    ttl_ms: int = 0
    allow_partial: bool = False


class InvalidCommand(ValueError):
    """A command that decodes but cannot be accepted (a field over its limit); it goes to the
    dead-letter topic, without a reply."""


def validate_command(cmd: ReservationCommand) -> None:
    """Raise InvalidCommand naming the field. Only what makes a command unfit to enter the log's
    state: what a requester merely got wrong (unknown channel, quantity 0) is decided and
    answered INVALID by `decide`."""
    # Hot path: one len() or comparison per field.
    if len(cmd.request_id) > REQUEST_ID_MAX:
        raise InvalidCommand(too_long("request_id", len(cmd.request_id), REQUEST_ID_MAX))
    if len(cmd.sku) > SKU_MAX:
        raise InvalidCommand(too_long("sku", len(cmd.sku), SKU_MAX))
    if len(cmd.reservation_id) > RESERVATION_ID_MAX:
        raise InvalidCommand(
            too_long("reservation_id", len(cmd.reservation_id), RESERVATION_ID_MAX)
        )
    if len(cmd.channel) > CHANNEL_MAX:
        raise InvalidCommand(too_long("channel", len(cmd.channel), CHANNEL_MAX))
    if cmd.location is not None and len(cmd.location) > LOCATION_MAX:
        raise InvalidCommand(too_long("location", len(cmd.location), LOCATION_MAX))
    if not -TIME_MS_MAX <= cmd.issued_at <= TIME_MS_MAX:
        raise InvalidCommand(f"issued_at {cmd.issued_at} is beyond the limit of ±{TIME_MS_MAX}")
    if not -TIME_MS_MAX <= cmd.ttl_ms <= TIME_MS_MAX:
        raise InvalidCommand(f"ttl_ms {cmd.ttl_ms} is beyond the limit of ±{TIME_MS_MAX}")


class ReservationReply(Answer, frozen=True, kw_only=True):
    """The answer to one request on one SKU. Its fields are Answer's (what the row remembers,
    so a field of the reply goes there) plus the request id and the SKU."""

    request_id: str
    sku: str

    def answer(self) -> Answer:
        """What the row remembers of this reply."""
        return Answer(**{name: getattr(self, name) for name in Answer.__struct_fields__})

    @classmethod
    def of(cls, answer: Answer, request_id: str, sku: str) -> ReservationReply:
        """The reply a remembered answer gave to `request_id` on `sku`."""
        return cls(**asdict(answer), request_id=request_id, sku=sku)


@dataclass(frozen=True, slots=True)
class CommandResult:
    row: SkuRow
    # None only for a redelivered command whose answer the row no longer remembers
    reply: ReservationReply | None
    effects: tuple[Effect, ...]
    applied: bool  # False: a retry or a redelivery, row unchanged


def _reply(cmd: ReservationCommand, status: ReplyStatus, **fields: object) -> ReservationReply:
    return ReservationReply(
        request_id=cmd.request_id,
        reservation_id=cmd.reservation_id,
        kind=cmd.kind,
        status=status,
        sku=cmd.sku,
        **fields,  # type: ignore[arg-type]
    )


def choose_location(
    row: SkuRow, topology: Topology, channel: str, wanted: str | None
) -> tuple[str | None, int]:
    """The location a hold goes to: the one asked for, else the channel's location with the
    most ATP (ties by name, so a replay chooses the same)."""
    candidates = topology.channels[channel].locations
    if wanted is not None:
        candidates = tuple(loc for loc in candidates if loc == wanted)
    best: tuple[str | None, int] = (None, 0)
    for loc in sorted(candidates):
        stock = row.locations.get(loc, EMPTY_LOCATION)
        atp = location_atp(stock, topology.default_safety_stock(loc))
        if best[0] is None or atp > best[1]:
            best = (loc, atp)
    return best


def _with_reserved(row: SkuRow, location: str, delta: int) -> SkuRow:
    stock = row.locations.get(location, EMPTY_LOCATION)
    locations = dict(row.locations)
    locations[location] = replace(stock, reserved=max(0, stock.reserved + delta))
    return replace(row, locations=locations)


def decide(
    row: SkuRow, cmd: ReservationCommand, topology: Topology
) -> tuple[SkuRow, ReservationReply]:
    """The row after the command (without bookkeeping) and the answer."""
    holds = dict(row.holds)
    hold = holds.get(cmd.reservation_id)
    if cmd.kind is CommandKind.RESERVE:
        if cmd.channel not in topology.channels:
            return row, _reply(cmd, ReplyStatus.INVALID, reason=f"unknown channel {cmd.channel!r}")
        if cmd.quantity <= 0 or cmd.ttl_ms <= 0:
            return row, _reply(cmd, ReplyStatus.INVALID, reason="quantity and ttl must be > 0")
        if hold is not None:  # same reservation id, new request id: report the hold
            return row, _reply(
                cmd,
                ReplyStatus.HELD,
                channel=hold.channel,
                location=hold.location,
                quantity=hold.quantity,
                requested=cmd.quantity,
                expires_at=hold.expires_at,
            )
        location, loc_atp = choose_location(row, topology, cmd.channel, cmd.location)
        available = min(channel_atp(row, topology, cmd.channel), loc_atp)
        granted = min(cmd.quantity, available) if cmd.allow_partial else cmd.quantity
        if location is None or granted <= 0 or granted > available:
            reason = (
                f"location {cmd.location!r} does not serve {cmd.channel}"
                if location is None
                else f"{available} available to {cmd.channel} at one location, "
                f"{cmd.quantity} requested"
            )
            return row, _reply(
                cmd,
                ReplyStatus.REJECTED,
                channel=cmd.channel,
                location=location,
                requested=cmd.quantity,
                available=max(0, available),
                reason=reason,
            )
        expires_at = cmd.issued_at + cmd.ttl_ms
        holds[cmd.reservation_id] = Hold(cmd.channel, location, granted, expires_at)
        row = _with_reserved(replace(row, holds=holds), location, granted)
        return row, _reply(
            cmd,
            ReplyStatus.HELD,
            channel=cmd.channel,
            location=location,
            quantity=granted,
            requested=cmd.quantity,
            available=available,
            expires_at=expires_at,
        )
    if hold is None:
        return row, _reply(
            cmd, ReplyStatus.NOT_FOUND, reason=f"no active hold {cmd.reservation_id!r}"
        )
    details = {"channel": hold.channel, "location": hold.location, "quantity": hold.quantity}
    if cmd.kind is CommandKind.EXTEND:
        expires_at = max(hold.expires_at, cmd.issued_at + cmd.ttl_ms)
        holds[cmd.reservation_id] = replace(hold, expires_at=expires_at)
        return replace(row, holds=holds), _reply(
            cmd, ReplyStatus.EXTENDED, expires_at=expires_at, **details
        )
    if cmd.kind is CommandKind.EXPIRE and hold.expires_at > cmd.issued_at:
        # extended after the expiry was written: the hold lives on
        return row, _reply(
            cmd, ReplyStatus.HELD, expires_at=hold.expires_at, reason="extended", **details
        )
    del holds[cmd.reservation_id]
    row = replace(row, holds=holds)
    if cmd.kind is CommandKind.CONFIRM:
        # the units stay reserved as an open order line until FULFILLED or RELEASED arrives
        return row, _reply(cmd, ReplyStatus.CONFIRMED, **details)
    row = _with_reserved(row, hold.location, -hold.quantity)
    status = ReplyStatus.EXPIRED if cmd.kind is CommandKind.EXPIRE else ReplyStatus.RELEASED
    return row, _reply(cmd, status, **details)


def apply_command(
    row: SkuRow | None, cmd: ReservationCommand, topology: Topology, offset: int = -1
) -> CommandResult:
    """Decide a command read at `offset` of its partition (-1: not from the log).

    A command at or below the row's last applied offset is a redelivery and changes nothing,
    so the row stays a pure function of the log; a retry is a new log record and is answered
    from the row's memory of answers (or decided again once that memory has moved on).
    """
    if row is None:
        row = SkuRow(sku=cmd.sku)
    answered = row.answers.get(cmd.request_id)
    if answered is not None:
        return CommandResult(row, ReservationReply.of(answered, cmd.request_id, cmd.sku), (), False)
    if 0 <= offset <= row.command_offset:
        return CommandResult(row, None, (), False)
    new_row, reply = decide(row, cmd, topology)
    answers = dict(new_row.answers)
    answers[cmd.request_id] = reply.answer()
    while len(answers) > MAX_ANSWERS:
        del answers[next(iter(answers))]
    new_row = replace(
        new_row,
        answers=answers,
        revision=row.revision + 1,
        command_offset=max(offset, row.command_offset),
    )
    effects: list[Effect] = []
    if reply.location is not None and reply.status in (
        ReplyStatus.HELD,
        ReplyStatus.RELEASED,
        ReplyStatus.EXPIRED,
    ):
        new_row, changes = project_channels(
            new_row, topology, topology.channels_for(reply.location)
        )
        effects.extend(changes)
    return CommandResult(new_row, reply, tuple(effects), True)


def expired_holds(row: SkuRow, now_ms: int) -> list[str]:
    """Reservation ids whose time ran out (the worker writes an EXPIRE for each)."""
    return [rid for rid, hold in row.holds.items() if hold.expires_at <= now_ms]
