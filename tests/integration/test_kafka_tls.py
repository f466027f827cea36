"""TLS on a real broker: the worker (faust/aiokafka) and every librdkafka client trust the
broker through STOCKSYNC_SSL_CA_FILE, and a client that does not trust it is refused with the
reason.

The project's launcher starts a throwaway broker whose client listener is SSL only, with a
certificate signed by a CA the test makes with openssl.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stocksync.channels.producer import ChannelProducer
from stocksync.config import Settings
from stocksync.domain.events import EventKind
from tests.integration.reservation_clients import reserve_once
from tests.integration.support import (
    REPO,
    WorkerProcess,
    settings_env,
    throwaway_broker,
    unique_settings,
)

SKU = "TLS-1"


def openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)


def make_ca(folder: Path, name: str) -> None:
    """<name>.pem and <name>.key: a self-signed certificate authority."""
    openssl(
        folder,
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
        *("-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={name}"),
    )


def make_broker_certificate(folder: Path) -> None:
    """broker.pem: a PKCS#8 key and a certificate for 127.0.0.1 signed by ca.pem."""
    openssl(
        folder,
        *("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key"),
        *("-out", "broker.csr", "-subj", "/CN=127.0.0.1"),
    )
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        folder,
        *("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key"),
        *("-CAcreateserial", "-out", "broker.crt", "-days", "2", "-extfile", "san.ext"),
    )
    openssl(folder, "pkcs8", "-topk8", "-nocrypt", "-in", "broker.key", "-out", "broker.pk8")
    (folder / "broker.pem").write_text(
        (folder / "broker.pk8").read_text() + (folder / "broker.crt").read_text()
    )


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    certs = tmp_path_factory.mktemp("tls-certs")
    make_ca(certs, "ca")
    make_ca(certs, "other-ca")
    make_broker_certificate(certs)
    home = tmp_path_factory.mktemp("tls-kafka")
    with throwaway_broker(home, STOCKSYNC_KAFKA_TLS_DIR=str(certs)) as bootstrap:
        yield bootstrap, certs


def over_tls(settings: Settings, ca_file: Path) -> Settings:
    return settings.model_copy(update={"security_protocol": "SSL", "ssl_ca_file": ca_file})


@pytest.fixture(scope="module")
def tls_worker(
    tls_broker: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    bootstrap, certs = tls_broker
    home = tmp_path_factory.mktemp("tls-worker")
    settings = over_tls(unique_settings(bootstrap, home / "state"), certs / "ca.pem")
    worker = WorkerProcess(settings, home / "worker.log").start()
    yield worker
    worker.stop(signal.SIGTERM)


def test_the_worker_and_its_clients_work_over_tls(tls_worker: WorkerProcess) -> None:
    # given a worker that provisioned, joined and serves over TLS only
    settings = tls_worker.settings
    with ChannelProducer(
        settings.bootstrap_servers, "wms", settings.topics, settings.librdkafka_config()
    ) as wms:
        wms.emit(EventKind.RECEIVED, SKU, "dc-2", 6)
    # then events are folded and a reservation makes the round trip through Kafka
    assert tls_worker.wait_revision(SKU, 1)["locations"]["dc-2"]["on_hand"] == 6
    status, held = reserve_once(tls_worker.url, {"channel": "web", "sku": SKU, "quantity": 2}, "t1")
    assert status == 201, held


def test_a_client_that_does_not_trust_the_broker_stops_with_the_reason(
    tls_worker: WorkerProcess, tls_broker: tuple[str, Path]
) -> None:
    _, certs = tls_broker
    settings = over_tls(tls_worker.settings, certs / "other-ca.pem")
    done = subprocess.run(
        [sys.executable, "-m", "stocksync.cli", "topics", "create"],
        env=settings_env(settings) | {"STOCKSYNC_SSL_CA_FILE": str(certs / "other-ca.pem")},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "certificate" in done.stderr.lower(), done.stderr[-2000:]
