"""``kafka.wait_ready`` judges the broker process that ``start()`` launched by whether it has exited,
not by one look at its command line.

Python's ``Popen`` returns while the kernel is still loading the new program: until it has, the
child's ``/proc/<pid>/cmdline`` reads empty (and a launcher that execs again shows another command
line for a moment). One such look used to make ``wait_ready`` report a starting broker as "not
running". These tests stand in for the broker with small real processes whose pid they write to
the pid file ``start()`` writes.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.local_infra import InfraError, instance, pid_alive
from shared.local_infra import kafka as kafka_infra
from tests.conftest import free_port

pytestmark = pytest.mark.infra

# Waits for a main class on stdin, then execs into a command line naming it, as a launcher does.
LAUNCHER = """
import os, sys
main_class = sys.stdin.read()
os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)", main_class])
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
