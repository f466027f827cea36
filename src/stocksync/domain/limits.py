"""Size limits of what producers may put on the input topics: the one place they are defined.

Every string of the input subjects (stock-event, sale-event, reservation-command) has a maximum
length, in characters (Python `len`, i.e. Unicode code points; UTF-8 takes 1 to 4 bytes each).
The worker checks them while decoding (`validate_event`, `validate_command`), so a value over a
limit is dead-lettered with error `invalid` and never reaches a table row, an audit entry or a
log line. The edges (ChannelProducer, the HTTP API) check the same constants, so their callers
get the error up front. schemas/README.md documents them; change both together.

Limits are generous for real identifiers (UUIDs are 36 characters, GTINs 14, marketplace and
ERP ids rarely above 40) and small enough that a row, whose dedupe state, holds and remembered
answers repeat these strings, stays a few kilobytes.

Lowering a limit is a breaking change: events already in the log (kept forever and replayed
from offset 0) with longer values would be dead-lettered by a rebuilt worker.
"""

from __future__ import annotations

from typing import Final

# -- identifiers shared by events and reservation commands ------------------------------------

SKU_MAX: Final = 128  # also the message key of every input topic
LOCATION_MAX: Final = 64  # topology location ids; also counterpart_location
CHANNEL_MAX: Final = 64  # topology channel ids

# -- stock-event, sale-event ------------------------------------------------------------------

EVENT_ID_MAX: Final = 128
SOURCE_MAX: Final = 64  # one ordered producer ("wms-east", "pos-store-0042-till-07")
REASON_MAX: Final = 256  # reason code or short free text; kept in the audit trail

# Units in one event, either sign (an ADJUSTED delta, a COUNTED level). Far above any real
# quantity of one SKU at one location, and so far below 2**63 that it would take billions of
# events to push a location's on_hand out of the Avro long it is published in.
QUANTITY_MAX: Final = 1_000_000_000

# -- reservation-command ----------------------------------------------------------------------

# A RESERVE's reservation id; through the HTTP API it is the Idempotency-Key.
RESERVATION_ID_MAX: Final = 128
# A RESERVE's request id is its Idempotency-Key; the other commands' ids are composed as
# "<action>:<reservation id>:<suffix>" by the HTTP API (action "confirm", "release" or
# "extend", suffix an Idempotency-Key or a UUID) and by the worker (EXPIRE:
# "expire:<reservation id>:<expires_at>"), so this must hold two ids and the separators.
REQUEST_ID_MAX: Final = 2 * RESERVATION_ID_MAX + 16
# issued_at and ttl_ms (epoch ms, and ms): their sum, a hold's expires_at, must fit the Avro
# long of the reply; 2**53 is also the largest integer a JSON/JavaScript client reads exactly.
TIME_MS_MAX: Final = 2**53


def too_long(field: str, length: int, limit: int) -> str:
    """The reason given for a string over its limit (the value itself is left out: it may be
    a megabyte)."""
    return f"{field} is {length} characters, the limit is {limit}"
