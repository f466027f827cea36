"""aiohttp's own protocol errors as the API's JSON errors: `app_runner` instead of web.AppRunner.

aiohttp answers some requests before any handler or middleware runs: a request line over
max_line_size (8190 bytes), a header over max_field_size (8190 bytes), more than max_headers
(128) headers, a request line that is not HTTP. It answers them, and a handler's uncaught
exception (500) or timeout (504), from RequestHandler.handle_error, in plain text. Every other
error of the API is JSON (stocksync.api.responses), so clients would need a second parser for
exactly the errors they understand least. `app_runner` serves an app with a RequestHandler
whose handle_error answers `{"error": code, "message": text, "limit": n}` with aiohttp's status.

aiohttp's status is kept: 3.14.5 answers every parse error with 400 (web_protocol.py,
RequestHandler.data_received), never 414 or 431.

Checked against aiohttp 3.14.5, with its C parser (aiohttp._http_parser) and the pure-Python
one (AIOHTTP_NO_EXTENSIONS=1). 3.14.5 has no public way to choose the handler class: Server's
__call__, the protocol factory the site hands to loop.create_server, builds RequestHandler
itself, and Application._make_handler builds a plain Server (Application may not be
subclassed). So the runner turns the server it makes into a Server whose __call__ builds the
subclass. That leans on private names, AppRunner._make_server and Server's _loop and _kwargs,
as 3.14.5 has them: tests/unit/api/test_protocol_errors.py fails if an upgrade changes them.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from stocksync.api.responses import error
from stocksync.domain.limits import RESERVATION_ID_MAX, SKU_MAX

# What LineTooLong says it was reading when the request line (not a header) was too long: the C
# parser passes the request target, "/v1/atp/...", the Python parser the whole line, "GET /...".
# A header name never starts so ("/" is not a token character); a header value could, and is
# then named a request line: the answer is a 400 either way, only its words differ.
_REQUEST_LINE = re.compile(rb"(?:[A-Z]+ )?/")

_REASON_CHARS = 200  # of the parser's own words kept in a bad_request message


def _limit(exc: LineTooLong, fallback: int) -> int:
    limit = exc.args[1] if len(exc.args) > 1 else None
    return limit if isinstance(limit, int) else fallback


def _parser_reason(exc: HttpProcessingError) -> str:
    # The C parser's words come first, then (after a blank line) the bytes it choked on and a
    # caret: keep the words, on one line and short, as the client's bytes can be anything.
    words = " ".join(exc.message.split("\n\n", 1)[0].split()).rstrip(":")
    return words[:_REASON_CHARS] or "malformed request"


class JsonErrorHandler(RequestHandler):
    """aiohttp's RequestHandler, whose error answers are the API's JSON errors."""

    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own first: it logs the error as it always has, and raises ConnectionError
        # when part of an answer was already sent. Its plain-text answer is dropped.
        super().handle_error(request, status, exc, message)
        code, text, extra = self._describe(status, exc)
        response = error(status, code, text, **extra)
        # The parser's state after an error is unknown, so aiohttp closes the connection.
        response.force_close()
        return response

    def _describe(self, status: int, exc: BaseException | None) -> tuple[str, str, dict[str, Any]]:
        if isinstance(exc, LineTooLong):
            line = exc.args[0] if exc.args else b""
            if isinstance(line, bytes | bytearray) and _REQUEST_LINE.match(line):
                limit = _limit(exc, self.max_line_size)
                return (
                    "request_line_too_long",
                    (
                        f"the request line (method, path and query) is over {limit} bytes; "
                        f"a SKU is at most {SKU_MAX} characters, so check what the path holds"
                    ),
                    {"limit": limit},
                )
            limit = _limit(exc, self.max_field_size)
            return (
                "headers_too_large",
                (
                    f"a request header (name and value) is over {limit} bytes; send it shorter "
                    f"(an Idempotency-Key is at most {RESERVATION_ID_MAX} characters)"
                ),
                {"limit": limit},
            )
        if isinstance(exc, HttpProcessingError):
            # The parser's only words for a header count over max_headers (both parsers).
            if exc.message == "Too many headers received":
                return (
                    "headers_too_large",
                    f"more than {self.max_headers} request headers; send fewer",
                    {"limit": self.max_headers},
                )
            return (
                "bad_request",
                (
                    f"not a valid HTTP/1.1 request ({_parser_reason(exc)}); "
                    "send METHOD /path HTTP/1.1, then headers"
                ),
                {},
            )
        if status == HTTPStatus.INTERNAL_SERVER_ERROR:
            # No exception text: it is logged, and may name internals.
            return "internal_error", "the server failed to answer; retry, or report it", {}
        if status == HTTPStatus.GATEWAY_TIMEOUT:
            return "timeout", "the server took too long to answer; retry", {}
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        return phrase.lower().replace(" ", "_"), phrase, {}


class _JsonErrorServer(web.Server):
    """A web.Server whose connections are handled by JsonErrorHandler."""

    def __call__(self) -> RequestHandler:
        # Server.__call__ of 3.14.5 less its fallback that drops unknown handler kwargs with a
        # warning: a misspelt kwarg here is a bug the tests should see, not a log line.
        return JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class _JsonErrorRunner(web.AppRunner):
    __slots__ = ()

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Application._make_handler builds a plain web.Server and Application cannot be
        # subclassed; Server has no __slots__ and _JsonErrorServer adds no state, so changing
        # the class keeps every attribute the application set.
        server.__class__ = _JsonErrorServer
        return server


def app_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """web.AppRunner(app, **kwargs), whose protocol-level errors (400 for a request line or
    header over aiohttp's limits, or not HTTP; 500, 504) are JSON like every other error."""
    return _JsonErrorRunner(app, **kwargs)
