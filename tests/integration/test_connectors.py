"""Connectors on a real broker, a real worker and real HTTP channel endpoints (issue 5).

Processes: the module's worker (conftest), `stocksync endpoints run` (simulated channel APIs)
and `stocksync connector run`, each started as its own process, like a deployment.

Measured figures are printed (run with -s) and never asserted: only bounds with slack and
generous timeouts, so a slow shared machine does not fail the tests.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from stocksync.channels.producer import ChannelProducer
from stocksync.codec.avro import decode
from stocksync.codec.connectors import decode_published
from stocksync.domain.events import EventKind
from tests.integration.support import (
    REPO,
    WorkerProcess,
    free_port,
    http_json,
    read_topic,
    settings_env,
    wait_for,
)

READY_TIMEOUT = 60.0
CONVERGE_TIMEOUT = 90.0
RATE, BURST, CONCURRENCY = 20.0, 5, 4


def http(method: str, url: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text or b"null")
        except ValueError:
            return exc.code, text.decode(errors="replace")


@dataclass
class Service:
    """A stocksync.connectors.cli subprocess with its log file."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    health_urls: list[str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stocksync.connectors.cli", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

        def up() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.args[:2]} exited:\n{self.tail()}")
            for url in self.health_urls:
                try:
                    if http("GET", url, timeout=1)[0] != 200:
                        return False
                except OSError:
                    return False
            return True

        try:
            wait_for(up, READY_TIMEOUT, f"{' '.join(self.args[:2])} ready", interval=0.2)
        except BaseException:
            self.stop(signal.SIGKILL)  # never leave a half-started process behind
            raise
        return self

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(20)

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Channel:
    """One simulated channel endpoint and the connector that serves it."""

    name: str
    endpoint: Service
    connector: Service
    endpoint_url: str
    connector_url: str

    def listings(self) -> dict[str, dict[str, Any]]:
        status, body = http("GET", f"{self.endpoint_url}/v1/inventory")
        assert status == 200
        items: dict[str, dict[str, Any]] = body["items"]
        return items

    def endpoint_log(self) -> dict[str, Any]:
        status, body = http("GET", f"{self.endpoint_url}/admin/log")
        assert status == 200
        log: dict[str, Any] = body
        return log

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = http("GET", f"{self.connector_url}/v1/status")[1]
        return body

    def stop(self) -> None:
        self.connector.stop()
        self.endpoint.stop()


def start_channel(
    worker: WorkerProcess,
    home: Path,
    channel: str,
    endpoint: dict[str, Any],
    connector_args: Sequence[str] = (),
) -> Channel:
    endpoint_port, connector_port = free_port(), free_port()
    connector_url = f"http://127.0.0.1:{connector_port}"
    spec = {
        "channel": channel,
        "port": endpoint_port,
        "report_url": f"{connector_url}/v1/reports",
        **endpoint,
    }
    config = home / f"endpoints-{channel}.yaml"
    config.write_text(yaml.safe_dump([spec]))
    endpoint_url = f"http://127.0.0.1:{endpoint_port}"
    env = settings_env(worker.settings)
    endpoints = Service(
        ["endpoints", "run", "--config", str(config)],
        env,
        home / f"endpoints-{channel}.log",
        [f"{endpoint_url}/healthz"],
    ).start()
    connector_service = Service(
        [
            "connector",
            "run",
            "--channel",
            channel,
            "--endpoint",
            endpoint_url,
            "--rate",
            str(RATE),
            "--burst",
            str(BURST),
            "--concurrency",
            str(CONCURRENCY),
            "--http-port",
            str(connector_port),
            *connector_args,
        ],
        env,
        home / f"connector-{channel}.log",
        [f"{connector_url}/readyz"],
    )
    try:
        connector = connector_service.start()
    except BaseException:
        endpoints.stop()
        raise
    return Channel(channel, endpoints, connector, endpoint_url, connector_url)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def channel_atp(worker: WorkerProcess, skus: list[str], channel: str) -> dict[str, int]:
    status, body = http_json(f"{worker.url}/v1/atp/batch", {"skus": skus, "channel": channel})
    assert status == 200, body
    return {sku: view["atp"] for sku, view in body["items"].items()}


def converged(worker: WorkerProcess, channel: Channel, skus: list[str]) -> bool:
    truth = channel_atp(worker, skus, channel.name)
    shown = channel.listings()
    return len(truth) == len(skus) and all(
        sku in shown and shown[sku]["quantity"] == truth[sku] for sku in skus
    )


def wait_folded(worker: WorkerProcess, applied: dict[str, int]) -> None:
    for sku, count in applied.items():
        worker.wait_revision(sku, count, timeout=CONVERGE_TIMEOUT)


def accepted_versions(log: dict[str, Any], skus: set[str]) -> dict[str, list[tuple[int, int]]]:
    per_sku: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for entry in log["requests"]:
        if entry["sku"] in skus and entry["status"] == 200:
            per_sku[entry["sku"]].append((entry["revision"], entry["policy_version"]))
    return per_sku


def max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


def report(name: str, figures: dict[str, Any]) -> None:
    print(f"\n[measured] {name}: {json.dumps(figures)}")
    out = os.environ.get("STOCKSYNC_CONNECTOR_FIGURES")
    if out:
        with Path(out).open("a") as f:
            f.write(json.dumps({"test": name, **figures}) + "\n")


# -- flash sale against the rate-limited marketplace --------------------------------------


def test_flash_sale_on_50_skus_converges_within_the_marketplace_budget(
    worker: WorkerProcess, home: Path
) -> None:
    # given 50 SKUs in stock at dc-2 and a marketplace that allows 30 requests/s (burst 10),
    # served by a connector whose budget is 20 requests/s (burst 5)
    tag = uuid.uuid4().hex[:6]
    skus = [f"FS-{tag}-{i:02d}" for i in range(50)]
    bootstrap, topics = worker.settings.bootstrap_servers, worker.settings.topics
    applied: dict[str, int] = defaultdict(int)
    with ChannelProducer(bootstrap, f"wms-{tag}", topics) as wms:
        for sku in skus:
            wms.emit(EventKind.RECEIVED, sku, "dc-2", 40)
            applied[sku] += 1
    channel = start_channel(
        worker,
        home,
        "marketplace",
        {"kind": "marketplace", "rate_per_s": 30.0, "burst": 10},
    )
    try:
        wait_folded(worker, applied)
        wait_for(lambda: converged(worker, channel, skus), CONVERGE_TIMEOUT, "initial sync")
        requests_before = len(channel.endpoint_log()["requests"])

        # when a flash sale sells 1-3 units at a time, 600 orders in a burst, selling some out
        rng = random.Random(5)
        stock = dict.fromkeys(skus, 40)
        with ChannelProducer(bootstrap, f"flash-{tag}", topics) as sales:
            for _ in range(600):
                sku = rng.choice(skus[:25]) if rng.random() < 0.7 else rng.choice(skus)
                if stock[sku] == 0:
                    continue
                units = min(stock[sku], rng.randint(1, 3))
                stock[sku] -= units
                sales.emit(EventKind.SOLD, sku, "dc-2", units)
                applied[sku] += 1
        sale_sent = time.monotonic()
        sold_out = [s for s in skus if stock[s] <= 2]  # at or below dc-2's ATP for the channel
        wait_folded(worker, applied)

        # then the marketplace shows every SKU's ATP
        wait_for(lambda: converged(worker, channel, skus), CONVERGE_TIMEOUT, "convergence", 0.2)
        converged_after = time.monotonic() - sale_sent
        log = channel.endpoint_log()
        counters = log["counters"]
        status = channel.status()

        # and the connector stayed within its budget: the marketplace never said 429, and no
        # window of the requests it received holds more than the bucket allows
        # (plus the requests in flight, which the network may deliver together)
        assert counters["rate_limited"] == 0, counters
        times = sorted(e["at"] for e in log["requests"])
        allowed_per_s = RATE * 1.0 + BURST + CONCURRENCY
        busiest_second = max_in_window(times, 1.0)
        assert busiest_second <= allowed_per_s, (busiest_second, allowed_per_s)
        span = times[-1] - times[0]
        assert len(times) <= BURST + RATE * span + CONCURRENCY

        # and no older value ever reached (or was even offered to) the marketplace
        assert counters["stale_rejected"] == 0
        for sku, versions in accepted_versions(log, set(skus)).items():
            assert versions == sorted(versions), sku

        # and the channel's exposure (published minus true ATP) is back to zero
        assert status["exposure"]["over_units"] == 0, status["exposure"]
        changes = sum(
            1
            for e in read_topic(bootstrap, topics.channel_atp)
            if e[0] and e[0].decode().startswith("marketplace:FS-" + tag)
        )
        flash_requests = len(log["requests"]) - requests_before
        report(
            "flash_sale",
            {
                "skus": len(skus),
                "orders": sum(applied.values()) - len(skus),
                "sold_out_skus": len(sold_out),
                "projection_changes": changes,
                "requests_during_sale": flash_requests,
                "coalesced": status["counters"]["plan"]["coalesced"],
                "busiest_second": busiest_second,
                "budget": f"{RATE}/s burst {BURST}",
                "average_rate": round(len(times) / span, 1) if span else None,
                "converged_s_after_last_order_sent": round(converged_after, 2),
            },
        )
    except BaseException:
        print(channel.connector.tail(), channel.endpoint.tail(), sep="\n----\n")
        raise
    finally:
        channel.stop()


# -- drift --------------------------------------------------------------------------------


def test_a_tampered_display_raises_a_drift_alert_and_is_corrected(
    worker: WorkerProcess, home: Path
) -> None:
    # given 5 SKUs on the POS of store-1 (19 sellable each), in sync
    tag = uuid.uuid4().hex[:6]
    skus = [f"DR-{tag}-{i}" for i in range(5)]
    bootstrap, topics = worker.settings.bootstrap_servers, worker.settings.topics
    with ChannelProducer(bootstrap, f"wms-{tag}", topics) as wms:
        for sku in skus:
            wms.emit(EventKind.RECEIVED, sku, "store-1", 20)
    wait_folded(worker, dict.fromkeys(skus, 1))
    channel = start_channel(
        worker, home, "pos-store-1", {"kind": "pos"}, ["--resync-interval", "4"]
    )
    try:
        wait_for(lambda: converged(worker, channel, skus), CONVERGE_TIMEOUT, "initial sync")
        time.sleep(2.5)  # past the connector's drift grace after the initial pushes

        # when someone edits the till's quantity of one SKU to 40 (the endpoint reports it)
        tampered, nudged = skus[0], skus[1]
        started = time.monotonic()
        assert (
            http("PUT", f"{channel.endpoint_url}/admin/inventory/{tampered}", {"quantity": 40})[0]
            == 200
        )

        # then it is corrected back to the ATP
        def corrected() -> bool:
            listing = channel.listings()[tampered]
            return listing["quantity"] == 19 and not listing["tampered"]

        wait_for(corrected, 30, "drift correction", interval=0.02)
        correction_s = time.monotonic() - started

        # and a DRIFT alert names the published and the displayed quantity
        def drift_alert() -> dict[str, Any] | None:
            for key, value in read_topic(bootstrap, topics.alerts):
                if key == tampered.encode() and value:
                    _, record = decode(value)
                    if record["type"] == "DRIFT":
                        return record
            return None

        alert = wait_for(drift_alert, 30, "drift alert")
        assert (alert["channel"], alert["quantity"], alert["displayed"]) == (
            "pos-store-1",
            19,
            40,
        )
        assert alert["threshold"] == 1
        repair = [e for e in channel.endpoint_log()["requests"] if e["sku"] == tampered][-1]
        assert (repair["quantity"], repair["outcome"]) == (19, "refreshed")

        # when a difference within the threshold (one unit) is reported
        resyncs_before = channel.status()["counters"]["resyncs"]
        assert (
            http("PUT", f"{channel.endpoint_url}/admin/inventory/{nudged}", {"quantity": 20})[0]
            == 200
        )
        # then no alert is raised, and the periodic full resync puts it right anyway
        wait_for(
            lambda: (
                channel.listings()[nudged]["quantity"] == 19
                and channel.status()["counters"]["resyncs"] > resyncs_before
            ),
            30,
            "resync",
        )
        alerts = [
            decode(v)[1]
            for k, v in read_topic(bootstrap, topics.alerts)
            if k and v and k.decode() in skus
        ]
        assert [a["sku"] for a in alerts if a["type"] == "DRIFT"] == [tampered]
        assert channel.status()["counters"]["drift_alerts"] == 1
        report(
            "drift",
            {
                "tamper_to_corrected_s": round(correction_s, 3),
                "drift_rule": "5% of published, floor 1 unit",
            },
        )
    except BaseException:
        print(channel.connector.tail(), channel.endpoint.tail(), sep="\n----\n")
        raise
    finally:
        channel.stop()


# -- crash and resume ---------------------------------------------------------------------


def test_a_connector_killed_mid_push_resumes_from_its_last_acknowledgement(
    worker: WorkerProcess, home: Path
) -> None:
    # given 50 SKUs on the web channel, and a web API limited to 15 requests/s, below the
    # connector's budget of 20/s, so it also answers 429 that the connector must honour
    tag = uuid.uuid4().hex[:6]
    skus = [f"CR-{tag}-{i:02d}" for i in range(50)]
    bootstrap, topics = worker.settings.bootstrap_servers, worker.settings.topics
    applied: dict[str, int] = defaultdict(int)
    wms = ChannelProducer(bootstrap, f"wms-{tag}", topics)
    pos = ChannelProducer(bootstrap, f"pos-{tag}", topics)
    for sku in skus:
        wms.emit(EventKind.RECEIVED, sku, "dc-2", 60)
        applied[sku] += 1
    wms.flush()
    channel = start_channel(
        worker,
        home,
        "web",
        {"kind": "marketplace", "rate_per_s": 15.0, "burst": 5, "latency_ms": 20},
    )
    rng = random.Random(11)

    def sell(orders: int) -> None:
        for _ in range(orders):
            sku = rng.choice(skus)
            pos.emit(EventKind.SOLD, sku, "dc-2", 1)
            applied[sku] += 1
        pos.flush()

    try:
        # when sales keep coming and the connector is killed (SIGKILL) in the middle of pushing
        sell(150)
        wait_for(
            lambda: (
                sum(
                    1
                    for e in channel.endpoint_log()["requests"]
                    if e["sku"].startswith(f"CR-{tag}") and e["status"] == 200
                )
                >= 40
            ),
            CONVERGE_TIMEOUT,
            "40 pushes acknowledged",
            interval=0.05,
        )
        at_kill = channel.status()
        channel.connector.stop(signal.SIGKILL)
        # (mid-push: values were still waiting or on the wire)
        assert at_kill["backlog"] + at_kill["in_flight"] > 0, at_kill
        killed_log = channel.endpoint_log()
        acked_before_kill = {
            (e["sku"], e["revision"], e["policy_version"])
            for e in killed_log["requests"]
            if e["status"] == 200
        }
        # and more sales happen while it is down
        sell(150)
        # and it is started again
        channel.connector.start()
        restarted_at = time.monotonic()
        wait_folded(worker, applied)
        wait_for(lambda: converged(worker, channel, skus), CONVERGE_TIMEOUT, "convergence", 0.2)
        resumed_s = time.monotonic() - restarted_at

        # then nothing was pushed out of order, before or after the crash
        log = channel.endpoint_log()
        assert log["counters"]["stale_rejected"] == 0
        for sku, versions in accepted_versions(log, set(skus)).items():
            assert versions == sorted(versions), sku
        # and nothing was lost: the channel shows the ATP (converged above), and the ledger's
        # last entry per SKU is what the channel displays
        shown = channel.listings()
        ledger: dict[str, Any] = {}
        for key, value in read_topic(bootstrap, topics.published_quantities):
            if key and value and key.decode().startswith(f"web:CR-{tag}"):
                entry = decode_published(value)
                ledger[entry.sku] = entry
        for sku in skus:
            assert (ledger[sku].quantity, ledger[sku].revision) == (
                shown[sku]["quantity"],
                shown[sku]["revision"],
            ), sku
        # and it resumed from its acknowledgements rather than starting over: of the values
        # acknowledged before the kill, only those whose ledger record had not reached Kafka
        # yet (at most ~one commit interval of pushes) were sent again
        after_restart = log["requests"][len(killed_log["requests"]) :]
        resent = [
            e
            for e in after_restart
            if (e["sku"], e["revision"], e["policy_version"]) in acked_before_kill
        ]
        assert len(resent) <= 20, len(resent)
        report(
            "crash_resume",
            {
                "acknowledged_before_kill": len(acked_before_kill),
                "backlog_at_kill": at_kill["backlog"] + at_kill["in_flight"],
                "resent_after_restart": len(resent),
                "rate_limited_429s": log["counters"]["rate_limited"],
                "restored_from_ledger": channel.status()["counters"]["restored"],
                "converged_s_after_restart": round(resumed_s, 2),
            },
        )
    except BaseException:
        print(channel.connector.tail(), channel.endpoint.tail(), sep="\n----\n")
        raise
    finally:
        channel.stop()
        wms.close()
        pos.close()
