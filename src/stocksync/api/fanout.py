"""A listing across workers: the worker a client asks gets a slice from every other worker
(service/listings.py) and merges them into the page.

The other workers are asked with the client's own request (same path, query and
credentials, so they check the same key) marked with FORWARDED_HEADER; a listing request so
marked is answered with the worker's slice, internal JSON:

  {"items": [{"at": [position], "item": {...}}], "covered": [position] | null,
   "partitions": [0, 2]}

A worker that does not answer, or partitions no worker (or two) served, make the page a 503
with Retry-After: never a page with a hole in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from stocksync.api.responses import error, json_response
from stocksync.api.routing import FORWARDED_HEADER, PASSED_HEADERS, Router
from stocksync.service.listings import Page, Position, Slice, merge_slices

log = structlog.get_logger("stocksync.http")

RETRY_AFTER_S = 1
JsonSlice = Slice[dict[str, Any]]


def unavailable(code: str, message: str, **extra: Any) -> web.Response:
    response = error(503, code, message, retry_after_s=RETRY_AFTER_S, **extra)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def is_slice_request(request: web.Request) -> bool:
    """Asked by another worker for this one's slice."""
    return bool(request.headers.get(FORWARDED_HEADER))


def slice_body(part: JsonSlice) -> dict[str, Any]:
    return {
        "items": [{"at": list(at), "item": item} for at, item in part.items],
        "covered": None if part.covered is None else list(part.covered),
        "partitions": list(part.partitions),
    }


def _position(value: Any) -> Position:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"not a position: {value!r}")
    return tuple(value)


def slice_from_body(body: Any) -> JsonSlice:
    """A slice another worker answered; ValueError when it is not one."""
    try:
        covered = body["covered"]
        return Slice(
            [(_position(entry["at"]), dict(entry["item"])) for entry in body["items"]],
            None if covered is None else _position(covered),
            tuple(int(p) for p in body["partitions"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a slice: {exc!r}") from None


class _Unanswered(Exception):
    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"{url} {why}")
        self.url = url
        self.why = why


async def _slice_of(router: Router, request: web.Request, url: str) -> JsonSlice:
    headers = {h: request.headers[h] for h in PASSED_HEADERS if h in request.headers}
    headers[FORWARDED_HEADER] = "1"
    try:
        async with router.session().get(f"{url}{request.rel_url}", headers=headers) as resp:
            if resp.status != 200:
                raise _Unanswered(url, f"answered {resp.status}: {(await resp.text())[:300]}")
            return slice_from_body(await resp.json())
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        raise _Unanswered(url, f"did not answer: {exc!r}") from None


def _coverage(slices: Sequence[JsonSlice], required: set[int]) -> web.Response | None:
    """The 503 when the workers' slices do not cover the partitions exactly once (a
    rebalance is moving them)."""
    served = [p for part in slices for p in part.partitions]
    missing = sorted(required - set(served))
    doubled = sorted({p for p in served if served.count(p) > 1})
    if not missing and not doubled:
        return None
    return unavailable(
        "partitions_moving",
        f"the workers do not serve every partition exactly once (missing {missing}, served "
        f"twice {doubled}): partitions are being reassigned; retry",
        missing=missing,
        doubled=doubled,
    )


async def gathered_page(
    request: web.Request,
    router: Router | None,
    local: JsonSlice,
    required: set[int],
    limit: int,
    others: list[str] | None = None,
) -> Page[dict[str, Any]] | web.Response:
    """The page this worker's slice and the other workers' (`others`: their URLs; None: every
    other worker of the group) make, or the 503 that says why there is none."""
    remote: list[JsonSlice] = []
    if router is not None:
        urls = router.owners.other_workers() if others is None else others
        try:
            remote = list(await asyncio.gather(*(_slice_of(router, request, u) for u in urls)))
        except _Unanswered as exc:
            log.warning(
                "listing_worker_unanswered", path=request.path, worker=exc.url, error=exc.why
            )
            return unavailable(
                "worker_unavailable",
                f"worker {exc}; a page without its part would be incomplete: retry",
                worker=exc.url,
            )
    slices = [local, *remote]
    if (moving := _coverage(slices, required)) is not None:
        return moving
    return merge_slices(slices, limit)


def slice_response(part: JsonSlice) -> web.Response:
    return json_response(slice_body(part))
