"""Query parameters of the listing endpoints, each read as a value or as the 400 that says what
is wrong with it (every error in the API's one JSON shape)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from stocksync.api.responses import error
from stocksync.service.cursors import BadCursor, decode_cursor

Handler = Callable[[web.Request], Awaitable[web.Response]]


class BadParameter(Exception):
    """A query parameter that cannot be used; `response` is the 400 to answer."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.text)
        self.response = response


def answered(handler: Handler) -> Handler:
    """A handler whose parameter readers raise BadParameter, answered with its 400."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except BadParameter as exc:
            return exc.response

    return wrapped


def bad_parameter(name: str, message: str) -> BadParameter:
    return BadParameter(error(400, "bad_parameter", f"{name}: {message}", parameter=name))


def int_param(
    request: web.Request, name: str, default: int | None, low: int, high: int | None = None
) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        raise bad_parameter(name, f"must be a whole number {bound}, not {text!r}")
    return value


def limit_param(request: web.Request, default: int, most: int) -> int:
    limit = int_param(request, "limit", default, 1, most)
    return default if limit is None else limit


def text_param(request: web.Request, name: str, most: int) -> str | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if len(text) > most:
        raise bad_parameter(name, f"at most {most} characters")
    return text


def choice_param(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if text not in choices:
        raise BadParameter(
            error(
                400,
                "bad_parameter",
                f"{name}: {text!r} is not one of {', '.join(choices)}",
                parameter=name,
                known=list(choices),
            )
        )
    return text


def time_param(request: web.Request, name: str) -> int | None:
    """A time as epoch milliseconds, given as such or in RFC 3339 with its offset
    (2026-11-20T08:00:00Z)."""
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise bad_parameter(
            name,
            f"{text!r} is not a time: give epoch milliseconds or RFC 3339 with its offset, "
            f"e.g. 2026-11-20T08:00:00Z",
        )
    return int(moment.timestamp() * 1000)


def cursor_param(request: web.Request, listing: str, filters: dict[str, Any]) -> Any:
    """The position of `?cursor=` (None: the first page); a 400 naming the cursor when it
    is not one made for this listing and these filters."""
    text = request.query.get("cursor")
    if text is None or text == "":
        return None
    try:
        return decode_cursor(text, listing, filters)
    except BadCursor as exc:
        raise BadParameter(error(400, "bad_cursor", str(exc), parameter="cursor")) from None
