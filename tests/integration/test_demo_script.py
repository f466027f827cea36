"""deploy/demo.sh on the test broker, on ports of its own: a second start while a demo runs
starts nothing and touches none of its files; `status` shows what runs; `stop` stops exactly
what the demo started (not a broker it found running); a new start keeps the last run's logs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.support import REPO, free_port, wait_for

DEMO = REPO / "deploy" / "demo.sh"
START_TIMEOUT = 180.0
RUNNING = "stocksync demo is running"


class Demo:
    def __init__(self, bootstrap: str, home: Path) -> None:
        self.home = home
        self.data = home / "demo"
        self.runs: list[subprocess.Popen[bytes]] = []
        host, port = bootstrap.rsplit(":", 1)
        tag = uuid.uuid4().hex[:8]
        self.http_port = free_port()
        self.endpoint_ports = [free_port() for _ in range(3)]
        self.connector_ports = [free_port() for _ in range(3)]
        self.broker = (host, int(port))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("STOCKSYNC_", "DEMO_"))},
            "STOCKSYNC_KAFKA_PORT": port,
            "STOCKSYNC_BOOTSTRAP_SERVERS": bootstrap,
            "STOCKSYNC_HTTP_PORT": str(self.http_port),
            "STOCKSYNC_DATA_DIR": str(self.data),
            "STOCKSYNC_APP_ID": f"demo-test-{tag}",
            "STOCKSYNC_TOPIC_PREFIX": f"demo-test-{tag}.",
            "STOCKSYNC_PARTITIONS": "2",
            "DEMO_RATE": "5",
            "DEMO_ENDPOINT_PORTS": " ".join(map(str, self.endpoint_ports)),
            "DEMO_CONNECTOR_PORTS": " ".join(map(str, self.connector_ports)),
        }

    def start(self) -> Path:
        """Start a demo in the foreground of its own session; returns its output file once it
        says it runs."""
        output = self.home / f"run-{len(self.runs) + 1}.out"
        with output.open("wb") as out:
            run = subprocess.Popen(
                ["bash", str(DEMO)],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.runs.append(run)

        def running() -> bool:
            if run.poll() is not None:
                raise AssertionError(f"demo.sh exited {run.returncode}:\n{output.read_text()}")
            return RUNNING in output.read_text()

        wait_for(running, START_TIMEOUT, "the demo to say it runs", interval=0.5)
        return output

    def command(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        done = subprocess.run(
            ["bash", str(DEMO), *args],
            cwd=REPO,
            env=env or self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=180,
        )
        return done.returncode, done.stdout

    def pid_files(self) -> dict[str, str]:
        return {p.stem: p.read_text() for p in sorted((self.data / "run").glob("*.pid"))}

    def pids(self) -> dict[str, int]:
        return {name: int(text.split()[0]) for name, text in self.pid_files().items()}

    def processes(self) -> set[int]:
        """Every process that runs with this demo's data folder in its environment."""
        marker = f"STOCKSYNC_DATA_DIR={self.data}".encode()
        found = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "environ").read_bytes().split(b"\0") and alive(
                    int(entry.name)
                ):
                    found.add(int(entry.name))
        return found

    def broker_answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(self.broker, timeout=2):
            return True
        return False

    def kill_all(self) -> None:
        """After a failure: stop through the script, then the sessions left."""
        self.command("stop")
        for run in self.runs:
            if run.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.pid, signal.SIGKILL)
                run.wait(30)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture()
def demo(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Demo]:
    demo = Demo(kafka_bootstrap, tmp_path)
    try:
        yield demo
    finally:
        demo.kill_all()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads processes in /proc")
def test_a_second_start_finds_the_running_demo_and_stop_stops_what_it_started(
    demo: Demo,
) -> None:
    # given a running demo
    demo.start()
    pid_files = demo.pid_files()
    pids = demo.pids()
    assert set(pids) >= {
        "demo",
        "worker",
        "endpoints",
        "connector-web",
        "connector-amazon",
        "connector-pos-store-1",
        "simulator",
    }, pid_files
    assert "broker" not in pids  # the test broker answered: the demo did not start one
    processes = demo.processes()
    assert set(pids.values()) <= processes
    worker_log = demo.data / "logs" / "worker.log"
    first_log = worker_log.stat().st_ino, worker_log.read_text().splitlines()[0]

    # when it is started again
    code, output = demo.command()
    # then it says so, with its PIDs and URLs, and exits 0 having started and touched nothing
    assert code == 0, output
    assert "already running" in output, output
    for name, pid in pids.items():
        assert str(pid) in output, f"{name} pid {pid} not shown:\n{output}"
    for port in [demo.http_port, *demo.endpoint_ports, *demo.connector_ports]:
        assert f"http://127.0.0.1:{port}" in output, output
    assert demo.pid_files() == pid_files
    assert demo.processes() == processes, "a second start left processes running"
    assert (worker_log.stat().st_ino, worker_log.read_text().splitlines()[0]) == first_log
    assert not (demo.data / "logs.1").exists()

    # when started from another data folder on the same ports: refused, naming the ports
    other = {**demo.env, "STOCKSYNC_DATA_DIR": str(demo.home / "other")}
    code, output = demo.command(env=other)
    assert code == 1, output
    assert str(demo.http_port) in output and "taken" in output, output
    assert demo.processes() == processes

    # status: what runs, with its health
    code, output = demo.command("status")
    assert code == 0, output
    assert "ready" in output and str(pids["worker"]) in output, output

    # stop: every process the demo started ends, the broker it found keeps running
    code, output = demo.command("stop")
    assert code == 0, output
    assert "not started by the demo" in output, output
    wait_for(lambda: not demo.processes(), 60, "the demo's processes to end")
    assert demo.runs[0].wait(30) == 0
    assert demo.broker_answers()
    code, output = demo.command("status")
    assert code == 3 and "no demo runs" in output, output

    # a new start keeps the last run's logs
    demo.start()
    assert (demo.data / "logs.1" / "worker.log").stat().st_ino == first_log[0]
    assert (demo.data / "logs" / "worker.log").stat().st_ino != first_log[0]
    code, output = demo.command("stop")
    assert code == 0, output
    started = time.monotonic()
    wait_for(lambda: not demo.processes(), 60, "the demo's processes to end")
    assert time.monotonic() - started < 60
