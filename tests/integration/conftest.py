from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.support import WorkerProcess, free_port, unique_settings

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One real worker process per test module, on its own topics and consumer group."""
    home: Path = tmp_path_factory.mktemp("worker")
    settings = unique_settings(kafka_bootstrap, home / "state")
    process = WorkerProcess(settings, home / "worker.log").start()
    yield process
    process.stop(signal.SIGTERM)


@pytest.fixture()
def fresh_worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A worker of the test's own (a test that kills and restarts it); SIGKILLed at the end
    if it still runs."""
    settings = unique_settings(kafka_bootstrap, tmp_path / "state")
    process = WorkerProcess(settings, tmp_path / "worker.log").start()
    yield process
    if process.process and process.process.poll() is None:
        process.stop(signal.SIGKILL)


@pytest.fixture()
def pair(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[WorkerProcess, WorkerProcess]]:
    """Two workers of one group on the same topics, each with its own state and HTTP port."""
    first = unique_settings(kafka_bootstrap, tmp_path / "a" / "state")
    port = free_port()
    second = first.model_copy(
        update={
            "data_dir": tmp_path / "b" / "state",
            "http_port": port,
            "advertised_url": f"http://127.0.0.1:{port}",
        }
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = WorkerProcess(first, tmp_path / "a" / "worker.log").start()
    b = WorkerProcess(second, tmp_path / "b" / "worker.log").start()
    yield a, b
    for worker in (a, b):
        if worker.process and worker.process.poll() is None:
            worker.stop(signal.SIGKILL)
