"""The project's own local infrastructure: a single-node Kafka broker and a PostgreSQL cluster.

Both run as plain processes of this machine (no containers), installed and started by
``shared.local_infra.kafka`` and ``shared.local_infra.postgres`` and driven by the typer app in
``shared.local_infra.cli`` (``ehc infra up|down|status``). Tests marked ``infra``, CI and
``ehc run`` use them.

Where things live (nothing is written inside the repository):

* ``${EHC_CACHE_DIR:-~/.cache/ehc}``: downloaded artefacts (the Kafka jars), safe to delete.
* ``${EHC_STATE_DIR:-~/.local/state/ehc}``: configuration, data, logs and pid files of the
  running services (``kafka/`` and ``postgres/``).

Tests that stop or restart the broker or the database run a second pair of their own: inside
``with instance(kafka_port=..., pg_port=..., state_dir=...)`` every function of both modules works
on that pair instead of the one the environment names (see :func:`instance`).

This module holds only the small helpers both components share; it imports neither of them.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "InfraError",
    "Started",
    "Status",
    "locked",
    "cache_root",
    "instance",
    "pid_alive",
    "setting",
    "port_answers",
    "read_pid",
    "rss_mib",
    "state_root",
    "tail",
    "terminate",
]


class InfraError(RuntimeError):
    """A local infrastructure component could not be installed, started or stopped."""


@dataclass(frozen=True)
class Status:
    """What ``status()`` of a component reports."""

    name: str
    running: bool  # the process recorded in the pid file is alive
    answering: bool  # its port accepts TCP connections
    pid: int | None
    port: int
    detail: str = ""

    def line(self) -> str:
        state = "up" if self.running and self.answering else ("starting" if self.running else "down")
        pid = f"pid {self.pid}" if self.pid and self.running else "no process"
        extra = f" {self.detail}" if self.detail else ""
        return f"{self.name:<9} {state:<8} 127.0.0.1:{self.port} ({pid}){extra}"


@dataclass(frozen=True)
class Started:
    """What ``start()`` of a component did."""

    name: str
    pid: int | None
    already_running: bool
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. "jar cache cold (mvn 21.4 s)"


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_file`` (two ``up`` at once start one broker)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_OVERRIDES: ContextVar[Mapping[str, str] | None] = ContextVar("ehc_local_infra_overrides", default=None)


def setting(name: str) -> str | None:
    """An ``EHC_LOCAL_*``/``EHC_STATE_DIR`` setting: from :func:`instance` when one is active in this
    context, else from the environment."""
    overrides = _OVERRIDES.get() or {}
    return overrides[name] if name in overrides else os.environ.get(name)


@contextmanager
def instance(*, kafka_port: int, pg_port: int, state_dir: Path) -> Iterator[None]:
    """Within the block, ``kafka`` and ``postgres`` work on another local pair: these ports and this
    state directory instead of the environment's. It holds for the current task and the threads it
    starts with ``asyncio.to_thread`` (a context variable), not for the rest of the process, so a
    test can stop its own broker while the other tests' broker keeps running."""
    token = _OVERRIDES.set({"EHC_LOCAL_KAFKA_PORT": str(kafka_port), "EHC_LOCAL_PG_PORT": str(pg_port),
                            "EHC_STATE_DIR": str(state_dir)})
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def cache_root() -> Path:
    """``${EHC_CACHE_DIR:-~/.cache/ehc}``: downloads that can be thrown away."""
    return Path(os.environ.get("EHC_CACHE_DIR") or Path.home() / ".cache" / "ehc").expanduser()


def state_root() -> Path:
    """``${EHC_STATE_DIR:-~/.local/state/ehc}``: configuration, data and logs of the services."""
    return Path(setting("EHC_STATE_DIR") or Path.home() / ".local" / "state" / "ehc").expanduser()


def read_pid(pid_file: Path) -> int | None:
    """The pid in the first line of ``pid_file``, or None if there is no usable one."""
    try:
        first = pid_file.read_text().split("\n", 1)[0].strip()
    except (FileNotFoundError, PermissionError):
        return None
    return int(first) if first.isdigit() else None


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is a finished child of this process (so it stops being a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def pid_alive(pid: int | None, cmdline_contains: str | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, if given, its command line contains the text.

    The command line check guards against a stale pid file whose number now belongs to an
    unrelated process (after a reboot, say).
    """
    if not pid:
        return False
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        if cmdline_contains is not None:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            return cmdline_contains in cmdline
    except (FileNotFoundError, ProcessLookupError):
        return False
    except (PermissionError, IndexError):
        pass
    return True


def rss_mib(pid: int | None) -> float | None:
    """Resident memory of ``pid`` in MiB (from /proc), or None if unknown."""
    if not pid:
        return None
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, PermissionError, ValueError, IndexError):
        return None
    return None


def port_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def terminate(pid: int, timeout: float = 30.0, group: bool = False) -> bool:
    """SIGTERM ``pid`` (its process group if ``group``), wait up to ``timeout`` s, then SIGKILL.

    Returns True if the process ended within ``timeout`` after SIGTERM, False if it was killed.
    """

    def send(sig: int) -> None:
        try:
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    send(signal.SIGKILL)
    for _ in range(100):
        if not pid_alive(pid):
            break
        time.sleep(0.05)
    return False


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with path.open("r", errors="replace") as f:
            return "".join(deque(f, maxlen=lines))
    except FileNotFoundError:
        return ""
