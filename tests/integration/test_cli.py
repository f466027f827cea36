"""Every `stocksync` command as a user runs it: a real subprocess against the real broker and
one shared real worker (itself started with `stocksync worker`)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

from stocksync.channels.producer import ChannelProducer
from stocksync.codec.events import encode_event
from stocksync.codec.outputs import decode_dead_letter
from stocksync.codec.rows import row_to_bytes
from stocksync.config import Settings
from stocksync.domain.events import EventKind, InventoryEvent
from stocksync.domain.state import LocationStock, SkuRow
from stocksync.provision import admin_client, delete_topics
from stocksync.replay import murmur2_partition
from tests.integration.support import (
    REPO,
    TOPOLOGY,
    WorkerProcess,
    read_topic,
    settings_env,
    unique_settings,
    wait_for,
)

CLI_TIMEOUT = 120.0


def cli(
    settings: Settings, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`stocksync ARGS` in a subprocess with the deployment's settings in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "stocksync.cli", *args],
        env={**settings_env(settings), "COLUMNS": "200", **(env or {})},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def receive(settings: Settings, sku: str, quantity: int, location: str = "dc-2") -> None:
    with ChannelProducer(
        settings.bootstrap_servers, "cli-test", settings.topics, settings.librdkafka_config()
    ) as wms:
        wms.emit(EventKind.RECEIVED, sku, location, quantity)


@pytest.fixture
def isolated(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Settings]:
    """A deployment of its own (topics only, no worker); its topics are deleted afterwards."""
    settings = unique_settings(kafka_bootstrap, tmp_path / "state")
    yield settings
    existing = admin_client(settings).list_topics(timeout=10).topics
    if any(name.startswith(settings.topic_prefix) for name in existing):
        delete_topics(settings)


# -- worker, topics --------------------------------------------------------------------------


def test_worker_command_runs_a_ready_worker(worker: WorkerProcess) -> None:
    # the shared worker was started with `python -m stocksync.cli worker`
    health = worker.health()
    assert health is not None and health["ready"] is True
    assert health["partitions"]


def test_worker_with_a_missing_topology_file_exits_2_naming_it(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = cli(worker.settings, "worker", env={"STOCKSYNC_TOPOLOGY_FILE": str(missing)})
    assert result.returncode == 2
    assert "nowhere.yaml" in result.stderr


def test_topics_create_provisions_partitions_compaction_and_retention(
    isolated: Settings,
) -> None:
    t = isolated.topics
    out = ok(cli(isolated, "topics", "create"))
    assert f"created  {t.stock_events} partitions={isolated.partitions}" in out
    assert f"created  {t.atp_changelog}" in out

    admin = admin_client(isolated)
    metadata = admin.list_topics(timeout=10).topics
    for name in (t.stock_events, t.sale_events, t.reservation_commands, t.atp_changelog):
        assert len(metadata[name].partitions) == isolated.partitions
    resources = [
        ConfigResource("topic", name)
        for name in (t.stock_events, t.sale_events, t.atp_changelog, t.channel_atp)
    ]
    configs = {
        resource.name: future.result(30)
        for resource, future in admin.describe_configs(resources).items()
    }
    for name in (t.stock_events, t.sale_events):
        assert configs[name]["cleanup.policy"].value == "delete"
        assert configs[name]["retention.ms"].value == "-1"  # the log is kept forever
    for name in (t.atp_changelog, t.channel_atp):
        assert configs[name]["cleanup.policy"].value == "compact"

    again = ok(cli(isolated, "topics", "create"))
    assert f"exists   {t.stock_events}" in again
    assert "created" not in again


def test_topics_create_refuses_a_partition_mismatch(isolated: Settings) -> None:
    ok(cli(isolated, "topics", "create"))
    result = cli(isolated, "topics", "create", env={"STOCKSYNC_PARTITIONS": "3"})
    assert result.returncode == 2
    assert "STOCKSYNC_PARTITIONS" in result.stderr


# -- simulate, atp get, projections tail ------------------------------------------------------


def test_simulate_sends_events_the_worker_folds(worker: WorkerProcess) -> None:
    ok(cli(worker.settings, "simulate", "--events", "40", "--rate", "0", "--skus", "3"))
    # every SKU was stocked at every location first

    def stocked() -> set[str] | None:
        # the worker may answer between the folds of those first events: wait for all four
        status, body = worker.atp("SKU-0001")
        locations = set(body["locations"]) if status == 200 else set()
        return locations if len(locations) == 4 else None

    locations = wait_for(stocked, 30, "SKU-0001 stocked at all four locations")
    assert locations == {"dc-1", "dc-2", "store-1", "store-2"}


def test_atp_get_prints_a_skus_quantities(worker: WorkerProcess) -> None:
    receive(worker.settings, "CLI-ATP", 7)
    worker.wait_revision("CLI-ATP", 1)
    out = json.loads(ok(cli(worker.settings, "atp", "get", "CLI-ATP")))
    assert out["locations"]["dc-2"]["on_hand"] == 7
    one = json.loads(ok(cli(worker.settings, "atp", "get", "CLI-ATP", "--channel", "web")))
    assert (one["channel"], one["atp"]) == ("web", 7)


def test_atp_get_of_an_unknown_sku_exits_1(worker: WorkerProcess) -> None:
    result = cli(worker.settings, "atp", "get", "CLI-NEVER-SEEN")
    assert result.returncode == 1
    assert "unknown_sku" in result.stderr


def test_projections_tail_prints_channel_quantities(worker: WorkerProcess) -> None:
    receive(worker.settings, "CLI-TAIL", 4)
    worker.wait_revision("CLI-TAIL", 1)
    args = ("projections", "tail", "--from-beginning", "--channel", "web")
    out = ok(cli(worker.settings, *args, "--limit", "1000", "--timeout", "10"))
    lines = [line for line in out.splitlines() if " CLI-TAIL " in line]
    assert lines and lines[-1].split()[:3] == ["web", "CLI-TAIL", "atp=4"]
    assert all(line.startswith("web ") for line in out.splitlines())


# -- reservations -----------------------------------------------------------------------------


def test_reserve_holds_refuses_and_confirms(worker: WorkerProcess) -> None:
    s = worker.settings
    receive(s, "CLI-RES", 5)
    worker.wait_revision("CLI-RES", 1)

    held = cli(s, "reserve", "CLI-RES", "--channel", "web", "--quantity", "2", "--key", "cli-r1")
    body = json.loads(ok(held))
    assert (body["status"], body["reservation_id"], body["quantity"]) == ("held", "cli-r1", 2)
    assert "held 2 of CLI-RES" in held.stderr

    # a retry with the same key is the same hold, not a second one
    again = cli(s, "reserve", "CLI-RES", "--channel", "web", "--quantity", "2", "--key", "cli-r1")
    assert json.loads(ok(again))["reservation_id"] == "cli-r1"

    refused = cli(s, "reserve", "CLI-RES", "--channel", "web", "--quantity", "50")
    assert refused.returncode == 1, refused.stderr
    assert json.loads(refused.stdout)["available"] == 3
    assert "refused: web may have 3 of CLI-RES" in refused.stderr

    assert json.loads(ok(cli(s, "reservation", "show", "cli-r1")))["status"] == "held"
    assert json.loads(ok(cli(s, "reservation", "confirm", "cli-r1")))["status"] == "confirmed"

    ok(cli(s, "reserve", "CLI-RES", "--channel", "web", "--quantity", "1", "--key", "cli-r2"))
    assert json.loads(ok(cli(s, "reservation", "release", "cli-r2")))["status"] == "released"
    # releasing is idempotent: the same answer again
    assert json.loads(ok(cli(s, "reservation", "release", "cli-r2")))["status"] == "released"
    unknown = cli(s, "reservation", "show", "cli-never")
    assert unknown.returncode == 2
    assert "unknown_reservation" in unknown.stderr


def test_reserve_errors_exit_2(worker: WorkerProcess) -> None:
    s = worker.settings
    unknown = cli(s, "reserve", "CLI-RES", "--channel", "no-such-channel", "--quantity", "1")
    assert unknown.returncode == 2
    assert "HTTP" in unknown.stderr
    nobody = cli(
        s,
        "reserve",
        "X",
        "--channel",
        "web",
        "--quantity",
        "1",
        "--url",
        f"http://127.0.0.1:{free_port()}",
    )
    assert nobody.returncode == 2
    assert "no worker answers" in nobody.stderr


def test_reserve_sends_the_api_key_as_a_bearer_token(worker: WorkerProcess) -> None:
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            payload = json.dumps({"status": "held", "reservation_id": "r", "quantity": 1}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        args = ("reserve", "A", "--channel", "web", "--quantity", "1", "--url", url)
        ok(cli(worker.settings, *args, "--api-key", "from-option"))
        ok(cli(worker.settings, *args, env={"STOCKSYNC_API_KEY": "from-env"}))
    finally:
        server.shutdown()
    assert seen == ["Bearer from-option", "Bearer from-env"]


# -- dead letters ----------------------------------------------------------------------------


def test_dead_letters_are_inspected_and_redriven_once(worker: WorkerProcess) -> None:
    s = worker.settings
    t = s.topics
    sku = "CLI-DL"
    # given an event on the wrong partition (a producer without murmur2) and undecodable bytes
    event = InventoryEvent(
        event_id=f"dl-{uuid.uuid4().hex}",
        source="cli-dl",
        source_seq=1,
        sku=sku,
        location="dc-2",
        quantity=6,
        occurred_at=int(time.time() * 1000),
        kind=EventKind.RECEIVED,
    )
    right = murmur2_partition(sku.encode(), s.partitions)
    producer = Producer({"bootstrap.servers": s.bootstrap_servers})
    producer.produce(
        t.stock_events,
        key=sku.encode(),
        value=encode_event(event),
        partition=(right + 1) % s.partitions,
    )
    producer.produce(t.sale_events, key=b"CLI-DL-BAD", value=b"not avro")
    assert producer.flush(30) == 0
    letters = read_topic(s.bootstrap_servers, t.dead_letter, expect=2)
    classes = {decode_dead_letter(value or b"")["error"] for _, value in letters}
    assert classes == {"wrong_partition", "undecodable"}

    # inspect shows both, with their reasons
    inspected = cli(s, "dead-letter", "inspect", "--limit", "10", "--timeout", "5")
    records = [json.loads(line) for line in ok(inspected).splitlines()]
    assert {(r["error"], r["original_key"]) for r in records} == {
        ("wrong_partition", sku),
        ("undecodable", "CLI-DL-BAD"),
    }

    # a dry run lists both and records nothing
    dry = ok(cli(s, "dead-letter", "redrive", "--dry-run"))
    assert "would re-drive 2;" in dry
    assert f"error=wrong_partition -> {t.stock_events} key={sku}" in dry

    # re-driving one reason sends the original bytes back, now on the SKU's partition
    first = ok(cli(s, "dead-letter", "redrive", "--reason", "wrong_partition"))
    assert "re-driven 1; already re-driven 0; other classes 1" in first
    assert worker.wait_revision(sku, 1)["locations"]["dc-2"]["on_hand"] == 6

    # running it again re-drives nothing; the other reason was left for later
    second = ok(cli(s, "dead-letter", "redrive", "--reason", "wrong_partition"))
    assert "re-driven 0; already re-driven 1" in second
    later = ok(cli(s, "dead-letter", "redrive", "--dry-run", "--limit", "5"))
    assert "would re-drive 1; already re-driven 1" in later
    assert "error=undecodable -> " in later


# -- topology ---------------------------------------------------------------------------------


def test_topology_publish_and_show(isolated: Settings, tmp_path: Path) -> None:
    shown = ok(cli(isolated, "topology", "show"))
    assert shown.startswith(f"version 1 (from {TOPOLOGY})")
    newer = tmp_path / "topology.yaml"
    newer.write_text(TOPOLOGY.read_text().replace("version: 1", "version: 2", 1))

    published = ok(cli(isolated, "topology", "publish", str(newer)))
    assert published.startswith("published topology version 2: 4 locations, 3 channels")
    after = ok(cli(isolated, "topology", "show"))
    assert after.startswith("version 2 (from topic)")
    assert "marketplace" in after

    stale = cli(isolated, "topology", "publish", str(newer))
    assert stale.returncode == 2
    assert "not newer" in stale.stderr


# -- kafka ------------------------------------------------------------------------------------


def _free_port_pair() -> int:
    """A port whose next port (the controller's) is free too."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no free pair of ports")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kafka_status_of_the_test_broker(worker: WorkerProcess) -> None:
    port = worker.settings.bootstrap_servers.rsplit(":", 1)[1]
    if not (REPO / ".kafka" / f"broker-{port}.pid").exists():
        pytest.skip("the test broker was not started by deploy/kafka/kafka.sh")
    out = ok(cli(worker.settings, "kafka", "status", "--port", port))
    assert out.startswith("running pid=")
    assert f"bootstrap=127.0.0.1:{port}" in out


def test_kafka_up_status_down_on_a_free_port(worker: WorkerProcess, tmp_path: Path) -> None:
    lib = REPO / ".kafka" / "lib"
    if not (lib / ".complete").exists():
        pytest.skip("the Kafka jars are not fetched (deploy/kafka/kafka.sh fetch)")
    home = tmp_path / "kafka"
    home.mkdir()
    (home / "lib").symlink_to(lib)
    env = {"STOCKSYNC_KAFKA_HOME": str(home), "STOCKSYNC_KAFKA_PORT": str(_free_port_pair())}
    port = env["STOCKSYNC_KAFKA_PORT"]
    s = worker.settings
    try:
        up = ok(cli(s, "kafka", "up", env=env))
        assert up.strip() == f"127.0.0.1:{port}"
        assert ok(cli(s, "kafka", "status", env=env)).startswith("running pid=")
    finally:
        down = cli(s, "kafka", "down", env=env)
    assert down.returncode == 0
    stopped = cli(s, "kafka", "status", env=env)
    assert (stopped.returncode, stopped.stdout.strip()) == (3, "stopped")


def test_kafka_up_without_the_script_or_java_exits_2(worker: WorkerProcess) -> None:
    missing = cli(worker.settings, "kafka", "up", "--script", "/nonexistent/kafka.sh")
    assert missing.returncode == 2
    assert "launcher /nonexistent/kafka.sh is missing" in missing.stderr
    no_java = cli(worker.settings, "kafka", "up", env={"PATH": "/nonexistent"})
    assert no_java.returncode == 2
    assert "Java 17+ is required" in no_java.stderr


# -- connector run, endpoints run (their own tests are in test_connectors.py) -----------------


@pytest.mark.parametrize("command", [("connector", "run"), ("endpoints", "run")])
def test_connector_commands_have_help(worker: WorkerProcess, command: tuple[str, str]) -> None:
    assert "Usage:" in ok(cli(worker.settings, *command, "--help"))


def test_connector_run_for_an_unknown_channel_exits_2(worker: WorkerProcess) -> None:
    args = ("connector", "run", "--channel", "no-such", "--endpoint", "http://127.0.0.1:9")
    result = cli(worker.settings, *args)
    assert result.returncode == 2
    assert "no-such" in result.stderr


def test_endpoints_run_with_a_missing_config_exits_2(worker: WorkerProcess, tmp_path: Path) -> None:
    result = cli(worker.settings, "endpoints", "run", "--config", str(tmp_path / "none.yaml"))
    assert result.returncode == 2
    assert "none.yaml" in result.stderr


# -- replay (last: it tampers with the live table's changelog) --------------------------------


def replay_until(worker: WorkerProcess, code: int, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `replay` until it exits with `code`: the worker writes its changelog as it folds,
    so a SKU still being folded differs for a moment."""

    def attempt() -> subprocess.CompletedProcess[str] | None:
        result = cli(worker.settings, "replay", *args)
        assert result.returncode in (0, 1), result.stderr
        return result if result.returncode == code else None

    return wait_for(attempt, 60, f"replay {' '.join(args)} to exit {code}", interval=1.0)  # type: ignore[no-any-return]


def test_replay_of_the_log_equals_the_live_table(worker: WorkerProcess) -> None:
    result = replay_until(worker, 0)
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("SAME: ")
    assert "replay: records read" in result.stderr  # progress
    rows = cli(worker.settings, "replay", "--no-diff", "--sku", "CLI-RES")
    (line,) = ok(rows).splitlines()
    row = json.loads(line)
    assert row["locations"]["dc-2"]["reserved"] == 2  # the confirmed hold stays reserved
    assert row["holds"] == ["cli-r1"]  # a confirmed hold stays in the row as an order line


def test_replay_names_a_sku_the_live_table_has_wrong(worker: WorkerProcess) -> None:
    s = worker.settings
    # given a bogus row for a known SKU and a row for a SKU no event created, written straight
    # to the changelog (as a bug or a bad restore would)
    status, _ = worker.atp("CLI-ATP")
    assert status == 200
    wrong = SkuRow(sku="CLI-ATP", locations={"dc-2": LocationStock(on_hand=700)}, revision=1)
    ghost = SkuRow(sku="CLI-GHOST", locations={"dc-1": LocationStock(on_hand=1)}, revision=1)
    producer = Producer({"bootstrap.servers": s.bootstrap_servers})
    for row in (wrong, ghost):
        key = row.sku.encode()
        producer.produce(
            s.topics.atp_changelog,
            key=key,
            value=row_to_bytes(row),
            partition=murmur2_partition(key, s.partitions),
        )
    assert producer.flush(30) == 0

    result = cli(s, "replay")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "CLI-ATP locations.dc-2.on_hand: live 700, replay 7" in out
    assert "CLI-GHOST only in the live table" in out
    assert out.strip().splitlines()[-1].startswith("DIFFERENT: ")

    # limited to SKUs the tampering did not touch, the tables are equal
    assert cli(s, "replay", "--sku", "CLI-RES", "--sku", "CLI-TAIL").returncode == 0


def test_replay_without_topics_exits_2(isolated: Settings) -> None:
    result = cli(isolated, "replay")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
