"""A real PostgreSQL cluster of the project's own, from Debian's packages.

* Binaries: ``/usr/lib/postgresql/<major>/bin`` (the newest installed major); if there is none,
  ``apt-get install -y postgresql`` (root only). Debian's own cluster "main" on 5432 is neither
  used nor touched.
* Cluster: ``${EHC_STATE_DIR:-~/.local/state/ehc}/postgres`` holds ``data/``, ``postgres.log``
  and the unix socket. When we are root the directory belongs to the ``postgres`` OS user and
  ``initdb``/``pg_ctl`` run through ``runuser -u postgres --``; otherwise as the current user.
* Network: TCP on 127.0.0.1:``${EHC_LOCAL_PG_PORT:-55432}`` only; role ``ehc``/``ehc`` (LOGIN,
  CREATEDB) owning database ``ehc``. Durability settings stay at PostgreSQL's defaults.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import asyncpg

from shared.local_infra import (
    InfraError,
    Started,
    Status,
    locked,
    pid_alive,
    port_answers,
    read_pid,
    rss_mib,
    setting,
    state_root,
    tail,
)

__all__ = [
    "bin_dir",
    "database_url",
    "dsn",
    "ensure_installed",
    "log_file",
    "port",
    "start",
    "state_dir",
    "status",
    "stop",
    "wait_ready",
]

DEFAULT_PORT = 55432
ROLE = "ehc"
PASSWORD = "ehc"
DATABASE = "ehc"
OS_USER = "postgres"  # runs the server when we are root (PostgreSQL refuses to run as root)


# -- locations -----------------------------------------------------------------------------


def port() -> int:
    """``${EHC_LOCAL_PG_PORT:-55432}``."""
    return int(setting("EHC_LOCAL_PG_PORT") or DEFAULT_PORT)


def database_url() -> str:
    """SQLAlchemy URL of the project's database, the value for ``EHC_DATABASE_URL``."""
    return f"postgresql+asyncpg://{ROLE}:{PASSWORD}@127.0.0.1:{port()}/{DATABASE}"


def dsn() -> str:
    """The same database as a plain libpq/asyncpg DSN."""
    return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port()}/{DATABASE}"


def state_dir() -> Path:
    """``<state>/postgres``: data directory, log and unix socket of the cluster."""
    return state_root() / "postgres"


def _data_dir() -> Path:
    return state_dir() / "data"


def log_file() -> Path:
    return state_dir() / "postgres.log"


def _is_root() -> bool:
    return os.geteuid() == 0


def _installed_bin_dirs() -> list[Path]:
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")]

    def major(bin_path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", bin_path.parent.name)) or (0,)

    return sorted(found, key=major)


def bin_dir() -> Path:
    """``/usr/lib/postgresql/<newest major>/bin``; raises if PostgreSQL is not installed."""
    dirs = _installed_bin_dirs()
    if not dirs:
        raise InfraError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres)")
    return dirs[-1]


# -- installation ---------------------------------------------------------------------------


def _apt_install(*packages: str) -> None:
    if not _is_root():
        names = " ".join(packages)
        raise InfraError(f"installing {names} needs root: run `sudo apt-get install {names}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            out = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
            raise InfraError(f"`{' '.join(cmd)}` failed:\n{out}")


def ensure_installed() -> bool:
    """Install Debian's ``postgresql`` package if no server binary exists. True if installed now."""
    if _installed_bin_dirs():
        return False
    _apt_install("postgresql")
    if not _installed_bin_dirs():
        raise InfraError("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/postgres exists")
    return True


# -- running commands as the cluster's owner ------------------------------------------------


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *cmd] if _is_root() else cmd


def _run(cmd: list[str], what: str, input: str | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(
        _as_owner(cmd),
        capture_output=True,
        text=True,
        cwd=state_dir(),  # must be readable by the owner (root's cwd may not be)
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        timeout=timeout,
    )
    if proc.returncode != 0:
        log = tail(log_file())
        raise InfraError(
            f"{what} failed ({proc.returncode}): {(proc.stdout + proc.stderr).strip()}"
            + (f"\nlast 40 lines of {log_file()}:\n{log}" if log else "")
        )
    return proc.stdout


def _owner_can_enter(path: Path) -> bool:
    return subprocess.run(["runuser", "-u", OS_USER, "--", "test", "-x", str(path)]).returncode == 0


def _prepare_state_dir() -> list[str]:
    """Create the state directory; when root, hand it to ``postgres`` and make it reachable.

    A root home directory is usually mode 0700, so the ``postgres`` user could not reach a data
    directory below it. Each directory on the way that blocks it gets a POSIX ACL entry granting
    that one user search (x) permission only: no listing, nothing for other users.
    """
    d = state_dir()
    d.mkdir(parents=True, exist_ok=True)
    if len(str(d / f".s.PGSQL.{port()}")) > 100:
        raise InfraError(f"unix socket path in {d} is too long for PostgreSQL; set a shorter EHC_STATE_DIR")
    notes: list[str] = []
    if not _is_root():
        d.chmod(0o700)
        return notes
    shutil.chown(d, OS_USER, OS_USER)
    d.chmod(0o700)
    if _owner_can_enter(d):
        return notes
    granted: list[str] = []
    for p in reversed(d.parents):  # from / downwards: a directory is judged once its parents pass
        if _owner_can_enter(p):
            continue
        if not shutil.which("setfacl"):
            _apt_install("acl")
            notes.append("installed acl")
        proc = subprocess.run(["setfacl", "-m", f"u:{OS_USER}:x", str(p)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise InfraError(
                f"the {OS_USER} user cannot reach {d} and `setfacl -m u:{OS_USER}:x {p}` failed "
                f"({proc.stderr.strip()}); set EHC_STATE_DIR to a directory it can reach"
            )
        granted.append(str(p))
    notes.append(f"granted {OS_USER} search permission (ACL u:{OS_USER}:x) on " + ", ".join(granted))
    if not _owner_can_enter(d):
        raise InfraError(f"the {OS_USER} user still cannot reach {d}; set EHC_STATE_DIR elsewhere")
    return notes


def _write_owned(path: Path, text: str) -> None:
    path.write_text(text)
    if _is_root():
        shutil.chown(path, OS_USER, OS_USER)
    path.chmod(0o600)


def _initdb(bindir: Path) -> bool:
    """Create the cluster once (into a temporary directory renamed into place). True if now."""
    data = _data_dir()
    if (data / "PG_VERSION").is_file():
        return False
    if data.exists():
        raise InfraError(f"{data} exists but holds no cluster (no PG_VERSION); move it away")
    tmp = state_dir() / ".data-initdb"
    if tmp.exists():
        shutil.rmtree(tmp)
    _run(
        [
            str(bindir / "initdb"), "-D", str(tmp), "--encoding=UTF8", "--locale=C.UTF-8",
            "--auth-local=peer", "--auth-host=scram-sha-256",
        ],
        "initdb",
    )  # fmt: skip
    with (tmp / "postgresql.conf").open("a") as conf:
        conf.write("\n# the ehc project's settings (rewritten on every start)\n")
        conf.write("include_if_exists = 'ehc.conf'\n")
    tmp.rename(data)
    return True


def _write_settings() -> None:
    _write_owned(
        _data_dir() / "ehc.conf",
        "# Written by shared/local_infra/postgres.py on every start; edits are overwritten.\n"
        f"port = {port()}\n"
        "listen_addresses = '127.0.0.1'\n"
        f"unix_socket_directories = '{state_dir()}'\n"
        "max_connections = 200\n"
        "shared_buffers = 128MB\n"
        "log_line_prefix = '%m [%p] %q%u@%d '\n"
        "log_timezone = 'UTC'\n",
    )


def _provision_role_and_database(bindir: Path) -> None:
    sql = f"""
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
    CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}';
  END IF;
END$$;
SELECT 'CREATE DATABASE {DATABASE} OWNER {ROLE}'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE}')\\gexec
"""
    psql = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", str(state_dir()), "-p", str(port()), "-d", "postgres"]  # fmt: skip
    _run(psql, "creating role and database ehc", input=sql)


# -- lifecycle -------------------------------------------------------------------------------


def _running_pid() -> int | None:
    pid = read_pid(_data_dir() / "postmaster.pid")
    return pid if pid_alive(pid, cmdline_contains=str(_data_dir())) else None


def start() -> Started:
    """Install (first time, root), initialise (first time) and start the cluster; idempotent.

    Waits until the server accepts connections (``pg_ctl -w``) and creates role and database
    ``ehc`` if missing.
    """
    notes: list[str] = []
    t0 = time.monotonic()
    if ensure_installed():
        notes.append(f"installed with apt ({time.monotonic() - t0:.1f} s)")
    bindir = bin_dir()
    state_dir().mkdir(parents=True, exist_ok=True)
    with locked(state_root() / ".postgres.lock"):
        notes += _prepare_state_dir()
        pid = _running_pid()
        if pid is not None and port_answers(port()):
            _provision_role_and_database(bindir)
            return Started("postgres", pid, already_running=True, notes=("already running", *notes))
        if pid is None and port_answers(port()):
            raise InfraError(
                f"port {port()} is taken by a process that is not this project's PostgreSQL "
                f"({_data_dir()}); stop it or set EHC_LOCAL_PG_PORT"
            )
        if _initdb(bindir):
            notes.append("cluster initialised")
        _write_settings()
        if pid is None:
            log = log_file()
            if log.exists() and log.stat().st_size > 0:
                log.replace(log.with_name(log.name + ".1"))
            pg_ctl = [str(bindir / "pg_ctl"), "-D", str(_data_dir()), "-l", str(log)]
            _run([*pg_ctl, "-w", "-t", "60", "-s", "start"], "pg_ctl start")
        else:  # the postmaster runs but does not answer yet (starting or recovering): wait for it
            _wait_accepting(bindir, 60)
        _provision_role_and_database(bindir)
        notes.append(f"PostgreSQL {bindir.parent.name}")
        return Started("postgres", _running_pid(), already_running=False, notes=tuple(notes))


def _wait_accepting(bindir: Path, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        ok = subprocess.run(
            [str(bindir / "pg_isready"), "-q", "-h", str(state_dir()), "-p", str(port())],
            stdin=subprocess.DEVNULL,
        )
        if ok.returncode == 0:
            return
        time.sleep(0.2)
    log = log_file()
    raise InfraError(f"PostgreSQL does not accept connections; last 40 lines of {log}:\n{tail(log)}")


def stop(timeout: float = 30.0) -> bool:
    """Stop the cluster: fast shutdown, up to ``timeout`` s, then immediate. True if it ran."""
    if not (_data_dir() / "PG_VERSION").is_file():
        return False
    with locked(state_root() / ".postgres.lock"):
        pid = _running_pid()
        if pid is None:
            return False
        pg_ctl = [str(bin_dir() / "pg_ctl"), "-D", str(_data_dir()), "-s", "-w", "-t"]
        try:
            _run([*pg_ctl, str(int(timeout)), "-m", "fast", "stop"], "pg_ctl stop", timeout=timeout + 10)
        except (InfraError, subprocess.TimeoutExpired):
            _run([*pg_ctl, "30", "-m", "immediate", "stop"], "pg_ctl stop -m immediate")
        return True


def status() -> Status:
    """Whether the postmaster runs and its port answers."""
    pid = _running_pid()
    rss = rss_mib(pid)
    dirs = _installed_bin_dirs()
    version = f"PostgreSQL {dirs[-1].parent.name}" if dirs else "PostgreSQL not installed"
    detail = version + (f", postmaster RSS {rss:.0f} MiB" if rss else "")
    return Status("postgres", pid is not None, port_answers(port()), pid, port(), detail)


async def wait_ready(timeout: float = 30.0) -> float:  # noqa: ASYNC109
    """Wait until ``select 1`` works as role ``ehc`` over TCP. Returns the seconds waited."""
    t0 = time.monotonic()
    last_error = "no attempt"
    while time.monotonic() - t0 < timeout:
        try:
            conn = await asyncpg.connect(dsn(), timeout=5)
            try:
                await conn.fetchval("select 1")
            finally:
                await conn.close()
            return time.monotonic() - t0
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        await asyncio.sleep(0.2)
    raise InfraError(
        f"PostgreSQL at 127.0.0.1:{port()} not ready after {timeout:.0f} s ({last_error}); "
        f"last 40 lines of {log_file()}:\n{tail(log_file())}"
    )
