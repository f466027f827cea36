"""Validation of events a channel hands to the ChannelProducer (pydantic: the edge only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stocksync.domain.events import (
    EventKind,
    InvalidEvent,
    InventoryEvent,
    validate_event,
)
from stocksync.domain.limits import (
    EVENT_ID_MAX,
    LOCATION_MAX,
    QUANTITY_MAX,
    REASON_MAX,
    RESERVATION_ID_MAX,
    SKU_MAX,
    SOURCE_MAX,
)

IDENT = r"^[^\s:]+$"


class EventIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # the worker's limits (stocksync.domain.limits): refused here rather than dead-lettered
    event_id: str = Field(min_length=1, max_length=EVENT_ID_MAX)
    source: str = Field(min_length=1, max_length=SOURCE_MAX, pattern=IDENT)
    source_seq: int = Field(ge=0)
    sku: str = Field(min_length=1, max_length=SKU_MAX)
    location: str = Field(min_length=1, max_length=LOCATION_MAX, pattern=IDENT)
    quantity: int = Field(ge=-QUANTITY_MAX, le=QUANTITY_MAX)
    occurred_at: int = Field(ge=0, description="UTC epoch milliseconds")
    kind: EventKind
    reason: str | None = Field(default=None, max_length=REASON_MAX)
    counterpart_location: str | None = Field(default=None, max_length=LOCATION_MAX, pattern=IDENT)
    reservation_id: str | None = Field(default=None, max_length=RESERVATION_ID_MAX)

    @model_validator(mode="after")
    def _semantics(self) -> EventIn:
        validate_event(self.to_event())
        return self

    def to_event(self) -> InventoryEvent:
        return InventoryEvent(
            event_id=self.event_id,
            source=self.source,
            source_seq=self.source_seq,
            sku=self.sku,
            location=self.location,
            quantity=self.quantity,
            occurred_at=self.occurred_at,
            kind=self.kind,
            reason=self.reason,
            counterpart_location=self.counterpart_location,
            reservation_id=self.reservation_id,
        )


class EventRejected(ValueError):
    """The event cannot be sent; the message says which field and why."""


def validated_event(**fields: object) -> InventoryEvent:
    try:
        return EventIn.model_validate(fields).to_event()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "event"
            message = err["msg"]
            ctx = err.get("ctx") or {}
            if err["type"] == "string_too_long":  # the length, not a value of any size
                limit = ctx["max_length"]
                problems.append(f"{where}: {len(err['input'])} characters, the limit is {limit}")
                continue
            ctx_error = ctx.get("error")
            if isinstance(ctx_error, InvalidEvent):
                message = str(ctx_error)
            problems.append(f"{where}: {message} (got {err.get('input')!r})")
        raise EventRejected("; ".join(problems)) from None
