"""JSON bodies of every answer, errors included: {"error": code, "message": text, ...}."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from stocksync.domain.topology import Topology

Body = TypeVar("Body", bound=BaseModel)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def error(http_status: int, code: str, message: str, **extra: Any) -> web.Response:
    return json_response({**extra, "error": code, "message": message}, http_status)


async def read_model(
    model: type[Body], request: web.Request, hint: str = ""
) -> Body | web.Response:
    """The request body as `model`, or a 400 naming the first field at fault (then `hint`)."""
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return error(400, "invalid_request", f"{where}: {first['msg']}{hint}")


def check_channel(topology: Topology, channel: str | None) -> web.Response | None:
    """The 400 for a channel the topology does not know (None: no channel asked for)."""
    if channel is not None and channel not in topology.channels:
        return error(
            400,
            "unknown_channel",
            f"channel {channel!r} is not in the topology (version {topology.version})",
            known=sorted(topology.channels),
        )
    return None
