"""Opaque page cursors: base64url of a small JSON document naming the listing, the filters the
first page was asked with and the position reached.

The filters are in the cursor because a position only means something under them: a cursor
replayed with other filters (or against another listing) is refused, never silently read as
a position that would skip or repeat items. Clients treat the string as opaque; its layout
may change with the version number.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

CURSOR_VERSION = 1
MAX_CURSOR_CHARS = 4096  # a cursor is a few hundred bytes; more is not one of ours


class BadCursor(ValueError):
    """The cursor is not one this API made for this listing and these filters; the message
    says which and what to do."""


def encode_cursor(listing: str, filters: Mapping[str, Any], position: Any) -> str:
    document = {"v": CURSOR_VERSION, "l": listing, "f": dict(filters), "p": position}
    raw = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str, listing: str, filters: Mapping[str, Any]) -> Any:
    """The position a cursor holds; BadCursor when it cannot be used here."""
    if len(text) > MAX_CURSOR_CHARS:
        raise BadCursor(f"cursor is over {MAX_CURSOR_CHARS} characters: not one this API made")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadCursor("cursor is not one this API made: pass next_cursor as it came") from None
    if not isinstance(document, dict) or document.get("v") != CURSOR_VERSION:
        raise BadCursor("cursor is not one this API made: pass next_cursor as it came")
    if document.get("l") != listing:
        raise BadCursor(f"cursor belongs to another listing ({document.get('l')!r}), not {listing}")
    # compared as JSON gives them back: a tuple and a list, an int and its float are alike
    if document.get("f") != json.loads(json.dumps(dict(filters))):
        raise BadCursor(
            "cursor was made for other filters: repeat the first page's parameters unchanged "
            "with it, or start again without a cursor"
        )
    return document.get("p")


def string_position(value: Any, length: int) -> tuple[str, ...]:
    """A position of `length` strings (JSON gives a list); BadCursor for anything else."""
    if (
        not isinstance(value, list)
        or len(value) != length
        or not all(isinstance(part, str) for part in value)
    ):
        raise BadCursor("cursor is not one this API made: pass next_cursor as it came")
    return tuple(value)
