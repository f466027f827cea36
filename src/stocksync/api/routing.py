"""Requests for a SKU that another worker owns are answered by that worker.

Each worker holds the table partitions it was assigned; faust's assignor tells every worker
which HTTP URL owns which partition. A request that lands on another worker is forwarded once
(marked with FORWARDED_HEADER so it is never forwarded again), with the caller's credentials,
and the owner's answer is returned as it is. A batch is split by owner and merged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from stocksync.api.responses import error

FORWARDED_HEADER = "X-Stocksync-Forwarded"
PASSED_HEADERS = ("Authorization", "X-API-Key", "Content-Type", "Idempotency-Key")
FORWARD_TIMEOUT_S = 5.0
SERVED_BY_HEADER = "X-Stocksync-Served-By"


class KeyOwners(Protocol):
    def owner_of(self, sku: str) -> str | None:
        """The URL of the worker owning the SKU, None when it is this worker."""
        ...

    def other_workers(self) -> list[str]:
        """The URLs of the other workers of the group."""
        ...


class Router:
    def __init__(self, owners: KeyOwners) -> None:
        self.owners = owners
        self._session: aiohttp.ClientSession | None = None

    def owner_for(self, request: web.Request, sku: str) -> str | None:
        if request.headers.get(FORWARDED_HEADER):
            return None  # already forwarded once: answer here whatever the assignment says
        return self.owners.owner_of(sku)

    def group(self, request: web.Request, skus: Iterable[str]) -> dict[str | None, list[str]]:
        """SKUs by owning worker (None: this one)."""
        groups: dict[str | None, list[str]] = defaultdict(list)
        for sku in skus:
            groups[self.owner_for(request, sku)].append(sku)
        return groups

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
            )
        return self._session

    async def close(self, _app: web.Application | None = None) -> None:
        if self._session is not None:
            await self._session.close()

    async def forward(
        self,
        request: web.Request,
        owner: str,
        body: bytes | None = None,
        timeout_s: float = FORWARD_TIMEOUT_S,
    ) -> web.Response:
        headers = {h: request.headers[h] for h in PASSED_HEADERS if h in request.headers}
        headers[FORWARDED_HEADER] = "1"
        url = f"{owner}{request.rel_url}"
        try:
            async with self.session().request(
                request.method,
                url,
                headers=headers,
                data=body,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                payload = await resp.read()
                return web.Response(
                    status=resp.status,
                    body=payload,
                    content_type=resp.content_type,
                    headers={SERVED_BY_HEADER: owner},
                )
        except (TimeoutError, aiohttp.ClientError) as exc:
            return error(
                503,
                "owner_unreachable",
                f"the worker owning this SKU ({owner}) did not answer: {exc!r}; retry",
                owner=owner,
            )

    def find_elsewhere(self) -> Middleware:
        """A reservation is looked up by id, which does not name its SKU: when this worker
        does not know it, ask the others (once each) and return the first that does."""

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            response = await handler(request)
            if (
                response.status != 404
                or request.headers.get(FORWARDED_HEADER)
                or not request.path.startswith("/v1/reservations/")
            ):
                return response
            body = await request.read()
            for url in self.owners.other_workers():
                answer = await self.forward(request, url, body)
                if answer.status not in (404, 503):
                    return answer
            return response

        return middleware

    async def batch(
        self, request: web.Request, owner: str, skus: list[str], channel: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        """Look a sub-batch up at its owner: (items, unknown)."""
        body: dict[str, Any] = {"skus": skus}
        if channel is not None:
            body["channel"] = channel
        headers = {h: request.headers[h] for h in PASSED_HEADERS if h in request.headers}
        headers[FORWARDED_HEADER] = "1"
        async with self.session().post(f"{owner}/v1/atp/batch", json=body, headers=headers) as resp:
            if resp.status != 200:
                raise web.HTTPServiceUnavailable(
                    text=f"the worker {owner} answered {resp.status} for a sub-batch"
                )
            answer = await resp.json()
        return answer["items"], answer["unknown"]


ROUTER_KEY = web.AppKey("stocksync_router", Router)
