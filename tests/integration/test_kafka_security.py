"""Kafka security on a real broker: SASL/SCRAM for the worker and every client, and ACLs that
keep a channel to its own topics (STOCKSYNC_SOURCE_TOPICS).

The project's launcher starts a second, throwaway broker whose client listener takes only
SASL_PLAINTEXT with SCRAM-SHA-512 and enforces ACLs (StandardAuthorizer); `stocksync` is its
super user, `channel-web` a channel with no rights until the test grants them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

# confluent_kafka.admin re-exports its public ACL and resource types without __all__ or an alias
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from pydantic import SecretStr

from stocksync.channels.producer import ChannelProducer, DeliveryFailed
from stocksync.config import Settings
from stocksync.domain.events import EventKind
from tests.integration.reservation_clients import reserve_once
from tests.integration.support import (
    REPO,
    WorkerProcess,
    read_records,
    throwaway_broker,
    unique_settings,
    wait_for,
)

WORKER_USER, WORKER_PASSWORD = "stocksync", "worker-secret"
WEB_USER, WEB_PASSWORD = "channel-web", "web-secret"
LIMITED_USER, LIMITED_PASSWORD = "stocksync-limited", "limited-secret"
SKU = "SEC-1"


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    users = (
        f"{WORKER_USER}:{WORKER_PASSWORD},{WEB_USER}:{WEB_PASSWORD},"
        f"{LIMITED_USER}:{LIMITED_PASSWORD}"
    )
    home = tmp_path_factory.mktemp("scram-kafka")
    with throwaway_broker(home, STOCKSYNC_KAFKA_SCRAM_USERS=users) as bootstrap:
        yield bootstrap


def as_user(settings: Settings, user: str, password: str) -> Settings:
    return settings.model_copy(
        update={
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": user,
            "sasl_password": SecretStr(password),
        }
    )


@pytest.fixture(scope="module")
def secured_worker(
    scram_broker: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    home = tmp_path_factory.mktemp("secured-worker")
    settings = as_user(
        unique_settings(scram_broker, home / "state", source_topics="web"),
        WORKER_USER,
        WORKER_PASSWORD,
    )
    worker = WorkerProcess(settings, home / "worker.log").start()
    yield worker
    worker.stop(signal.SIGTERM)


def test_the_worker_and_its_clients_work_over_sasl_scram(secured_worker: WorkerProcess) -> None:
    # given a worker that provisioned its topics, joined its group and serves, all over SCRAM
    settings = secured_worker.settings
    with ChannelProducer(
        settings.bootstrap_servers, "wms", settings.topics, settings.librdkafka_config()
    ) as wms:
        wms.emit(EventKind.RECEIVED, SKU, "dc-2", 9)

    # then events are folded, and a reservation goes through the command and reply topics
    view = secured_worker.wait_revision(SKU, 1)
    assert view["locations"]["dc-2"]["on_hand"] == 9
    body = {"channel": "web", "sku": SKU, "quantity": 4}
    status, held = reserve_once(secured_worker.url, body, "sec-hold-1")
    assert status == 201, held
    assert secured_worker.atp(SKU)[1]["locations"]["dc-2"]["reserved"] == 4


def test_a_channel_principal_writes_only_its_own_topics(secured_worker: WorkerProcess) -> None:
    settings = secured_worker.settings
    topics = settings.topics
    admin = AdminClient(settings.librdkafka_config())
    # given the ACL of docs/operations.md: channel-web may write under <prefix>src.web. only
    grant = AclBinding(
        ResourceType.TOPIC,
        f"{settings.topic_prefix}src.web.",
        ResourcePatternType.PREFIXED,
        f"User:{WEB_USER}",
        "*",
        AclOperation.WRITE,
        AclPermissionType.ALLOW,
    )
    for future in admin.create_acls([grant]).values():
        future.result(timeout=30)
    web = as_user(settings, WEB_USER, WEB_PASSWORD).librdkafka_config()

    # when the web channel sells through its own topic
    with ChannelProducer(settings.bootstrap_servers, "web", topics, web) as producer:
        producer.emit(EventKind.SOLD, SKU, "dc-2", 1)
    # then it is folded
    assert secured_worker.wait_revision(SKU, 3)["locations"]["dc-2"]["on_hand"] == 8

    # and writing as the warehouse (the shared stock topic) is refused by the broker
    forged = ChannelProducer(
        settings.bootstrap_servers, "wms", topics, {**web, "message.timeout.ms": 10_000}
    )
    forged.emit(EventKind.RECEIVED, SKU, "dc-2", 1000)
    with pytest.raises(DeliveryFailed) as refused:
        forged.flush(30)
    assert "authoriz" in str(refused.value).lower()
    assert secured_worker.atp(SKU)[1]["locations"]["dc-2"]["on_hand"] == 8


def test_wrong_credentials_stop_the_cli_with_the_reason(
    secured_worker: WorkerProcess, tmp_path: Path
) -> None:
    from tests.integration.support import settings_env

    settings = as_user(secured_worker.settings, WORKER_USER, "not-the-password")
    done = subprocess.run(
        [sys.executable, "-m", "stocksync.cli", "topics", "create"],
        env={**settings_env(settings), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "authentication" in done.stderr.lower(), done.stderr[-2000:]


def test_a_worker_whose_records_kafka_refuses_stops_before_losing_any(
    scram_broker: str, tmp_path: Path
) -> None:
    admin_settings = as_user(
        unique_settings(scram_broker, tmp_path / "state"), WORKER_USER, WORKER_PASSWORD
    )
    admin = AdminClient(admin_settings.librdkafka_config())
    principal = f"User:{LIMITED_USER}"
    dead_letter = admin_settings.topics.dead_letter
    # given a worker allowed everything but writing the dead-letter topic
    allowed = [
        AclBinding(
            kind,
            name,
            ResourcePatternType.LITERAL,
            principal,
            "*",
            AclOperation.ALL,
            AclPermissionType.ALLOW,
        )
        for kind, name in (
            (ResourceType.TOPIC, "*"),
            (ResourceType.GROUP, "*"),
            (ResourceType.BROKER, "kafka-cluster"),
        )
    ]
    deny = (
        ResourceType.TOPIC,
        dead_letter,
        ResourcePatternType.LITERAL,
        principal,
        "*",
        AclOperation.WRITE,
        AclPermissionType.DENY,
    )
    for future in admin.create_acls([*allowed, AclBinding(*deny)]).values():
        future.result(timeout=30)
    worker = WorkerProcess(
        as_user(admin_settings, LIMITED_USER, LIMITED_PASSWORD), tmp_path / "worker.log"
    ).start()
    try:
        # when a message that must go to the dead-letter topic arrives, then a good event
        raw = Producer(admin_settings.librdkafka_config())
        raw.produce(admin_settings.topics.stock_events, key=b"REFUSED-1", value=b"not avro")
        raw.flush(30)
        with ChannelProducer(
            scram_broker, "wms", admin_settings.topics, admin_settings.librdkafka_config()
        ) as wms:
            wms.emit(EventKind.RECEIVED, "REFUSED-1", "dc-2", 5)

        # then the worker stops with exit code 75 and Kafka's reason, acknowledging nothing
        process = worker.process
        assert process is not None
        wait_for(lambda: process.poll() is not None, 60, "the worker to stop")
        assert process.returncode == 75, worker.tail()
        log_text = worker.log_path.read_text(errors="replace")
        assert "outputs_not_delivered" in log_text and "authoriz" in log_text.lower()

        # and once the ACL is fixed, a restart dead-letters the message and folds the event
        for future in admin.delete_acls([AclBindingFilter(*deny)]).values():
            future.result(timeout=30)
        worker.start()
        assert worker.wait_revision("REFUSED-1", 1)["locations"]["dc-2"]["on_hand"] == 5
        assert (
            len(
                read_records(
                    scram_broker, dead_letter, expect=1, config=admin_settings.librdkafka_config()
                )
            )
            == 1
        )
    finally:
        if worker.process and worker.process.poll() is None:
            worker.stop(signal.SIGTERM)
