"""What a channel may hand to the ChannelProducer: errors that name the field to fix."""

from __future__ import annotations

from typing import Any

import pytest

from stocksync.channels.validation import EventRejected, validated_event
from stocksync.domain.events import EventKind, InventoryEvent


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
def test_signed_and_absolute_quantities_are_accepted_where_they_make_sense(kind, quantity) -> None:
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
