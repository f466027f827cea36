"""Validation of events a channel hands to the ChannelProducer (pydantic: the edge only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stocksync.domain.events import EventKind, InvalidEvent, InventoryEvent, validate_event

IDENT = r"^[^\s:]+$"


class EventIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=200, pattern=IDENT)
    source_seq: int = Field(ge=0)
    sku: str = Field(min_length=1, max_length=200)
    location: str = Field(min_length=1, max_length=200, pattern=IDENT)
    quantity: int
    occurred_at: int = Field(ge=0, description="UTC epoch milliseconds")
    kind: EventKind
    reason: str | None = Field(default=None, max_length=200)
    counterpart_location: str | None = Field(default=None, max_length=200, pattern=IDENT)

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
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, InvalidEvent):
                message = str(ctx_error)
            problems.append(f"{where}: {message} (got {err.get('input')!r})")
        raise EventRejected("; ".join(problems)) from None
