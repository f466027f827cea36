from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.support import WorkerProcess, unique_settings

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
