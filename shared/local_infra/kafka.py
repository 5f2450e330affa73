"""A real single-node Apache Kafka broker (KRaft, combined broker+controller) run from its jars.

* Jars: resolved by Maven from ``infra/kafka/pom.xml`` into
  ``${EHC_CACHE_DIR:-~/.cache/ehc}/kafka-<version>/libs`` (outside the repository). A download
  goes to a temporary directory that is renamed into place only when complete.
* State: ``${EHC_STATE_DIR:-~/.local/state/ehc}/kafka`` holds ``server.properties``,
  ``log4j2.properties``, ``cluster.id``, ``data/`` (the log dirs), ``kafka.log`` and ``kafka.pid``.
* Ports: PLAINTEXT on 127.0.0.1:``${EHC_LOCAL_KAFKA_PORT:-9092}``, CONTROLLER on the next port.

``start()``/``stop()``/``status()`` are synchronous; ``wait_ready()`` and ``ensure_topics()`` are
coroutines (they talk to the broker with aiokafka, like the services do).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from shared.local_infra import (
    InfraError,
    Started,
    Status,
    cache_root,
    locked,
    pid_alive,
    port_answers,
    read_pid,
    rss_mib,
    setting,
    state_root,
    tail,
    terminate,
)

__all__ = [
    "POM",
    "bootstrap_servers",
    "ensure_jars",
    "java_executable",
    "kafka_version",
    "libs_dir",
    "log_file",
    "port",
    "start",
    "state_dir",
    "status",
    "stop",
    "wait_ready",
]

POM = Path(__file__).resolve().parents[2] / "infra" / "kafka" / "pom.xml"
DEFAULT_PORT = 9092
NODE_ID = 1
MAIN_CLASS = "kafka.Kafka"
HEAP_OPTS = ("-Xms256m", "-Xmx768m")
JVM_OPTS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
_TOPIC_ALREADY_EXISTS = 36


# -- locations -----------------------------------------------------------------------------


def kafka_version(pom: Path = POM) -> str:
    """The broker version: ``<kafka.version>`` of ``infra/kafka/pom.xml``."""
    m = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom.read_text())
    if not m:
        raise InfraError(f"no <kafka.version> property in {pom}")
    return m.group(1)


def port() -> int:
    """The PLAINTEXT port: ``${EHC_LOCAL_KAFKA_PORT:-9092}`` (the controller uses the next one)."""
    return int(setting("EHC_LOCAL_KAFKA_PORT") or DEFAULT_PORT)


def bootstrap_servers() -> str:
    """``127.0.0.1:<port>``, the value for ``EHC_KAFKA__BOOTSTRAP_SERVERS``."""
    return f"127.0.0.1:{port()}"


def libs_dir(version: str | None = None) -> Path:
    """``<cache>/kafka-<version>/libs``: where the broker's jars are cached."""
    return cache_root() / f"kafka-{version or kafka_version()}" / "libs"


def state_dir() -> Path:
    """``<state>/kafka``: configuration, data, log and pid file of the broker."""
    return state_root() / "kafka"


def log_file() -> Path:
    """The broker's log (log4j output plus the JVM's stdout/stderr)."""
    return state_dir() / "kafka.log"


def _pid_file() -> Path:
    return state_dir() / "kafka.pid"


def _server_properties() -> Path:
    return state_dir() / "server.properties"


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` if JAVA_HOME is set, else ``java`` from PATH (Java 17+)."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not java.exists():
            raise InfraError(f"JAVA_HOME is {home} but {java} does not exist")
        return str(java)
    java_on_path = shutil.which("java")
    if not java_on_path:
        raise InfraError("no java on PATH and JAVA_HOME unset: install a Java 17 runtime")
    return java_on_path


# -- jars --------------------------------------------------------------------------------


def ensure_jars(version: str | None = None) -> tuple[Path, bool]:
    """Make sure the broker's jars are in the cache. Returns ``(libs dir, downloaded now)``.

    Maven copies the runtime dependencies of ``infra/kafka/pom.xml`` into a temporary directory
    beside the target, which is then renamed into place, so an interrupted download is never used.
    """
    version = version or kafka_version()
    libs = libs_dir(version)
    if (libs / f"kafka_2.13-{version}.jar").is_file():
        return libs, False
    mvn = shutil.which("mvn")
    if not mvn:
        raise InfraError("Maven (mvn) is needed once to fetch the Kafka jars; it is not on PATH")
    libs.parent.mkdir(parents=True, exist_ok=True)
    with locked(libs.parent / ".lock"):
        if (libs / f"kafka_2.13-{version}.jar").is_file():  # another process got there first
            return libs, False
        for stale in libs.parent.glob(".libs-*"):  # left by a killed download (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=".libs-", dir=libs.parent))
        try:
            cmd = [
                mvn, "-q", "-B", "dependency:copy-dependencies",
                f"-DoutputDirectory={tmp}", "-DincludeScope=runtime",
                f"-Dkafka.version={version}", "-f", str(POM),
            ]  # fmt: skip
            _mvn(cmd, tmp)
            if not (tmp / f"kafka_2.13-{version}.jar").is_file():
                raise InfraError(f"mvn finished but kafka_2.13-{version}.jar is not in {tmp}")
            if libs.exists():  # a broken earlier copy without the broker jar
                shutil.rmtree(libs)
            tmp.rename(libs)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return libs, True


def _mvn(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()[-40:]
        raise InfraError("mvn could not fetch the Kafka jars:\n" + "\n".join(out))


# -- configuration -----------------------------------------------------------------------


def _cluster_id() -> str:
    """The cluster id kept in ``<state>/kafka/cluster.id`` (a base64url UUID, made once)."""
    path = state_dir() / "cluster.id"
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    while True:  # Kafka's own Uuid.randomUuid() also avoids ids starting with '-'
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            break
    path.write_text(cid + "\n")
    return cid


def _write_config(version: str) -> None:
    d = state_dir()
    p = port()
    props = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{p + 1}",
        "listeners": f"PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{p + 1}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{p}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(d / "data"),
        "num.partitions": "6",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # after a crash (kill -9) the restarted broker waits out its old registration's session:
        # 4 s instead of the default 9 s; a single local node has no network to be patient with
        "broker.heartbeat.interval.ms": "1000",
        "broker.session.timeout.ms": "4000",
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        "log.retention.hours": "168",
        "log.segment.bytes": str(256 * 1024 * 1024),
        "log.retention.check.interval.ms": "300000",
    }
    if int(version.split(".")[0]) >= 4:  # share groups (KIP-932) exist from 4.0
        props["share.coordinator.state.topic.replication.factor"] = "1"
        props["share.coordinator.state.topic.min.isr"] = "1"
    body = "".join(f"{k}={v}\n" for k, v in props.items())
    _server_properties().write_text(
        "# Written by shared/local_infra/kafka.py on every start; edits are overwritten.\n" + body
    )
    # Console appender: the JVM's stdout is the log file, so log4j and any JVM message share it.
    (d / "log4j2.properties").write_text(
        """# Written by shared/local_infra/kafka.py. Broker logs go to stdout = kafka.log.
status = warn
name = ehc-local-kafka
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.zk.name = org.apache.zookeeper
logger.zk.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
logger.raft.name = org.apache.kafka.raft
logger.raft.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser
logger.appinfo.level = WARN
# one line per partition on every start or topic creation: only problems
logger.partition.name = kafka.cluster.Partition
logger.partition.level = WARN
logger.logmanager.name = kafka.log.LogManager
logger.logmanager.level = WARN
logger.storage.name = org.apache.kafka.storage.internals.log
logger.storage.level = WARN
logger.partitionchange.name = org.apache.kafka.controller.PartitionChangeBuilder
logger.partitionchange.level = WARN
logger.replication.name = org.apache.kafka.controller.ReplicationControlManager
logger.replication.level = WARN
logger.coordinator.name = org.apache.kafka.coordinator.common.runtime.CoordinatorRuntime
logger.coordinator.level = WARN
logger.txnstate.name = kafka.coordinator.transaction
logger.txnstate.level = WARN
"""
    )


def _java_cmd(libs: Path, main_class: str, *args: str, heap: tuple[str, ...] = HEAP_OPTS) -> list[str]:
    log4j = state_dir() / "log4j2.properties"
    return [
        java_executable(), *heap, *JVM_OPTS,
        f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={state_dir()}",
        "-cp", f"{libs}/*", main_class, *args,
    ]  # fmt: skip


def _format_storage(libs: Path) -> bool:
    """Format the KRaft log dir once. Returns True if it formatted now."""
    data = state_dir() / "data"
    if (data / "meta.properties").is_file():
        return False
    data.mkdir(parents=True, exist_ok=True)
    cmd = _java_cmd(
        libs,
        "kafka.tools.StorageTool",
        "format", "-t", _cluster_id(), "-c", str(_server_properties()),
        heap=("-Xmx256m",),
    )  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=state_dir(), stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise InfraError(f"formatting the Kafka storage failed:\n{proc.stdout}{proc.stderr}")
    return True


# -- lifecycle ---------------------------------------------------------------------------


def _running_pid() -> int | None:
    pid = read_pid(_pid_file())
    return pid if pid_alive(pid, cmdline_contains=MAIN_CLASS) else None


def start() -> Started:
    """Start the broker if it is not running. Idempotent; does not wait until it answers.

    Fetches the jars (first time only), writes the configuration, formats the storage (first
    time only) and launches ``java ... kafka.Kafka server.properties`` in its own session with
    stdout/stderr appended to ``kafka.log``. Call ``wait_ready()`` afterwards.
    """
    d = state_dir()
    d.mkdir(parents=True, exist_ok=True)
    with locked(d / ".lock"):
        pid = _running_pid()
        if pid is not None:
            # alive: either answering already, or still starting (wait_ready will tell)
            return Started("kafka", pid, already_running=True, notes=("already running",))
        if port_answers(port()) or port_answers(port() + 1):
            raise InfraError(
                f"port {port()} or {port() + 1} is taken by a process that is not this project's broker"
                f" (no live pid in {_pid_file()}); stop it or set EHC_LOCAL_KAFKA_PORT"
            )
        notes: list[str] = []
        version = kafka_version()
        t0 = time.monotonic()
        libs, downloaded = ensure_jars(version)
        if downloaded:
            notes.append(f"jar cache cold (mvn {time.monotonic() - t0:.1f} s)")
        else:
            notes.append("jar cache warm")
        _write_config(version)
        if _format_storage(libs):
            notes.append("storage formatted")
        log = log_file()
        if log.exists() and log.stat().st_size > 0:
            log.replace(log.with_name(log.name + ".1"))  # keep the previous run's log
        with log.open("ab") as out:
            proc = subprocess.Popen(
                _java_cmd(libs, MAIN_CLASS, str(_server_properties())),
                cwd=d,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        _until_recognisable(proc)
        _pid_file().write_text(f"{proc.pid}\n")
        notes.append(f"kafka {version}")
        return Started("kafka", proc.pid, already_running=False, notes=tuple(notes))


def _until_recognisable(proc: subprocess.Popen[bytes], within_s: float = 30.0) -> None:
    """Return once the launched ``proc`` shows the broker's main class in its command line, or exited.

    ``Popen`` returns while the kernel is still loading the program, when ``/proc/<pid>/cmdline``
    reads empty; until it shows ``kafka.Kafka``, ``stop()``, ``status()`` and a second ``start()``
    (another ``up`` waiting on the lock) would take the new broker for a stranger. A process that
    exits is left to ``wait_ready()``, which reports it with the log.
    """
    deadline = time.monotonic() + within_s
    while proc.poll() is None and not pid_alive(proc.pid, cmdline_contains=MAIN_CLASS):
        if time.monotonic() > deadline:
            terminate(proc.pid, timeout=5)
            raise InfraError(f"the launched broker (pid {proc.pid}) never showed {MAIN_CLASS} in its command line")
        time.sleep(0.01)


def stop(timeout: float = 30.0) -> bool:
    """Stop the broker: SIGTERM, up to ``timeout`` s for a clean shutdown, then SIGKILL.

    Returns True if a broker was running. Idempotent.
    """
    d = state_dir()
    if not d.exists():
        return False
    with locked(d / ".lock"):
        pid = _running_pid()
        if pid is not None:
            terminate(pid, timeout=timeout)
        _pid_file().unlink(missing_ok=True)
        return pid is not None


def status() -> Status:
    """Whether the broker process runs and its port answers."""
    pid = _running_pid()
    rss = rss_mib(pid)
    detail = f"kafka {kafka_version()}" + (f", RSS {rss:.0f} MiB" if rss else "")
    return Status("kafka", pid is not None, port_answers(port()), pid, port(), detail)


async def _port_answers(host: str, p: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, p), timeout=1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


async def wait_ready(timeout: float = 90.0, bootstrap: str | None = None) -> float:  # noqa: ASYNC109 (see ensure_topics)
    """Wait until the broker answers a metadata request with itself as a live broker.

    ``bootstrap`` defaults to the local broker; then the process in the pid file (the one
    ``start()`` has just launched or found running) is watched, and if it exits meanwhile this
    fails at once. Only its exit counts, not its command line: that reads empty while the kernel
    is still loading the program ``Popen`` has just returned from, and a launcher may exec again.
    On failure raises ``InfraError`` with the last 40 lines of the broker log. Returns the seconds
    waited.
    """
    pid = read_pid(_pid_file()) if bootstrap is None else None
    if bootstrap is None and pid is None:
        raise InfraError(f"the Kafka broker is not running (no pid in {_pid_file()}; start() it first)")
    bootstrap = bootstrap or bootstrap_servers()
    host, _, p = bootstrap.split(",")[0].rpartition(":")
    t0 = time.monotonic()
    deadline = t0 + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if pid is not None and not pid_alive(pid):
            raise InfraError(
                f"the Kafka broker (pid {pid}) exited before it was ready; "
                f"last 40 lines of {log_file()}:\n{tail(log_file())}"
            )
        if await _port_answers(host or "127.0.0.1", int(p)):
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
            try:
                await admin.start()
                cluster = await admin.describe_cluster()
                if cluster.get("brokers"):
                    return time.monotonic() - t0
                last_error = f"metadata lists no brokers: {cluster}"
            except Exception as exc:  # any failure means "not yet"
                last_error = f"{type(exc).__name__}: {exc}"
            finally:
                await admin.close()
        else:
            last_error = f"nothing listens on {bootstrap}"
        await asyncio.sleep(0.25)
    raise InfraError(
        f"Kafka at {bootstrap} not ready after {timeout:.0f} s ({last_error}); "
        f"last 40 lines of {log_file()}:\n{tail(log_file())}"
    )
