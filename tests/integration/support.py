"""Real worker processes and real clients for the integration tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from stocksync.config import Settings, load_settings
from stocksync.provision import ensure_topics

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = REPO / "tests" / "integration" / "topology.yaml"
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_settings(
    bootstrap: str, data_dir: Path, partitions: int = 4, **overrides: Any
) -> Settings:
    """Settings for an isolated deployment: own topics, consumer group and state folder."""
    tag = uuid.uuid4().hex[:8]
    return load_settings(
        bootstrap_servers=bootstrap,
        app_id=f"stocksync-test-{tag}",
        topic_prefix=f"test-{tag}.",
        partitions=partitions,
        topology_file=TOPOLOGY,
        data_dir=data_dir,
        http_port=free_port(),
        **overrides,
    )


def security_env(settings: Settings) -> dict[str, str]:
    if settings.security_protocol == "PLAINTEXT":
        return {}
    env: dict[str, str] = {
        "STOCKSYNC_SECURITY_PROTOCOL": settings.security_protocol,
        "STOCKSYNC_SASL_MECHANISM": settings.sasl_mechanism,
    }
    if settings.sasl_username is not None:
        env["STOCKSYNC_SASL_USERNAME"] = settings.sasl_username
    if settings.sasl_password is not None:
        env["STOCKSYNC_SASL_PASSWORD"] = settings.sasl_password.get_secret_value()
    for name in ("ssl_ca_file", "ssl_cert_file", "ssl_key_file"):
        if (path := getattr(settings, name)) is not None:
            env[f"STOCKSYNC_{name.upper()}"] = str(path)
    return env


def settings_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "STOCKSYNC_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "STOCKSYNC_APP_ID": settings.app_id,
        "STOCKSYNC_TOPIC_PREFIX": settings.topic_prefix,
        "STOCKSYNC_PARTITIONS": str(settings.partitions),
        "STOCKSYNC_TOPOLOGY_FILE": str(settings.topology_file),
        "STOCKSYNC_DATA_DIR": str(settings.data_dir),
        "STOCKSYNC_SOURCE_TOPICS": settings.source_topics,
        "STOCKSYNC_BULK_RESTORE": str(settings.bulk_restore).lower(),
        "STOCKSYNC_HTTP_PORT": str(settings.http_port),
        **(
            {"STOCKSYNC_ADVERTISED_URL": settings.advertised_url} if settings.advertised_url else {}
        ),
        **security_env(settings),
        "STOCKSYNC_LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
    }


def scrape(url: str) -> list[Sample]:
    """Every sample of a worker's GET /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def http_json(url: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@dataclass
class WorkerProcess:
    settings: Settings
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    def start(self, provision: bool = True) -> WorkerProcess:
        """provision=False: the worker creates its topics itself, as on a first deployment."""
        if provision:
            ensure_topics(self.settings)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stocksync.cli", "worker"],
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self.starts.append(time.monotonic())
        self.wait_ready()
        return self

    def health(self) -> dict[str, Any] | None:
        try:
            status, body = http_json(f"{self.url}/readyz", timeout=2)
        except (OSError, ValueError):
            return None
        return body if status == 200 else None

    def duplicates(self) -> int:
        """The duplicate inputs the worker has counted, as its /readyz says while it is ready."""
        health = self.health()
        assert health is not None, "worker not ready"
        count: int = health["duplicates"]
        return count

    def wait_ready(self) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"worker exited with {self.process.returncode}:\n{self.tail()}"
                )
            return self.health()

        try:
            health: dict[str, Any] = wait_for(ready, READY_TIMEOUT, "worker /readyz", interval=0.25)
            return health
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker log ---\n{self.tail()}") from None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Stop with the given signal; SIGKILL after a bound if it does not exit."""
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(STOP_TIMEOUT)

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def http(self, path: str) -> tuple[int, Any]:
        return http_json(f"{self.url}{path}")

    def atp(self, sku: str, channel: str | None = None) -> tuple[int, Any]:
        query = f"?channel={channel}" if channel else ""
        return http_json(f"{self.url}/v1/atp/{sku}{query}")

    def metrics(self) -> dict[str, float]:
        """The worker's Prometheus samples without labels, by sample name."""
        return {sample.name: sample.value for sample in scrape(self.url) if not sample.labels}

    def batch(self, skus: list[str]) -> dict[str, Any]:
        status, body = http_json(f"{self.url}/v1/atp/batch", {"skus": skus})
        assert status == 200, body
        atp: dict[str, Any] = body
        return atp

    def wait_revision(self, sku: str, revision: int, timeout: float = 30.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status, body = self.atp(sku)
            return body if status == 200 and body["revision"] >= revision else None

        body: dict[str, Any] = wait_for(reached, timeout, f"{sku} at revision {revision}")
        return body


def read_topic(
    bootstrap: str, topic: str, *, expect: int | None = None, timeout: float = 30.0
) -> list[tuple[bytes | None, bytes | None]]:
    """Every message of a topic from the beginning (until `expect` messages, or the end)."""
    return [(key, value) for key, value, _ in read_records(bootstrap, topic, expect, timeout)]


def read_log(bootstrap: str, topic: str) -> list[tuple[int, bytes]]:
    """(offset, value) of every non-empty message of a topic, as replay takes them."""
    return [(offset, value) for _, value, offset in read_records(bootstrap, topic) if value]


def read_records(
    bootstrap: str,
    topic: str,
    expect: int | None = None,
    timeout: float = 30.0,
    config: dict[str, Any] | None = None,
) -> list[tuple[bytes | None, bytes | None, int]]:
    """`config`: more librdkafka settings (credentials for a secured broker)."""
    consumer = Consumer(
        {
            **(config or {}),
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = list(metadata.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages: list[tuple[bytes | None, bytes | None, int]] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            error = msg.error()
            if error:
                if error.code() == -191:  # _PARTITION_EOF
                    at_end.add(msg.partition() or 0)
                    if expect is None and at_end == set(partitions):
                        break
                continue
            messages.append((msg.key(), msg.value(), msg.offset() or 0))
            if expect is not None and len(messages) >= expect:
                break
    finally:
        consumer.close()
    return messages


@contextlib.contextmanager
def throwaway_broker(home: Path, **settings: str) -> Iterator[str]:
    """A broker of its own from deploy/kafka/kafka.sh on free ports, with its data in `home`
    and extra launcher settings (STOCKSYNC_KAFKA_SCRAM_USERS, STOCKSYNC_KAFKA_TLS_DIR, ...);
    yields its bootstrap address and stops it afterwards."""
    jars = REPO / ".kafka" / "lib"
    if (jars / ".complete").exists():
        (home / "lib").symlink_to(jars)  # the jars deploy/test.sh fetched; else kafka.sh fetches
    port = free_port()
    env = {
        **os.environ,
        "STOCKSYNC_KAFKA_PORT": str(port),
        "STOCKSYNC_KAFKA_CONTROLLER_PORT": str(free_port()),
        "STOCKSYNC_KAFKA_HOME": str(home),
        "KAFKA_HEAP": "512m",
        **settings,
    }
    launcher = REPO / "deploy" / "kafka" / "kafka.sh"
    subprocess.run(["bash", str(launcher), "start"], check=True, env=env, capture_output=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(launcher), "stop"], check=False, env=env, capture_output=True)


class ResettableBroker:
    """Like throwaway_broker, a broker of its own from deploy/kafka/kafka.sh with its data in
    `home`, but one `fresh()` replaces by a freshly formatted broker: the old one killed and its
    data deleted, a new one started on new free ports (the same port again can fail to bind
    while the old broker's connections linger). A context manager: it kills the broker at the
    end. Killed, not stopped: its data is thrown away, and a clean stop takes seconds."""

    def __init__(self, home: Path, **settings: str) -> None:
        self.home = home
        self.settings = settings
        self.port: int | None = None
        home.mkdir(parents=True, exist_ok=True)
        jars = REPO / ".kafka" / "lib"
        if (jars / ".complete").exists() and not (home / "lib").exists():
            (home / "lib").symlink_to(jars)  # else kafka.sh fetches them into home/lib

    def __enter__(self) -> ResettableBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset()

    def fresh(self) -> str:
        """Kill and delete the current broker, start a freshly formatted one; its bootstrap."""
        self.reset()
        port = free_port()
        env = {
            **os.environ,
            "STOCKSYNC_KAFKA_PORT": str(port),
            "STOCKSYNC_KAFKA_CONTROLLER_PORT": str(free_port()),
            "STOCKSYNC_KAFKA_HOME": str(self.home),
            "KAFKA_HEAP": "512m",
            **self.settings,
        }
        self.port = port
        launcher = REPO / "deploy" / "kafka" / "kafka.sh"
        started = subprocess.run(
            ["bash", str(launcher), "start"], check=False, env=env, capture_output=True
        )
        if started.returncode != 0:
            raise AssertionError(f"kafka.sh start failed:\n{started.stderr.decode()}")
        return f"127.0.0.1:{port}"

    def reset(self) -> None:
        """Kill the broker (by the pid kafka.sh recorded) and delete everything of it in home."""
        if self.port is None:
            return
        pidfile = self.home / f"broker-{self.port}.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not _alive(pid), STOP_TIMEOUT, f"broker pid {pid} to exit")
        for entry in self.home.iterdir():
            if entry.name != "lib":
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        self.port = None


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, killed but not reaped yet, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def partitions(worker: WorkerProcess) -> set[int]:
    """The partitions the worker says it owns (none while it starts or rebalances)."""
    return set((worker.health() or {}).get("partitions") or [])
