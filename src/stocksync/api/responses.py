"""JSON bodies of every answer, errors included: {"error": code, "message": text, ...}."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def error(http_status: int, code: str, message: str, **extra: Any) -> web.Response:
    return json_response({**extra, "error": code, "message": message}, http_status)
