"""A three-node KRaft cluster from the project's launcher (`deploy/kafka/kafka.sh cluster`):
stocksync's topics provisioned with three replicas and min.insync.replicas=2; a channel keeps
producing while one broker is SIGKILLed and restarted, and every event Kafka acknowledged is
read back; a replication factor above the number of brokers is refused by name.

The cluster runs on its own ports and data folder and is stopped at the end, also on failure.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import TopicCollection
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    ResourceType,
)

from stocksync.channels.producer import ChannelProducer, DeliveryFailed
from stocksync.codec.events import decode_event
from stocksync.domain.events import EventKind
from stocksync.provision import ensure_topics, topic_specs
from tests.integration.support import (
    REPO,
    read_records,
    settings_env,
    unique_settings,
    wait_for,
)

LAUNCHER = REPO / "deploy" / "kafka" / "kafka.sh"
NODES = 3
PORTS = 2 * NODES  # a broker and a controller port per node, from the base port up
LOWEST_PORT = 20_000


def ephemeral_low() -> int:
    """Where the kernel's ephemeral ports start: outgoing connections (the nodes' own, to each
    other) take local ports from there, and one taken before a node listens on it makes the
    node fail to bind. So the cluster's ports are chosen below it, not with support.free_port,
    which hands out ports from that very range."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port() -> int:
    """A base port whose PORTS consecutive ports are all free, below the ephemeral range."""
    high = ephemeral_low() - PORTS
    for _ in range(100):
        base = random.randrange(LOWEST_PORT, high)
        if all(port_free(base + i) for i in range(PORTS)):
            return base
    raise AssertionError(f"no {PORTS} consecutive free ports between {LOWEST_PORT} and {high}")


class Cluster:
    """`kafka.sh cluster ...` with this cluster's port and data folder."""

    def __init__(self, home: Path, base: int) -> None:
        self.base = base
        self.env = {
            **os.environ,
            "STOCKSYNC_KAFKA_HOME": str(home),
            "STOCKSYNC_KAFKA_CLUSTER_PORT": str(base),
            "KAFKA_HEAP": "512m",
        }
        # the caller's own launcher settings would move the controllers or be refused
        for name in (
            "STOCKSYNC_KAFKA_CLUSTER_CONTROLLER_PORT",
            "STOCKSYNC_KAFKA_SCRAM_USERS",
            "STOCKSYNC_KAFKA_TLS_DIR",
        ):
            self.env.pop(name, None)
        self.bootstrap = ",".join(f"127.0.0.1:{base + i}" for i in range(NODES))

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["bash", str(LAUNCHER), "cluster", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=240,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"kafka.sh cluster {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
        return done

    def states(self) -> dict[int, str]:
        """node -> up, starting or down, as `cluster status` says."""
        out = self.run("status", check=False).stdout
        return {
            int(line.split()[1]): line.split()[2]
            for line in out.splitlines()
            if line.startswith("node ")
        }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if shutil.which("java") is None:
        pytest.skip(
            "Java 17+ is not installed (apt-get install -y openjdk-17-jre-headless): the "
            "cluster runs Apache Kafka from its jars"
        )
    home = tmp_path_factory.mktemp("kafka-cluster")
    jars = REPO / ".kafka" / "lib"
    if (jars / ".complete").exists():
        (home / "lib").symlink_to(jars)  # the jars deploy/setup.sh fetched; else kafka.sh does
    cluster = Cluster(home, free_base_port())
    try:
        started = cluster.run("start")
        assert started.stdout.strip() == cluster.bootstrap
        yield cluster
    finally:
        # stop escalates to SIGKILL after 30 s itself; a failed start leaves nodes to stop too
        stopped = cluster.run("stop", check=False)
        assert set(cluster.states().values()) == {"down"}, stopped.stderr


def test_status_lists_every_node_with_its_pid_and_port(cluster: Cluster) -> None:
    status = cluster.run("status")
    lines = status.stdout.splitlines()
    for node in range(1, NODES + 1):
        (line,) = [line for line in lines if line.startswith(f"node {node} ")]
        assert " up " in line
        assert f"broker=127.0.0.1:{cluster.base + node - 1}" in line
        assert f"controller=127.0.0.1:{cluster.base + NODES + node - 1}" in line
        assert int(line.split("pid=")[1].split()[0]) > 0
    assert f"bootstrap={cluster.bootstrap}" in lines


def test_a_replication_factor_above_the_brokers_is_refused(
    cluster: Cluster, tmp_path: Path
) -> None:
    settings = unique_settings(cluster.bootstrap, tmp_path / "state", replication_factor=4)
    created = subprocess.run(
        [sys.executable, "-m", "stocksync.cli", "topics", "create"],
        env={**settings_env(settings), "STOCKSYNC_REPLICATION_FACTOR": "4"},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert created.returncode == 2, created.stdout + created.stderr
    assert "STOCKSYNC_REPLICATION_FACTOR=4" in created.stderr
    assert "has 3 brokers up" in created.stderr
    assert "at most 3" in created.stderr
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    topics = admin.list_topics(timeout=10).topics
    assert not [name for name in topics if name.startswith(settings.topic_prefix)]


def test_nothing_acknowledged_is_lost_when_a_broker_is_killed(
    cluster: Cluster, tmp_path: Path
) -> None:
    settings = unique_settings(cluster.bootstrap, tmp_path / "state", replication_factor=3)
    names = [spec.name for spec in topic_specs(settings)]
    assert sorted(ensure_topics(settings)) == sorted(names)

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    for name, future in admin.describe_topics(TopicCollection(names)).items():
        for partition in future.result(10).partitions:
            assert len(partition.replicas) == NODES, (name, partition)
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    for resource, future in admin.describe_configs(resources).items():
        assert future.result(10)["min.insync.replicas"].value == "2", resource

    # A channel producing all along, from a thread of its own; the main thread injects faults.
    producer = ChannelProducer(cluster.bootstrap, "wms", settings.topics)
    sent: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            event = producer.emit(EventKind.RECEIVED, f"HA-{i % 40:02d}", "dc-1", 1)
            sent.append(event.event_id)
            i += 1
            time.sleep(0.005)
        try:
            producer.flush(120)
        except DeliveryFailed as exc:
            failures.append(str(exc))

    thread = threading.Thread(target=produce, name="channel-producer", daemon=True)
    thread.start()
    try:
        wait_for(lambda: producer.delivered >= 200, 30, "200 events acknowledged")
        killed = cluster.run("kill", "2")
        assert "node 2 killed" in killed.stderr
        assert cluster.states() == {1: "up", 2: "down", 3: "up"}
        at_kill = producer.delivered
        # two of three copies in sync are enough for acks=all: writes go on once the
        # partitions node 2 led have new leaders and it has left their in-sync replicas
        wait_for(
            lambda: producer.delivered >= at_kill + 500,
            60,
            "500 more events acknowledged with node 2 down",
        )
        restarted = cluster.run("restart", "2")
        assert restarted.stdout.strip() == cluster.bootstrap
        at_restart = producer.delivered
        wait_for(
            lambda: producer.delivered >= at_restart + 200,
            30,
            "200 more events acknowledged with node 2 back",
        )
    finally:
        stop.set()
        thread.join(150)
    assert not thread.is_alive(), "the producer did not flush within 120 s"
    assert not failures, failures
    assert producer.delivered == len(sent)

    def all_in_sync() -> bool:
        described = admin.describe_topics(TopicCollection([settings.topics.stock_events]))
        (future,) = described.values()
        return all(len(p.isr) == NODES for p in future.result(10).partitions)

    wait_for(all_in_sync, 60, "node 2 back in every stock-events partition's ISR", 0.5)

    records = read_records(cluster.bootstrap, settings.topics.stock_events, timeout=60)
    read = [decode_event(value).event_id for _, value, _ in records]
    missing = set(sent) - set(read)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    # idempotent producer: the retries across the failover wrote nothing twice
    assert len(read) == len(sent)
