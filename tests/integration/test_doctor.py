"""`stocksync doctor` against the real broker and real workers: all green on a healthy
deployment; a mis-partitioned topic, a fast producer clock, an unknown schema id and a stopped
worker each give a failing row with its fix, and exit 1."""

from __future__ import annotations

import json
import signal
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from stocksync.channels.producer import ChannelProducer
from stocksync.config import Settings
from stocksync.domain.events import EventKind
from stocksync.provision import admin_client, delete_topics, topic_specs, wait_for_leaders
from tests.integration.support import WorkerProcess, http_json, unique_settings
from tests.integration.test_cli import cli


def doctor(settings: Settings, *args: str) -> tuple[int, dict[str, dict[str, str]], str]:
    """Exit code, the rows by check name, and the run's stderr."""
    result = cli(settings, "doctor", "--json", *args)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["ok"] is (result.returncode == 0)
    rows = {row["check"]: row for row in document["checks"]}
    return result.returncode, rows, result.stderr


def failing(rows: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {name: row for name, row in rows.items() if row["status"] != "ok"}


def test_a_healthy_deployment_is_all_green(worker: WorkerProcess) -> None:
    # given a worker that folded events and decided a reservation (records on every topic the
    # worker writes: changelogs, channel quantities, replies)
    s = worker.settings
    with ChannelProducer(s.bootstrap_servers, "doctor-wms", s.topics) as wms:
        for sku in ("DOC-1", "DOC-2"):
            wms.emit(EventKind.RECEIVED, sku, "dc-1", 20)
    worker.wait_revision("DOC-2", 1)
    status, reply = http_json(
        f"{worker.url}/v1/reservations", {"channel": "web", "sku": "DOC-1", "quantity": 2}
    )
    assert status == 201, reply

    # when the doctor looks, then every check passes
    code, rows, _ = doctor(s)
    assert (code, failing(rows)) == (0, {})
    t = s.topics
    assert rows["broker version"]["detail"].endswith("Kafka 4.3"), rows["broker version"]
    assert rows[f"topic {t.atp_changelog}"]["detail"] == "4 partitions, compacted"
    assert rows[f"topic {t.stock_events}"]["detail"] == "4 partitions, kept forever"
    assert rows["co-partitioning"]["detail"].endswith("4 partitions")
    assert rows[f"worker {worker.url}"]["detail"].startswith("ready, partitions [0, 1, 2, 3]")
    assert (
        "2 newest records: ids 3 (stock-event v2) x2" in rows[f"schemas {t.stock_events}"]["detail"]
    )
    assert "reservation-command" in rows[f"schemas {t.reservation_commands}"]["detail"]

    # and the table says so, exit 0
    table = cli(s, "doctor")
    assert table.returncode == 0, table.stdout + table.stderr
    assert table.stdout.splitlines()[0].split() == ["CHECK", "STATUS", "DETAIL", "FIX"]
    assert table.stdout.strip().splitlines()[-1] == f"all {len(rows)} checks pass"


@pytest.fixture
def mispartitioned(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Settings]:
    """A deployment (no worker) whose sale topic has 3 partitions where the others have 4."""
    settings = unique_settings(kafka_bootstrap, tmp_path / "state", partitions=4)
    admin = admin_client(settings)
    wrong = settings.topics.sale_events
    topics = [
        NewTopic(
            spec.name,
            num_partitions=3 if spec.name == wrong else spec.partitions,
            config=spec.config,
        )
        for spec in topic_specs(settings)
    ]
    for future in admin.create_topics(topics).values():
        future.result(30)
    wait_for_leaders(admin, [topic.topic for topic in topics])
    yield settings
    delete_topics(settings)


def test_a_mispartitioned_topic_a_fast_clock_and_an_unknown_schema_fail_with_fixes(
    mispartitioned: Settings,
) -> None:
    s = mispartitioned
    t = s.topics
    # given an event stamped an hour ahead and a record with a schema id nobody published
    with ChannelProducer(s.bootstrap_servers, "pos-fast-clock", t) as pos:
        pos.emit(
            EventKind.RECEIVED, "DOC-9", "dc-1", 1, occurred_at=int(time.time() * 1000) + 3_600_000
        )
    producer = Producer({"bootstrap.servers": s.bootstrap_servers})
    producer.produce(t.stock_events, key=b"DOC-9", value=struct.pack(">BI", 0, 999) + b"\x02")
    assert producer.flush(30) == 0

    # when the doctor looks
    code, rows, _ = doctor(s, "--url", "http://127.0.0.1:9")

    # then it exits 1, and each problem is a failing row with the fix
    assert code == 1
    topic = rows[f"topic {t.sale_events}"]
    assert topic["status"] == "FAIL"
    assert topic["detail"] == "3 partitions, stocksync expects 4 (STOCKSYNC_PARTITIONS)"
    assert "stocksync topics create" in topic["fix"] and f"--topic {t.sale_events}" in topic["fix"]
    co = rows["co-partitioning"]
    assert co["status"] == "FAIL" and f"{t.sale_events} has 3, the others 4" in co["detail"]
    skew = rows["clock skew"]
    assert skew["status"] == "FAIL" and f"pos-fast-clock on {t.stock_events}" in skew["detail"]
    assert "NTP" in skew["fix"]
    schemas = rows[f"schemas {t.stock_events}"]
    assert schemas["status"] == "FAIL" and "999 (unknown) x1" in schemas["detail"]
    assert "registry.json" in schemas["fix"]
    # and what is right stays green
    assert rows[f"topic {t.stock_events}"]["status"] == "ok"
    assert rows["broker"]["status"] == "ok"


def test_a_stopped_worker_is_a_failing_row(fresh_worker: WorkerProcess) -> None:
    # given a deployment whose only worker has stopped
    fresh_worker.stop(signal.SIGTERM)

    # when the doctor looks, then the worker's row fails with how to start one, exit 1
    code, rows, _ = doctor(fresh_worker.settings)
    assert code == 1
    assert set(failing(rows)) == {f"worker {fresh_worker.url}", f"worker {fresh_worker.url} lag"}
    row = rows[f"worker {fresh_worker.url}"]
    assert row["status"] == "FAIL" and row["detail"].startswith("no answer")
    assert "stocksync worker" in row["fix"]
    assert rows[f"worker {fresh_worker.url} lag"]["status"] == "skip"
