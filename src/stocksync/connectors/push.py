"""Pushing to the channel: take the most urgent value the plan holds when the budget and a
request slot allow, PUT it to the channel's API, and settle the answer.

  200..299       acknowledged: written to the ledger (its offsets are released once recorded)
  429            retried when the channel says (Retry-After); the whole budget waits as long
  408, 425, 5xx, timeout, connection error    retried with backoff
  409            the channel holds a newer version: not retried (`push_refused`)
  other 4xx      refused: not retried (`push_refused`)

The HTTP exchange is a function given to the pusher (`Transport`), so the decisions are tested
without a network and the aiohttp client on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import structlog

from stocksync.connectors.ledger import now_ms
from stocksync.connectors.plan import Outcome, Push, Quantity
from stocksync.connectors.settings import ConnectorSettings
from stocksync.connectors.state import ConnectorState

log = structlog.get_logger("stocksync.connector")

IDLE_WAKE_S = 1.0
RETRYABLE = frozenset({408, 425, 429})
ERROR_TEXT_CHARS = 200


def outcome_of(status: int | None) -> Outcome:
    """What an HTTP answer means for the value sent (None: no answer at all)."""
    if status is None or status in RETRYABLE or status >= 500:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.ACKNOWLEDGED
    if status == 409:
        return Outcome.STALE
    return Outcome.REJECTED


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (HTTP-dates are not used by the channels we talk to)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None  # None: no answer (timeout, connection error)
    retry_after: float | None = None
    error: str = ""  # the start of the body of a non-2xx answer, or the client error


Transport = Callable[[Quantity], Awaitable[Answer]]


async def put_quantity(
    session: aiohttp.ClientSession, endpoint_url: str, value: Quantity
) -> Answer:
    """PUT one value to the channel's API: `PUT {endpoint}/v1/inventory/{sku}`."""
    url = f"{endpoint_url}/v1/inventory/{quote(value.sku, safe='')}"
    body = {
        "quantity": value.quantity,
        "revision": value.revision,
        "policy_version": value.policy_version,
        "as_of": value.as_of,
    }
    status: int | None = None
    retry_after: float | None = None
    try:
        async with session.put(url, json=body) as resp:
            status = resp.status
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            text = await resp.text()
            return Answer(status, retry_after, text[:ERROR_TEXT_CHARS] if status >= 300 else "")
    except (aiohttp.ClientError, TimeoutError) as exc:
        # the status stays what the channel said, even when its body could not be read
        return Answer(status, retry_after, repr(exc))


class Pusher:
    def __init__(
        self,
        state: ConnectorState,
        config: ConnectorSettings,
        send: Transport,
        on_acknowledged: Callable[[Push, int], None],
    ) -> None:
        self.state = state
        self.config = config
        self.send = send
        self.on_acknowledged = on_acknowledged  # (push, sent_at epoch ms): the ledger record
        self.tasks: set[asyncio.Task[None]] = set()

    async def dispatch_forever(self) -> None:
        state = self.state
        slots = asyncio.Semaphore(self.config.concurrency)
        while True:
            now = time.monotonic()
            if not state.plan.has_ready(now):
                await self._idle(now)
                continue
            wait = state.bucket.wait_time(now)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await slots.acquire()
            push = self._take(time.monotonic())
            if push is None:
                slots.release()
                continue
            task = asyncio.ensure_future(self.push(push, slots))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _idle(self, now: float) -> None:
        """Sleep until woken (a new value, an answer, a report) or a backoff ends."""
        due = self.state.plan.next_due(now)
        timeout = IDLE_WAKE_S if due is None else min(IDLE_WAKE_S, max(0.0, due - now))
        self.state.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.state.wake.wait(), timeout)

    def _take(self, now: float) -> Push | None:
        """A token and the most urgent value, or None (and no token spent)."""
        if not self.state.bucket.try_take(now):
            return None
        push = self.state.plan.next_push(now)
        if push is None:
            self.state.bucket.refund()
        return push

    async def push(self, push: Push, slots: asyncio.Semaphore) -> None:
        sent_at = now_ms()
        self.state.counters["requests"] += 1
        try:
            answer = await self.send(push.value)
        finally:
            slots.release()
        self.settle(push, answer, sent_at)

    def settle(self, push: Push, answer: Answer, sent_at: int) -> None:
        state, value = self.state, push.value
        now = time.monotonic()
        outcome = outcome_of(answer.status)
        retry_after = answer.retry_after if answer.status == 429 else None
        if answer.status == 429:
            state.counters["rate_limited"] += 1
            pause = retry_after if retry_after is not None else self.config.retry_base_s
            state.bucket.hold(now + pause)  # the channel's word overrides our budget
        settled = state.plan.settle(value.sku, outcome, now, retry_after)
        if outcome is Outcome.ACKNOWLEDGED:
            state.counters["acknowledged"] += 1
            self.on_acknowledged(push, sent_at)
        elif outcome is Outcome.RETRY:
            state.counters["failed"] += answer.status != 429
            log.info(
                "push_retried",
                channel=self.config.channel,
                sku=value.sku,
                status=answer.status,
                attempt=push.attempt,
                retry_in=round(settled.retry_in or 0, 3),
                error=answer.error,
            )
        else:
            state.counters["stale_answers" if outcome is Outcome.STALE else "rejected"] += 1
            state.tracker.release(value.sku, value.version)
            log.error(
                "push_refused",
                channel=self.config.channel,
                sku=value.sku,
                status=answer.status,
                outcome=outcome.value,
                error=answer.error,
            )
        state.wake.set()

    async def drain(self, timeout: float) -> None:
        """Let requests on the wire finish: their answers still go to the ledger."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
