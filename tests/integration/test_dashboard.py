"""The live dashboard in a real browser: a real worker on the broker, events from channel
producers, the page opened in headless Chromium (driven over the DevTools protocol), and what it
shows checked as the numbers change. The same worker answers the API-key checks over real HTTP.

Chromium is Debian's `chromium` package. Without it this module is skipped, unless
STOCKSYNC_REQUIRE_CHROMIUM is set (CI sets it), when it fails. STOCKSYNC_DASHBOARD_SCREENSHOT=1
also writes the screenshot to docs/dashboard.png (or to the path it names).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from stocksync.api.auth import hash_key
from stocksync.channels.producer import ChannelProducer
from stocksync.domain.events import EventKind
from tests.integration.support import REPO, WorkerProcess, unique_settings, wait_for

ADMIN_KEY = "ssk_test_operator"
WEB_KEY = "ssk_test_web"
TILL_KEY = "ssk_test_till"  # burst 2, a token every 100 s: the third request is a flood
BROWSER_TIMEOUT = 30.0
LIVE_TIMEOUT = 60.0


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        message = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("STOCKSYNC_REQUIRE_CHROMIUM"):
            pytest.fail(f"{message}, and STOCKSYNC_REQUIRE_CHROMIUM is set")
        pytest.skip(message)
    return binary


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A worker with API keys on: an operator key, a web key and a POS key with a tiny burst."""
    home = tmp_path_factory.mktemp("dashboard")
    keys_file = home / "keys.yaml"
    keys_file.write_text(
        json.dumps(
            {
                "keys": [
                    {"name": "ops", "sha256": hash_key(ADMIN_KEY), "channel": "*"},
                    {"name": "web-checkout", "sha256": hash_key(WEB_KEY), "channel": "web"},
                    {
                        "name": "store-1-till",
                        "sha256": hash_key(TILL_KEY),
                        "channel": "pos-store-1",
                        "rate_per_s": 0.01,
                        "burst": 2,
                    },
                ]
            }
        )
    )
    with pytest.MonkeyPatch.context() as env:
        # the worker process takes its settings from this environment
        env.setenv("STOCKSYNC_API_KEYS_FILE", str(keys_file))
        settings = unique_settings(kafka_bootstrap, home / "state")
        process = WorkerProcess(settings, home / "worker.log").start()
    yield process
    process.stop(signal.SIGTERM)


def http(url: str, key: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def applied_revision(worker: WorkerProcess, sku: str) -> int:
    status, body, _ = http(f"{worker.url}/v1/atp/{sku}", ADMIN_KEY)
    return int(json.loads(body)["revision"]) if status == 200 else 0


# --- a minimal Chrome DevTools Protocol client ------------------------------------------------


class Browser:
    """Headless Chromium with one page, driven over the DevTools websocket."""

    def __init__(self, binary: str, home: Path) -> None:
        self.home = home
        profile = home / "profile"
        self.log = (home / "chromium.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",  # tests run as root in CI
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "--window-size=1280,640",
                "about:blank",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        port_file = profile / "DevToolsActivePort"
        wait_for(port_file.exists, BROWSER_TIMEOUT, "chromium's DevToolsActivePort", 0.1)
        self.port = int(port_file.read_text().split()[0])
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession()
        base = f"http://127.0.0.1:{self.port}"
        async with self._session.get(f"{base}/json/list") as resp:
            targets = await resp.json()
        page = next(t for t in targets if t["type"] == "page")
        self._ws = await self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=640,
            deviceScaleFactor=1,
            mobile=False,
        )

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._ws is not None
        message_id = next(self._ids)
        await self._ws.send_json({"id": message_id, "method": method, "params": params})
        while True:
            reply = await asyncio.wait_for(self._ws.receive_json(), BROWSER_TIMEOUT)
            if reply.get("id") == message_id:  # everything else is an event
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_until(self, expression: str, what: str, timeout: float = LIVE_TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        while time.monotonic() < deadline:
            last = await self.evaluate(guarded)  # null while the page is still loading
            if last:
                return last
            await asyncio.sleep(0.1)
        shown = await self.evaluate("document.body.innerText")
        raise AssertionError(f"the page never showed {what}; last {last!r}; page:\n{shown}")

    async def screenshot(self) -> bytes:
        result = await self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


# What the page shows, read by the test as a person would read it.
TEXT = "(document.querySelector({!r}) || {{}}).textContent"


def cell(table: str, attribute: str, row: str, column: int) -> str:
    selector = f'#{table} tr[{attribute}="{row}"] td:nth-child({column})'
    return TEXT.format(selector)


def web_atp() -> str:
    return cell("channels", "data-channel", "web", 2)


class Background:
    """Other SKUs' traffic while the page is open, so the event rate is not zero: a bounded
    number of events at a modest rate, stopped by the test."""

    def __init__(self, worker: WorkerProcess, rate: float = 40.0, most: int = 2000) -> None:
        self.producer = ChannelProducer(
            worker.settings.bootstrap_servers, "wms-bg", worker.settings.topics
        )
        self.rate = rate
        self.most = most
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for i in range(self.most):
            if self.stop.wait(1 / self.rate):
                break
            # store-2 fulfils no channel: no quantity moves, no alert crowds the page
            self.producer.emit(EventKind.RECEIVED, f"BG-{i % 25:02d}", "store-2", 1)
        self.producer.close()

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(30)


def test_dashboard_shows_live_availability_alerts_and_worker_figures(
    chromium: str, worker: WorkerProcess, tmp_path: Path
) -> None:
    sku = f"DASH-{uuid.uuid4().hex[:6]}"
    topics = worker.settings.topics
    bootstrap = worker.settings.bootstrap_servers
    with ChannelProducer(bootstrap, "wms", topics) as wms:
        wms.emit(EventKind.RECEIVED, sku, "dc-1", 40)  # safety 2: atp 38
        wms.emit(EventKind.RECEIVED, sku, "store-1", 6)  # safety 1: atp 5
    wait_for(lambda: applied_revision(worker, sku) >= 2, LIVE_TIMEOUT, f"{sku} at revision 2")
    url = f"{worker.url}/dashboard?sku={sku}#key={ADMIN_KEY}"

    async def drive() -> bytes:
        browser = Browser(chromium, tmp_path)
        try:
            await browser.open()
            await browser.navigate(url)
            # given the page is open: it shows the SKU's channels and locations as they are
            await browser.wait_until(f"{web_atp()} === '43'", "web ATP 43")
            assert await browser.evaluate(cell("channels", "data-channel", "pos-store-1", 2)) == (
                "5"
            )
            assert await browser.evaluate(cell("channels", "data-channel", "marketplace", 2)) == (
                "34"
            )
            assert await browser.evaluate(cell("locations", "data-location", "dc-1", 2)) == "40"
            frames = int(await browser.evaluate("document.body.dataset.frames"))

            # when the till sells more than the store has, without reloading the page
            with ChannelProducer(bootstrap, "pos-store-1", topics) as pos:
                pos.emit(EventKind.SOLD, sku, "store-1", 7)

            # then the page shows the new quantities, the shortfall and the oversell alert
            await browser.wait_until(f"{web_atp()} === '38'", "web ATP 38 after the sale")
            store = [
                await browser.evaluate(cell("locations", "data-location", "store-1", column))
                for column in (2, 7, 8)  # on hand, oversold, ATP
            ]
            assert store == ["-1", "1", "0"]
            assert await browser.evaluate(cell("channels", "data-channel", "pos-store-1", 2)) == (
                "0"
            )
            oversell = f'#critical-alerts li[data-type="OVERSELL"][data-sku="{sku}"]'
            alert = await browser.wait_until(TEXT.format(oversell), "the oversell alert")
            assert "store-1" in alert
            assert int(await browser.evaluate(TEXT.format("#oversells"))) >= 1
            assert int(await browser.evaluate("document.body.dataset.frames")) > frames

            # and the worker's figures: events applied, lag, fold latency, a live event rate
            with Background(worker):
                await browser.wait_until(
                    f"parseFloat({TEXT.format('#events-per-s')}) > 0", "an event rate above 0"
                )
                applied = int(await browser.evaluate(TEXT.format("#applied")))
                assert applied >= 3
                assert (await browser.evaluate(TEXT.format("#lag-total"))).isdigit()
                fold = await browser.evaluate(TEXT.format("#fold-latency"))
                assert re.fullmatch(r"\d+(\.\d+)? / \d+(\.\d+)?", fold), fold
                assert await browser.evaluate(TEXT.format("#status")) == "live"
                # a few more frames of the rate chart, for the picture
                shown = int(await browser.evaluate("document.body.dataset.frames"))
                await browser.wait_until(
                    f"parseInt(document.body.dataset.frames) >= {shown + 6}", "six more frames"
                )
                return await browser.screenshot()
        finally:
            await browser.close()

    png = asyncio.run(drive())
    assert png.startswith(b"\x89PNG")
    (tmp_path / "dashboard.png").write_bytes(png)
    target = os.environ.get("STOCKSYNC_DASHBOARD_SCREENSHOT")
    if target:
        path = REPO / "docs" / "dashboard.png" if target == "1" else Path(target)
        path.write_bytes(png)


def test_dashboard_without_a_key_shows_the_401(
    chromium: str, worker: WorkerProcess, tmp_path: Path
) -> None:
    async def drive() -> str:
        browser = Browser(chromium, tmp_path)
        try:
            await browser.open()
            await browser.navigate(f"{worker.url}/dashboard?sku=ANY")
            await browser.wait_until("document.body.dataset.error === '401'", "the 401")
            return str(await browser.evaluate(TEXT.format("#status")))
        finally:
            await browser.close()

    assert asyncio.run(drive()).startswith("401: this API needs a key")


def test_worker_api_keys_401_403_429_and_open_metrics(worker: WorkerProcess) -> None:
    sku = f"KEYS-{uuid.uuid4().hex[:6]}"
    with ChannelProducer(worker.settings.bootstrap_servers, "wms", worker.settings.topics) as wms:
        wms.emit(EventKind.RECEIVED, sku, "store-1", 9)
    base = f"{worker.url}/v1/atp/{sku}"
    wait_for(lambda: applied_revision(worker, sku) >= 1, LIVE_TIMEOUT, f"{sku} applied")

    assert http(base)[0] == 401
    assert http(base, "not-a-key")[0] == 401
    status, body, _ = http(f"{base}?channel=marketplace", WEB_KEY)
    assert (status, json.loads(body)["error"]) == (403, "forbidden")
    status, body, _ = http(base, WEB_KEY)
    assert (status, json.loads(body)["channel"], json.loads(body)["atp"]) == (200, "web", 8)

    flood = [http(base, TILL_KEY) for _ in range(4)]
    assert [status for status, _, _ in flood] == [200, 200, 429, 429]
    assert int(flood[2][2]["Retry-After"]) >= 1

    # the per-partition lag appears with the watchdog's first tick, a second after start: run
    # alone (or with Chromium missing) this test gets here sooner
    lag = 'stocksync_consumer_lag{partition="0",topic="' + worker.settings.topics.stock_events
    wait_for(lambda: lag in http(f"{worker.url}/metrics")[1].decode(), 10, "per-partition lag")
    status, text, headers = http(f"{worker.url}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    metrics = text.decode()
    for name in (
        "stocksync_events_applied_total",
        "stocksync_dead_letters_total",
        "stocksync_alerts_observed_total",  # DRIFT and every other type, by label
        "stocksync_consumer_lag_total",
        'stocksync_consumer_lag{partition="0",topic="' + worker.settings.topics.stock_events,
        "stocksync_fold_batch_duration_seconds_count",
        "stocksync_http_request_duration_seconds_bucket",
        'stocksync_http_rejected_total{key="store-1-till",reason="rate_limited"} 2.0',
    ):
        assert name in metrics, name


def test_dashboard_search_alert_times_history_and_counters_that_survive_a_restart(
    chromium: str, worker: WorkerProcess, tmp_path: Path
) -> None:
    # (last in the module: it restarts the module's worker)
    sku = f"FIND-{uuid.uuid4().hex[:6]}"
    topics = worker.settings.topics
    bootstrap = worker.settings.bootstrap_servers
    with ChannelProducer(bootstrap, "wms", topics) as wms:
        wms.emit(EventKind.RECEIVED, sku, "dc-1", 12)
        wms.emit(EventKind.RECEIVED, sku, "store-1", 3)
    with ChannelProducer(bootstrap, "pos-store-1", topics) as pos:
        pos.emit(EventKind.SOLD, sku, "store-1", 5)  # 2 beyond the shelf: an oversell
    wait_for(lambda: applied_revision(worker, sku) >= 3, LIVE_TIMEOUT, f"{sku} at revision 3")
    status_live = f"{TEXT.format('#status')} === 'live'"

    async def first_visit() -> int:
        browser = Browser(chromium, tmp_path / "first")
        try:
            await browser.open()
            await browser.navigate(f"{worker.url}/dashboard#key={ADMIN_KEY}")
            await browser.wait_until(status_live, "live after the first snapshot")
            # when an operator types the start of the SKU into the search box
            await browser.evaluate(
                f"(() => {{ const box = document.getElementById('sku'); box.value = "
                f"{sku[:8]!r}; box.dispatchEvent(new Event('input')); }})()"
            )
            # then it offers the SKU, found through /v1/skus
            option = f'#sku-options option[value="{sku}"]'
            await browser.wait_until(f"!!document.querySelector({option!r})", "the SKU offered")
            # and picking it watches it
            await browser.evaluate(
                f"(() => {{ document.getElementById('sku').value = {sku!r}; "
                "document.getElementById('pick').requestSubmit(); })()"
            )
            await browser.wait_until(f"{web_atp()} === '10'", "web ATP 10 (dc-1 12 - 2)")
            # its oversell alert says when it happened
            alert = f'#critical-alerts li[data-type="OVERSELL"][data-sku="{sku}"] time'
            stamp = await browser.wait_until(
                f"document.querySelector({alert!r}).dateTime", "a timestamp on the alert"
            )
            assert stamp.endswith("Z") and stamp[:4].isdigit(), stamp
            assert await browser.evaluate(TEXT.format(alert))
            # each channel's history is drawn: web was told 10 after 0 then 7 (and so on)
            history = '.history-row[data-channel="web"]'
            await browser.wait_until(
                f"parseInt(document.querySelector({history!r}).dataset.points) >= 2",
                "web's history chart",
            )
            return int(await browser.wait_until(TEXT.format("#oversells"), "the oversells"))
        finally:
            await browser.close()

    async def second_visit(expected: int) -> int:
        browser = Browser(chromium, tmp_path / "second")
        try:
            await browser.open()
            await browser.navigate(f"{worker.url}/dashboard?sku={sku}#key={ADMIN_KEY}")
            await browser.wait_until(status_live, "live after the restart")
            await browser.wait_until(
                f"parseInt({TEXT.format('#oversells')}) >= {expected}", "the oversells counted"
            )
            return int(await browser.evaluate(TEXT.format("#oversells")))
        finally:
            await browser.close()

    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    oversells = asyncio.run(first_visit())
    assert oversells >= 1
    # when the worker restarts, the counter is read back from the alerts topic, not reset
    worker.stop(signal.SIGTERM)
    worker.start()
    assert asyncio.run(second_visit(oversells)) == oversells
