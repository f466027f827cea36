"""Reservations that cannot oversell: commands decided by the SKU's single writer.

A RESERVE is accepted only if the channel's ATP (after its policy) covers it; the channel's
sourcing rule (source_lines) then splits it into per-location lines, all taken in the SKU's row
at once, so any quantity up to the one published for the channel can be held. Commands carry a
request id bound to the request (request_fingerprint): a retried request gets the recorded
answer and never a second hold, another request under the same id is refused. Expiry is itself a
command written to the log (by the worker that owns the SKU), so a replay decides the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from msgspec.structs import asdict, replace

from stocksync.domain.effects import Effect, ReservationFulfilled
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
    HoldStatus,
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


def request_fingerprint(cmd: ReservationCommand) -> str:
    """What makes a request the same request: every field but its id and clock. A request id
    (an Idempotency-Key) is bound to it, as payment APIs bind theirs."""
    fields = (
        cmd.kind.value,
        cmd.sku,
        cmd.reservation_id,
        cmd.channel,
        cmd.quantity,
        cmd.location,
        cmd.ttl_ms,
        cmd.allow_partial,
    )
    return hashlib.blake2b(repr(fields).encode(), digest_size=8).hexdigest()


def source_lines(
    available: Mapping[str, int], tiers: Iterable[Iterable[str]], quantity: int
) -> dict[str, int]:
    """The sourcing rule: where `quantity` units are taken, location -> units. Tiers in
    priority order; within a tier the fewest locations, then the most stock (ties by id):
    taking the largest first is what needs the fewest. Takes less than `quantity` only when
    the tiers hold less."""
    lines: dict[str, int] = {}
    remaining = quantity
    for tier in tiers:
        for loc in sorted(tier, key=lambda loc: (-available.get(loc, 0), loc)):
            if remaining <= 0:
                return lines
            take = min(available.get(loc, 0), remaining)
            if take <= 0:
                break  # the rest of the tier is as empty
            lines[loc] = take
            remaining -= take
    return lines


def _with_reserved(row: SkuRow, lines: Mapping[str, int], sign: int) -> SkuRow:
    locations = dict(row.locations)
    for location, units in lines.items():
        stock = locations.get(location, EMPTY_LOCATION)
        locations[location] = replace(stock, reserved=max(0, stock.reserved + sign * units))
    return replace(row, locations=locations)


def _reserve(
    row: SkuRow, cmd: ReservationCommand, topology: Topology, hold: Hold | None
) -> tuple[SkuRow, ReservationReply]:
    channel = topology.channels.get(cmd.channel)
    if channel is None:
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
            lines=hold.allocation(),
        )
    tiers = channel.tiers()
    if cmd.location is not None:
        tiers = ((cmd.location,),) if cmd.location in channel.locations else ()
    if not tiers:
        reason = f"location {cmd.location!r} does not serve {cmd.channel}"
        return row, _refused(cmd, None, 0, reason)
    if not row.locations:
        return row, _refused(cmd, None, 0, f"unknown SKU {cmd.sku!r}: no event has stocked it")
    safety = topology.safety_stock_by_location
    pool = {
        loc: location_atp(row.locations.get(loc, EMPTY_LOCATION), safety.get(loc, 0))
        for tier in tiers
        for loc in tier
    }
    # the channel's quantity (after its policy) is what it was promised; the pool is at least
    # that much unless a location was asked for
    available = min(channel_atp(row, topology, cmd.channel), sum(pool.values()))
    granted = min(cmd.quantity, available) if cmd.allow_partial else cmd.quantity
    if granted <= 0 or granted > available:
        where = f" at {cmd.location}" if cmd.location is not None else ""
        reason = f"{available} available to {cmd.channel}{where}, {cmd.quantity} requested"
        return row, _refused(cmd, cmd.location, available, reason)
    lines = source_lines(pool, tiers, granted)
    first = next(iter(lines))
    expires_at = cmd.issued_at + cmd.ttl_ms
    holds = dict(row.holds)
    holds[cmd.reservation_id] = Hold(cmd.channel, first, granted, expires_at, lines)
    row = _with_reserved(replace(row, holds=holds), lines, 1)
    return row, _reply(
        cmd,
        ReplyStatus.HELD,
        channel=cmd.channel,
        location=first,
        quantity=granted,
        requested=cmd.quantity,
        available=available,
        expires_at=expires_at,
        lines=lines,
    )


def _refused(
    cmd: ReservationCommand, location: str | None, available: int, reason: str
) -> ReservationReply:
    return _reply(
        cmd,
        ReplyStatus.REJECTED,
        channel=cmd.channel,
        location=location,
        requested=cmd.quantity,
        available=max(0, available),
        reason=reason,
    )


# The reservation state machine: what each action does in each state of a hold. Not listed:
# the action is refused (WRONG_STATE) and nothing changes.
#
#   state      action   -> state      units
#   held       CONFIRM  -> confirmed  stay reserved (an open order line)
#   held       EXTEND   -> held       -
#   held       RELEASE  -> released   back to ATP
#   held       EXPIRE   -> expired    back to ATP (if its time is still up)
#   confirmed  CONFIRM  -> confirmed  - (said again)
#   confirmed  EXPIRE   -> confirmed  - (an order line does not expire)
#   confirmed  CANCEL   -> cancelled  back to ATP
#   confirmed  FULFILLED event naming it -> fulfilled (domain/fold.py: shipped units leave)
_ALLOWED = {
    HoldStatus.HELD: frozenset(
        {CommandKind.CONFIRM, CommandKind.EXTEND, CommandKind.RELEASE, CommandKind.EXPIRE}
    ),
    HoldStatus.CONFIRMED: frozenset({CommandKind.CONFIRM, CommandKind.EXPIRE, CommandKind.CANCEL}),
}
_RETURNING = {
    CommandKind.RELEASE: ReplyStatus.RELEASED,
    CommandKind.EXPIRE: ReplyStatus.EXPIRED,
    CommandKind.CANCEL: ReplyStatus.CANCELLED,
}


def _act(row: SkuRow, cmd: ReservationCommand, hold: Hold) -> tuple[SkuRow, ReservationReply]:
    """CONFIRM, EXTEND, RELEASE, EXPIRE or CANCEL of an existing hold."""
    details: dict[str, object] = {
        "channel": hold.channel,
        "location": hold.location,
        "quantity": hold.quantity,
        "lines": hold.allocation(),
    }
    state = hold.status
    if cmd.kind not in _ALLOWED[state]:
        fix = {
            CommandKind.CANCEL: "it is not confirmed: release it instead",
            CommandKind.RELEASE: "it is a confirmed order line: cancel it instead",
            CommandKind.EXTEND: "it is a confirmed order line, which does not expire",
        }.get(cmd.kind, "")
        reason = f"cannot {cmd.kind.value.lower()} reservation {cmd.reservation_id!r}: {fix}"
        return row, _reply(cmd, ReplyStatus.WRONG_STATE, reason=reason, **details)
    holds = dict(row.holds)
    if state is HoldStatus.CONFIRMED and cmd.kind is not CommandKind.CANCEL:
        return row, _reply(
            cmd, ReplyStatus.CONFIRMED, expires_at=hold.expires_at, reason="", **details
        )
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
    if cmd.kind is CommandKind.CONFIRM:
        # the units stay reserved as an open order line until fulfilled or cancelled
        holds[cmd.reservation_id] = replace(hold, status=HoldStatus.CONFIRMED)
        return replace(row, holds=holds), _reply(cmd, ReplyStatus.CONFIRMED, **details)
    del holds[cmd.reservation_id]
    row = _with_reserved(replace(row, holds=holds), hold.allocation(), -1)
    return row, _reply(cmd, _RETURNING[cmd.kind], **details)


def decide(
    row: SkuRow, cmd: ReservationCommand, topology: Topology
) -> tuple[SkuRow, ReservationReply]:
    """The row after the command (without bookkeeping) and the answer."""
    hold = row.holds.get(cmd.reservation_id)
    if cmd.kind is CommandKind.RESERVE:
        return _reserve(row, cmd, topology, hold)
    if hold is None:
        return row, _reply(
            cmd, ReplyStatus.NOT_FOUND, reason=f"no active hold {cmd.reservation_id!r}"
        )
    return _act(row, cmd, hold)


# Answers after which the held units changed, so the channels selling them are told again.
_MOVES_UNITS = frozenset(
    {ReplyStatus.HELD, ReplyStatus.RELEASED, ReplyStatus.EXPIRED, ReplyStatus.CANCELLED}
)


def key_reused(cmd: ReservationCommand, first: Answer, first_sku: str) -> ReservationReply:
    """The answer to a request whose id was first used for another request (on `first_sku`):
    nothing decided, the first request named."""
    return _reply(
        cmd,
        ReplyStatus.KEY_REUSED,
        channel=first.channel,
        location=first.location,
        quantity=first.quantity,
        requested=first.requested,
        reason=(
            f"request id {cmd.request_id!r} was used for another request ({first.kind.value} "
            f"{first.requested or first.quantity} of {first_sku} for "
            f"{first.channel or 'its channel'}, answered {first.status.value}); use a new key "
            f"for a new request"
        ),
        fingerprint=first.fingerprint,
    )


def apply_command(
    row: SkuRow | None, cmd: ReservationCommand, topology: Topology, offset: int = -1
) -> CommandResult:
    """Decide a command read at `offset` of its partition (-1: not from the log).

    A command at or below the row's last applied offset is a redelivery and changes nothing,
    so the row stays a pure function of the log; a retry is a new log record and is answered
    from the row's memory of answers (or decided again once that memory has moved on). A
    request id used again for another request (another fingerprint) is answered KEY_REUSED
    and changes nothing.
    """
    if row is None:
        row = SkuRow(sku=cmd.sku)
    fingerprint = request_fingerprint(cmd)
    answered = row.answers.get(cmd.request_id)
    if answered is not None:
        if answered.fingerprint and answered.fingerprint != fingerprint:
            return CommandResult(row, key_reused(cmd, answered, row.sku), (), False)
        return CommandResult(row, ReservationReply.of(answered, cmd.request_id, cmd.sku), (), False)
    if 0 <= offset <= row.command_offset:
        return CommandResult(row, None, (), False)
    new_row, reply = decide(row, cmd, topology)
    reply = replace(reply, fingerprint=fingerprint)
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
    if reply.status in _MOVES_UNITS and reply.lines:
        touched: dict[str, None] = {}
        for location in reply.lines:
            touched.update(dict.fromkeys(topology.channels_for(location)))
        new_row, changes = project_channels(new_row, topology, touched)
        effects.extend(changes)
    return CommandResult(new_row, reply, tuple(effects), True)


def fulfilled_reply(fulfilled: ReservationFulfilled) -> ReservationReply:
    """How a reservation ended when a FULFILLED event shipped its last line: what looking it up
    answers (no request asked; the request id names the event)."""
    return ReservationReply(
        request_id=f"fulfilled:{fulfilled.reservation_id}:{fulfilled.event_id}",
        reservation_id=fulfilled.reservation_id,
        kind=CommandKind.CONFIRM,  # the last action a requester took on it
        status=ReplyStatus.FULFILLED,
        sku=fulfilled.sku,
        channel=fulfilled.channel,
        quantity=fulfilled.quantity,
        reason=f"shipped by event {fulfilled.event_id}",
    )


def expired_holds(row: SkuRow, now_ms: int) -> list[str]:
    """Reservation ids whose time ran out (the worker writes an EXPIRE for each)."""
    return [
        rid
        for rid, hold in row.holds.items()
        if hold.status is HoldStatus.HELD and hold.expires_at <= now_ms
    ]
