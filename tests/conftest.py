"""Shared fixtures. The Kafka broker comes from, in order:
1. STOCKSYNC_TEST_BOOTSTRAP (a running broker, e.g. the one `deploy/test.sh` starts);
2. testcontainers' Kafka module, when a Docker engine answers;
3. the project's launcher, deploy/kafka/kafka.sh, on port STOCKSYNC_TEST_KAFKA_PORT (19092).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    given = os.environ.get("STOCKSYNC_TEST_BOOTSTRAP")
    if given:
        yield given
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    port = os.environ.get("STOCKSYNC_TEST_KAFKA_PORT", "19092")
    env = {**os.environ, "STOCKSYNC_KAFKA_PORT": port}
    launcher = REPO / "deploy" / "kafka" / "kafka.sh"
    subprocess.run(["bash", str(launcher), "start"], check=True, env=env)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(launcher), "stop"], check=False, env=env)
