"""A broker that ``kafka.start()`` has just launched is not taken for a stranger or a dead process.

Python's ``Popen`` returns while the kernel is still loading the new program: until it has, the
child's ``/proc/<pid>/cmdline`` reads empty (and a launcher that execs again shows another command
line for a moment). One such look used to make ``wait_ready`` report a starting broker as "not
running", and a second ``start()`` launch another broker. These tests stand in for the broker with
small real processes.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.local_infra import InfraError, instance, pid_alive, terminate
from shared.local_infra import kafka as kafka_infra
from tests.conftest import free_port

pytestmark = pytest.mark.infra

# Waits for a main class on stdin, then execs into a command line naming it, as a launcher does.
LAUNCHER = """
import os, sys
main_class = sys.stdin.read()
os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)", main_class])
"""

# Execs into a command line naming the main class (from the environment) after a moment.
SLOW_LAUNCHER = """
import os, sys, time
time.sleep(0.5)
os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)", os.environ["FAKE_MAIN_CLASS"]])
"""

# Writes a fatal line to its log and exits, as a broker that cannot start does.
DYING_BROKER = "import sys; print('ERROR Exiting Kafka due to fatal exception during startup.'); sys.exit(1)"


def _launch(code: str, state_dir: Path, stdin: int | None = None) -> subprocess.Popen[bytes]:
    """Start ``code`` the way ``start()`` starts the broker: output to the log, pid in the pid file."""
    kafka_dir = state_dir / "kafka"
    kafka_dir.mkdir(parents=True, exist_ok=True)
    with (kafka_dir / "kafka.log").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=stdin, stdout=log, stderr=subprocess.STDOUT)
    (kafka_dir / "kafka.pid").write_text(f"{proc.pid}\n")
    return proc


@pytest.fixture
def launched() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


async def test_waits_for_a_launched_broker_whose_command_line_is_not_final_yet(
    kafka_bootstrap: str, tmp_path: Path, launched: list[subprocess.Popen[bytes]]
) -> None:
    # the shared broker answers on the port, standing in for the one the launcher is becoming
    shared_port = int(kafka_bootstrap.rpartition(":")[2])
    with instance(kafka_port=shared_port, pg_port=free_port(), state_dir=tmp_path):
        proc = _launch(LAUNCHER, tmp_path, stdin=subprocess.PIPE)
        launched.append(proc)
        assert not pid_alive(proc.pid, cmdline_contains=kafka_infra.MAIN_CLASS)  # not the broker's yet

        await kafka_infra.wait_ready(30)  # used to raise "the Kafka broker is not running"

        assert proc.stdin is not None
        proc.stdin.write(kafka_infra.MAIN_CLASS.encode())
        proc.stdin.close()  # the launcher execs: the same pid now shows the broker's command line
        deadline = time.monotonic() + 30
        while not pid_alive(proc.pid, cmdline_contains=kafka_infra.MAIN_CLASS):
            assert proc.poll() is None and time.monotonic() < deadline
            await asyncio.sleep(0.05)


async def test_a_broker_that_exits_during_start_is_reported_at_once_with_its_log(
    tmp_path: Path, launched: list[subprocess.Popen[bytes]]
) -> None:
    with instance(kafka_port=free_port(), pg_port=free_port(), state_dir=tmp_path):  # nothing will answer
        proc = _launch(DYING_BROKER, tmp_path)
        launched.append(proc)

        with pytest.raises(InfraError) as failure:
            await kafka_infra.wait_ready(600)

    message = str(failure.value)
    assert f"pid {proc.pid}" in message and "exited" in message  # not "not ready after 600 s"
    assert "Exiting Kafka due to fatal exception during startup." in message  # the tail of its log


def test_start_returns_once_the_launched_process_shows_it_is_the_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second ``start()`` (another ``ehc infra up`` waiting on the lock) finds the first one's broker."""
    monkeypatch.setattr(kafka_infra, "ensure_jars", lambda version=None: (tmp_path, False))
    monkeypatch.setattr(kafka_infra, "_format_storage", lambda libs: False)
    monkeypatch.setattr(kafka_infra, "_java_cmd", lambda libs, main_class, *args: [sys.executable, "-c", SLOW_LAUNCHER])
    monkeypatch.setenv("FAKE_MAIN_CLASS", kafka_infra.MAIN_CLASS)
    pids: set[int | None] = set()
    with instance(kafka_port=free_port(), pg_port=free_port(), state_dir=tmp_path):
        try:
            first = kafka_infra.start()
            pids.add(first.pid)
            assert kafka_infra.status().running

            second = kafka_infra.start()
            pids.add(second.pid)
            assert second.already_running and second.pid == first.pid
        finally:
            for pid in filter(None, pids):
                terminate(pid, timeout=5)
