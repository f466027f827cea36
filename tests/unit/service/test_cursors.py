"""Opaque cursors: what a page hands out comes back as the same position, and a cursor that is
not one (or was made for another listing or other filters) is refused, never misread."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stocksync.service.cursors import (
    MAX_CURSOR_CHARS,
    BadCursor,
    decode_cursor,
    encode_cursor,
    string_position,
)

FILTERS = {"prefix": "SKU-", "below_atp": 5, "channel": "web"}


@given(position=st.lists(st.text(max_size=20), max_size=3))
def test_a_cursor_gives_back_its_position(position: list[str]) -> None:
    cursor = encode_cursor("skus", FILTERS, position)
    assert decode_cursor(cursor, "skus", dict(FILTERS)) == position
    # and it is safe in a query string as it is
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_cursor_made_for_other_filters_is_refused() -> None:
    cursor = encode_cursor("skus", FILTERS, ["SKU-9"])
    with pytest.raises(BadCursor, match="other filters"):
        decode_cursor(cursor, "skus", {**FILTERS, "below_atp": 6})


def test_a_cursor_of_another_listing_is_refused() -> None:
    cursor = encode_cursor("reservations", FILTERS, ["0", "SKU-9", "r"])
    with pytest.raises(BadCursor, match="another listing"):
        decode_cursor(cursor, "skus", FILTERS)


@pytest.mark.parametrize(
    "text",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps([1, 2]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"v": 99, "l": "skus"}).encode()).decode(),
        "A" * (MAX_CURSOR_CHARS + 1),
    ],
)
def test_what_is_not_a_cursor_is_refused(text: str) -> None:
    with pytest.raises(BadCursor, match="cursor"):
        decode_cursor(text, "skus", FILTERS)


@pytest.mark.parametrize("value", [None, "SKU", ["a", 1], ["a", "b"], {"p": 1}])
def test_a_position_of_the_wrong_shape_is_refused(value: object) -> None:
    with pytest.raises(BadCursor):
        string_position(value, 1)
