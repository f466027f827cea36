"""What a channel may hand to the ChannelProducer: errors that name the field to fix, and the
worker's size limits applied before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest
from msgspec.structs import replace

from stocksync.channels.validation import EventRejected, validated_event
from stocksync.domain.events import EventKind, InvalidEvent, InventoryEvent, validate_event
from stocksync.domain.limits import (
    EVENT_ID_MAX,
    LOCATION_MAX,
    QUANTITY_MAX,
    REASON_MAX,
    SKU_MAX,
    SOURCE_MAX,
)


def fields(**changes: Any) -> dict[str, Any]:
    base = {
        "event_id": "pos-1-000042",
        "source": "pos-1",
        "source_seq": 42,
        "sku": "SKU-1",
        "location": "store-1",
        "quantity": 1,
        "occurred_at": 1_700_000_000_000,
        "kind": "SOLD",
    }
    return {**base, **changes}


def rejection(**changes: Any) -> str:
    with pytest.raises(EventRejected) as caught:
        validated_event(**fields(**changes))
    return str(caught.value)


def test_valid_fields_become_an_inventory_event() -> None:
    event = validated_event(**fields(reason="walk-in"))
    assert event == InventoryEvent(
        event_id="pos-1-000042",
        source="pos-1",
        source_seq=42,
        sku="SKU-1",
        location="store-1",
        quantity=1,
        occurred_at=1_700_000_000_000,
        kind=EventKind.SOLD,
        reason="walk-in",
    )


@pytest.mark.parametrize(
    ("kind", "quantity"),
    [("ADJUSTED", -3), ("ADJUSTED", 2), ("COUNTED", 0), ("SAFETY_STOCK_SET", 0), ("RECEIVED", 5)],
)
def test_signed_and_absolute_quantities_are_accepted_where_they_make_sense(
    kind: str, quantity: int
) -> None:
    assert validated_event(**fields(kind=kind, quantity=quantity)).quantity == quantity


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"location": "store 1"}, "location"),
        ({"location": "dc:1"}, "location"),
        ({"location": ""}, "location"),
        ({"source": "pos 1"}, "source"),
        ({"source_seq": -1}, "source_seq"),
        ({"occurred_at": -1}, "occurred_at"),
        ({"sku": ""}, "sku"),
        ({"event_id": ""}, "event_id"),
        ({"kind": "STOLEN"}, "kind"),
        ({"quantity": "three"}, "quantity"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_rejection_names_the_field(changes: dict[str, Any], field: str) -> None:
    message = rejection(**changes)
    assert message.startswith(f"{field}:")


def test_rejection_shows_the_value_that_was_sent() -> None:
    assert "'store 1'" in rejection(location="store 1")


@pytest.mark.parametrize("kind", ["SOLD", "RESERVED", "RECEIVED", "RETURNED"])
def test_zero_units_for_a_positive_kind_is_rejected_naming_quantity(kind: str) -> None:
    message = rejection(kind=kind, quantity=0)
    assert "quantity" in message
    assert kind in message


def test_zero_adjustment_is_rejected() -> None:
    assert "non-zero" in rejection(kind="ADJUSTED", quantity=0)


def test_negative_count_is_rejected() -> None:
    assert "COUNTED quantity -1" in rejection(kind="COUNTED", quantity=-1)


def test_missing_field_is_named() -> None:
    data = fields()
    del data["sku"]
    with pytest.raises(EventRejected, match=r"^sku:"):
        validated_event(**data)


def test_every_problem_is_reported_at_once() -> None:
    message = rejection(location="store 1", source_seq=-1)
    assert "location:" in message
    assert "source_seq:" in message


# --- size limits: the worker's, refused here before anything is sent ----------------------

# (field, limit, other fields that make it meaningful)
STRING_LIMITS = [
    ("event_id", EVENT_ID_MAX, {}),
    ("source", SOURCE_MAX, {}),
    ("sku", SKU_MAX, {}),
    ("location", LOCATION_MAX, {}),
    ("reason", REASON_MAX, {}),
    ("counterpart_location", LOCATION_MAX, {"kind": "TRANSFER_OUT"}),
]


@pytest.mark.parametrize(("field", "limit", "extra"), STRING_LIMITS)
def test_a_string_at_its_limit_is_accepted(field: str, limit: int, extra: dict[str, Any]) -> None:
    event = validated_event(**fields(**extra, **{field: "x" * limit}))
    assert getattr(event, field) == "x" * limit


@pytest.mark.parametrize(("field", "limit", "extra"), STRING_LIMITS)
def test_a_string_one_over_its_limit_is_rejected_naming_the_field_and_limit(
    field: str, limit: int, extra: dict[str, Any]
) -> None:
    message = rejection(**extra, **{field: "x" * (limit + 1)})
    assert message == f"{field}: {limit + 1} characters, the limit is {limit}"


@pytest.mark.parametrize(("field", "limit", "extra"), STRING_LIMITS)
def test_the_worker_rejects_the_same_string_one_over_its_limit(
    field: str, limit: int, extra: dict[str, Any]
) -> None:
    # what a producer other than the ChannelProducer would get back in the dead letter
    at_limit = validated_event(**fields(**extra, **{field: "x" * limit}))
    with pytest.raises(
        InvalidEvent, match=f"^{field} is {limit + 1} characters, the limit is {limit}$"
    ):
        validate_event(replace(at_limit, **{field: "x" * (limit + 1)}))


def test_a_reason_over_256_characters_is_rejected_without_echoing_it() -> None:
    message = rejection(reason="r" * 1_048_576)
    assert message == "reason: 1048576 characters, the limit is 256"


@pytest.mark.parametrize("quantity", [QUANTITY_MAX, -QUANTITY_MAX])
def test_an_adjustment_at_the_quantity_limit_is_accepted(quantity: int) -> None:
    assert validated_event(**fields(kind="ADJUSTED", quantity=quantity)).quantity == quantity


@pytest.mark.parametrize("quantity", [QUANTITY_MAX + 1, -QUANTITY_MAX - 1])
def test_a_quantity_beyond_the_limit_is_rejected_naming_quantity(quantity: int) -> None:
    message = rejection(kind="ADJUSTED", quantity=quantity)
    assert message.startswith("quantity:")
    assert str(QUANTITY_MAX) in message
