"""Client processes for the reservation storms: plain HTTP, retrying with the same key."""

from __future__ import annotations

import json
import multiprocessing
import time
import urllib.error
import urllib.request
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

RETRYABLE = {502, 503, 504}


def client_pool(processes: int) -> ProcessPoolExecutor:
    """Client processes started fresh (spawn): a forked child would inherit the test's
    librdkafka producers, whose threads do not exist in the child, and can abort on exit."""
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))


def reserve_once(url: str, body: dict[str, object], key: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"{url}/v1/reservations",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def reserve_until_answered(
    url: str, body: dict[str, object], key: str, deadline: float
) -> tuple[str, int, dict[str, object], int, float]:
    """(key, final status, body, attempts, seconds for the first attempt's answer or timeout)."""
    attempts = 0
    first = 0.0
    while True:
        attempts += 1
        started = time.monotonic()
        try:
            status, answer = reserve_once(url, body, key)
        except (OSError, ValueError):  # worker down: connection refused or reset
            status, answer = 599, {}
        if attempts == 1:
            first = time.monotonic() - started
        if status not in RETRYABLE | {599} or time.monotonic() > deadline:
            return key, status, answer, attempts, first
        time.sleep(0.2)


def storm(
    url: str, sku: str, channel: str, keys: list[str], threads: int, deadline_s: float
) -> list[tuple[str, int, dict[str, object], int, float]]:
    """Run in a client process: reserve one unit per key, `threads` at a time."""
    deadline = time.monotonic() + deadline_s
    body = {"channel": channel, "sku": sku, "quantity": 1, "ttl_seconds": 3600}
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda k: reserve_until_answered(url, body, k, deadline), keys))
