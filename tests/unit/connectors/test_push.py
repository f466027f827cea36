"""Pushing to a channel (src/stocksync/connectors/push.py): what each answer of the channel
leads to, the HTTP request itself, and the dispatcher staying inside the budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectors.fakes import acknowledge, connector_config, connector_state, q
from stocksync.connectors.plan import Outcome, Push, Quantity, Reason
from stocksync.connectors.push import Answer, Pusher, outcome_of, parse_retry_after, put_quantity
from stocksync.connectors.state import ConnectorState


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.ACKNOWLEDGED),
        (204, Outcome.ACKNOWLEDGED),
        (409, Outcome.STALE),
        (429, Outcome.RETRY),
        (503, Outcome.RETRY),
        (408, Outcome.RETRY),
        (None, Outcome.RETRY),
        (400, Outcome.REJECTED),
        (404, Outcome.REJECTED),
    ],
)
def test_http_answers_map_to_outcomes(status: int | None, outcome: Outcome) -> None:
    assert outcome_of(status) is outcome


@pytest.mark.parametrize(
    ("header", "seconds"), [("2", 2.0), ("0.5", 0.5), (None, None), ("soon", None), ("-1", None)]
)
def test_retry_after_is_read_in_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


# -- the HTTP request ---------------------------------------------------------------------------


def test_a_value_is_put_to_the_channel_with_its_version() -> None:
    async def scenario() -> None:
        received: list[tuple[str, dict[str, Any]]] = []

        async def put(request: web.Request) -> web.Response:
            received.append((request.match_info["sku"], await request.json()))
            if request.match_info["sku"] == "SKU 2":
                return web.json_response(
                    {"error": "slow down"}, status=429, headers={"Retry-After": "3"}
                )
            return web.json_response({"status": "applied"})

        app = web.Application()
        app.router.add_put("/v1/inventory/{sku}", put)
        async with TestServer(app) as server, aiohttp.ClientSession() as session:
            base = str(server.make_url("")).rstrip("/")
            ok = await put_quantity(session, base, q("A-1", 7, 3, 2))
            limited = await put_quantity(session, base, q("SKU 2", 1, 1))
        assert ok == Answer(200, None, "")
        assert received[0] == (
            "A-1",
            {"quantity": 7, "revision": 3, "policy_version": 2, "as_of": q("A-1", 7, 3).as_of},
        )
        assert received[1][0] == "SKU 2"  # the SKU is quoted into the path and back
        assert limited.status == 429 and limited.retry_after == 3.0
        assert "slow down" in limited.error

    run(scenario())


def test_a_channel_that_does_not_answer_is_retried() -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            answer = await put_quantity(session, "http://127.0.0.1:9", q("A", 1, 1))
        assert answer.status is None and answer.error
        assert outcome_of(answer.status) is Outcome.RETRY

    run(scenario())


# -- settling answers ---------------------------------------------------------------------------


def pusher(state: ConnectorState, recorded: list[Push] | None = None) -> Pusher:
    async def never(_value: Quantity) -> Answer:
        raise AssertionError("no request expected")

    sink = recorded if recorded is not None else []
    return Pusher(state, connector_config(), never, lambda push, _sent_at: sink.append(push))


def in_flight(state: ConnectorState, value: Quantity, offset: int = 0) -> Push:
    """`value` was read at `offset` and is now being sent."""
    state.tracker.hold(0, offset, value.sku, value.version)
    state.plan.offer(value, time.monotonic())
    push = state.plan.next_push(time.monotonic())
    assert push is not None
    return push


def test_an_acknowledged_value_goes_to_the_ledger() -> None:
    state = connector_state()
    recorded: list[Push] = []
    push = in_flight(state, q("A", 10, 1))
    pusher(state, recorded).settle(push, Answer(200), sent_at=1)
    assert recorded == [push]
    assert state.plan.is_settled("A", (1, 1))
    assert state.counters["acknowledged"] == 1
    # the offset stays held until the ledger record is on the broker (test_ledger.py)
    assert state.tracker.held() == 1


def test_a_429_pauses_the_whole_budget_for_retry_after_and_retries_the_value() -> None:
    state = connector_state()
    recorded: list[Push] = []
    push = in_flight(state, q("A", 10, 1))
    pusher(state, recorded).settle(push, Answer(429, retry_after=2.0), sent_at=1)
    now = time.monotonic()
    assert not state.bucket.try_take(now)  # no request to the channel before 2 s
    assert 1.5 < state.bucket.wait_time(now) <= 3.0
    due = state.plan.next_due(now)
    assert due is not None and 1.5 < due - now <= 2.0
    assert (state.counters["rate_limited"], state.counters["failed"]) == (1, 0)
    assert recorded == []


def test_a_server_error_is_retried_with_backoff_and_counted_as_failed() -> None:
    state = connector_state()
    push = in_flight(state, q("A", 10, 1))
    pusher(state).settle(push, Answer(503, error="down"), sent_at=1)
    assert state.counters["failed"] == 1
    assert state.plan.backlog() == 1  # the value waits for its retry
    assert state.bucket.try_take(time.monotonic())  # the budget is not paused by a 5xx


@pytest.mark.parametrize(("status", "counter"), [(409, "stale_answers"), (400, "rejected")])
def test_a_refused_value_is_not_retried_and_does_not_block_commits(
    status: int, counter: str
) -> None:
    state = connector_state()
    push = in_flight(state, q("A", 10, 1), offset=4)
    pusher(state).settle(push, Answer(status, error="no"), sent_at=1)
    assert state.counters[counter] == 1
    assert state.plan.backlog() == 0 and state.plan.in_flight() == 0
    assert state.tracker.positions() == {0: 5}


# -- dispatching --------------------------------------------------------------------------------


def test_the_dispatcher_stays_inside_the_budget_and_sends_the_most_urgent_first() -> None:
    async def scenario() -> None:
        state = connector_state(connector_config(rate_per_s=0.01, burst=2, concurrency=4))
        for sku in ("A", "B", "C"):
            acknowledge(state, q(sku, 50, 1))
        now = time.monotonic()
        state.plan.offer(q("A", 60, 2), now)  # an increase
        state.plan.offer(q("B", 0, 2), now)  # sold out: goes first
        state.plan.offer(q("C", 40, 2), now)  # a decrease
        sent: list[Quantity] = []
        recorded: list[Push] = []

        async def channel(value: Quantity) -> Answer:
            sent.append(value)
            return Answer(200)

        job = Pusher(state, connector_config(), channel, lambda p, _at: recorded.append(p))
        task = asyncio.ensure_future(job.dispatch_forever())
        await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert [v.sku for v in sent] == ["B", "C"]  # burst 2, next token in 100 s
        assert [p.reason for p in recorded] == [Reason.ZERO_CROSSING, Reason.DECREASE]
        assert state.counters["requests"] == 2
        assert state.plan.backlog() == 1

    run(scenario())
