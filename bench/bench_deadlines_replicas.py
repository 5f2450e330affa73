"""Benchmark: do deadlines replicas scale? (issue 12, item 3)

    .venv/bin/python bench/bench_deadlines_replicas.py [--events 60000] [--replicas 2] [--rounds 2]

Prints, in one run, on the same data:
1. the raw aiokafka consume+produce rate (consumer group, acks=all, commit per batch), as context;
2. a backlog of N realistic case events (services/deadlines/domain/synthetic.py, key = case id) on a
   6-partition case-events topic, drained by ONE `ehc deadlines serve` process;
3. the same backlog on a fresh topic and schema, drained by K processes in one consumer group;
and the ratio of (3) to (2) (the target: two replicas do at least 1.7 times the work of one). (2) and
(3) alternate for ``--rounds`` rounds (medians), so a change in the shared machine's load hits both.

Rate: the events processed after the group settled (K members, every partition assigned) over the
time from then until the backlog is drained (every event processed, every outgoing deadline event
published); start-up and the first rebalance are left out. Timers are left out too
(EHC_DEADLINES__TICK_SECONDS=3600: these histories' old breach timers would fire during the run).

With each rate: the CPU each process used over that window (each replica; its PostgreSQL backends;
the broker; the whole machine, 2 cores shared with others), what the replicas' PostgreSQL backends
were doing when sampled (running, waiting on a lock, waiting for the client), the partitions each
replica held with their events and the second it finished them, and each replica's processed and
duplicate counts (its /metrics). After each run: processed ids = N and deadline events on the topic
= outbox rows, so nothing was processed or published twice.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from aiokafka import AIOKafkaConsumer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment  # noqa: E402
from bench_deadlines_service import envelope, produce_all, raw_rate, settings_for  # noqa: E402

from services.deadlines.domain.synthetic import synthetic_case  # noqa: E402
from shared import topics  # noqa: E402
from shared.kafka import consumer_lag, ensure_topics, topic_partitions  # noqa: E402
from shared.local_infra import kafka as kafka_infra  # noqa: E402
from shared.local_infra import postgres as pg_infra  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.topics import topic_specs  # noqa: E402
from tests.conftest import _delete_topics, free_port  # noqa: E402
from tests.e2e.harness import ServiceProcess, service_env  # noqa: E402

PARTITIONS = 6
TICK = os.sysconf("SC_CLK_TCK")
LOG_DIR = Path(__file__).resolve().parents[1] / "var" / "bench"


# --- CPU accounting from /proc ------------------------------------------------------------------

def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def runqueue_seconds(pid: int) -> float | None:
    """Time the process's threads spent runnable but waiting for a CPU (schedstat), so far."""
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return sum(int((task / "schedstat").read_text().split()[1]) for task in tasks) / 1e9
    except (FileNotFoundError, ProcessLookupError):
        return None


def autogroup_enabled() -> bool:
    """Linux's autogroup scheduling: every session's processes share one CPU share."""
    flag = Path("/proc/sys/kernel/sched_autogroup_enabled")
    return flag.exists() and flag.read_text().strip() == "1"


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores, since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / TICK, sum(values[:8]) / TICK


def pg_client_ports(pid: int, pg_port: int) -> set[int]:
    """The local ports of a process's TCP connections to PostgreSQL (pg_stat_activity.client_port)."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except (FileNotFoundError, ProcessLookupError):
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[9] in inodes and int(cols[2].rsplit(":", 1)[1], 16) == pg_port:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass
class CpuMeter:
    """CPU seconds used between ``start()`` and the last ``sample()`` by a changing set of processes
    (a PostgreSQL backend that appears after the start is counted from zero)."""

    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    started: bool = False
    measure: Any = cpu_seconds

    def sample(self, pids: set[int]) -> None:
        for pid in pids:
            used = self.measure(pid)
            if used is None:
                continue
            if pid not in self.first:
                self.first[pid] = used if not self.started else 0.0
            self.last[pid] = used

    def start(self, pids: set[int]) -> None:
        self.first.clear()
        self.last.clear()
        self.sample(pids)
        self.started = True

    def used(self) -> float:
        return sum(self.last[p] - self.first[p] for p in self.last)


# --- Kafka group ---------------------------------------------------------------------------------

async def group_assignment(settings: Settings, group: str) -> tuple[str, dict[str, list[int]]]:
    """The group's state and each member's (client host and id) partitions of case-events."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    _error, _group, state, _ptype, _protocol, members, *_ = response.groups[0]
    topic = settings.kafka.topic(topics.CASE_EVENTS)
    out: dict[str, list[int]] = {}
    for member_id, _client_id, _host, _metadata, assignment in members:
        parts = ConsumerProtocolMemberAssignment.decode(assignment).partitions() if assignment else []
        out[member_id] = sorted(tp.partition for tp in parts if tp.topic == topic)
    return state, out


# --- one run -------------------------------------------------------------------------------------

@dataclass
class Replica:
    process: ServiceProcess
    http_port: int
    cpu: CpuMeter = field(default_factory=CpuMeter)
    waited: CpuMeter = field(default_factory=lambda: CpuMeter(measure=runqueue_seconds))
    pg: CpuMeter = field(default_factory=CpuMeter)
    pg_pids: set[int] = field(default_factory=set)

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid


@dataclass
class RunResult:
    replicas: int
    rate: float
    rate_from_start: float
    window: float
    counted: int
    cpu_replicas: list[float]
    runqueue: list[float]
    cpu_pg: list[float]
    cpu_broker: float
    machine_busy: float
    waits: Counter[str]
    assignment: dict[str, list[int]]
    per_partition: dict[int, int]
    finished_at: dict[int, float]
    metrics: list[dict[str, float]]
    outbox_rows: int
    published: int
    processed: int

    @property
    def per_cpu_second(self) -> float:
        """Events per CPU-second the replicas used: what they would do with a free core each."""
        return self.counted / (sum(self.cpu_replicas) * self.window)


async def scalar(conn: asyncpg.Connection, query: str, schema: str) -> int:
    return int(await conn.fetchval(query.replace("{s}", f'"{schema}"')))


async def metric_values(port: int) -> dict[str, float]:
    wanted = {'ehc_deadlines_case_events_total{outcome="processed"}': "processed",
              'ehc_deadlines_case_events_total{outcome="duplicate"}': "duplicate"}
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    out = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in wanted:
            out[wanted[name]] = float(value)
    return out


async def published_count(settings: Settings) -> int:
    topic = settings.kafka.topic(topics.DEADLINE_EVENTS)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        tps = await topic_partitions(settings.kafka, topic)
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def drain_with(replicas: int, tag: str, messages: list[tuple[bytes, bytes]], broker_pid: int | None,
                     timeout: float) -> RunResult:
    settings = settings_for(tag)
    await ensure_topics(settings.kafka, topic_specs(settings.kafka.topic_prefix, PARTITIONS))
    topic = settings.kafka.topic(topics.CASE_EVENTS)
    assert len(await topic_partitions(settings.kafka, topic)) == PARTITIONS
    await produce_all(settings.kafka.bootstrap_servers, topic, messages)
    group = settings.kafka.group("ehc-deadlines")
    per_partition = await consumer_lag(settings.kafka, group, topic)  # nothing committed yet: every event
    schema = settings.schema_for("deadlines")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    procs: list[Replica] = []
    for i in range(replicas):
        port = free_port()
        env = service_env(settings, EHC_DEADLINES__HTTP_PORT=str(port), EHC_DEADLINES__TICK_SECONDS="3600",
                          EHC_LOGGING__LEVEL="WARNING")
        procs.append(Replica(ServiceProcess("deadlines", env, LOG_DIR / f"{tag}-{i}.log", own_session=True), port))
    n = len(messages)
    conn = await asyncpg.connect(pg_infra.dsn())
    broker, machine = CpuMeter(), [0.0, 0.0]
    waits: Counter[str] = Counter()
    finished_at: dict[int, float] = {}
    settled_at: float | None = None
    processed_at_settle = 0
    assignment: dict[str, list[int]] = {}
    try:
        started = time.perf_counter()
        for r in procs:
            await r.process.start()
        deadline = started + timeout
        last_lag = 0.0
        while True:
            now = time.perf_counter()
            if now > deadline:
                raise TimeoutError(f"{replicas} replica(s) did not drain {n} events in {timeout:.0f} s")
            for r in procs:
                if r.process.proc is not None and r.process.proc.returncode is not None:
                    raise RuntimeError(f"a replica exited ({r.process.proc.returncode}); see {r.process.log_path}")
            try:
                processed = await scalar(conn, "SELECT count(*) FROM {s}.processed_events", schema)
                pending = await scalar(conn, "SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL", schema)
            except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                processed, pending = 0, 1  # not migrated yet
            if settled_at is None:
                state, assignment = await group_assignment(settings, group)
                held = sorted(p for parts in assignment.values() for p in parts)
                if state == "Stable" and len(assignment) == replicas and held == list(range(PARTITIONS)):
                    settled_at, processed_at_settle = time.perf_counter(), processed
                    for r in procs:
                        r.pg_pids = await backend_pids(conn, r.pid)
                        r.cpu.start({r.pid})
                        r.waited.start({r.pid})
                        r.pg.start(r.pg_pids)
                    broker.start({broker_pid} if broker_pid else set())
                    machine = list(machine_busy())
            else:
                for r in procs:
                    r.cpu.sample({r.pid})
                    r.waited.sample({r.pid})
                    if now - last_lag > 2.0:
                        r.pg_pids |= await backend_pids(conn, r.pid)
                    r.pg.sample(r.pg_pids)
                broker.sample({broker_pid} if broker_pid else set())
                for row in await conn.fetch(
                        "SELECT state, wait_event_type, wait_event, left(query, 200) AS query FROM pg_stat_activity "
                        "WHERE pid = any($1) AND state <> 'idle'", list(set().union(*(r.pg_pids for r in procs)))):
                    waits[describe_wait(row)] += 1
                waits["samples"] += 1
                if now - last_lag > 2.0:
                    last_lag = now
                    for partition, left in (await consumer_lag(settings.kafka, group, topic)).items():
                        if left == 0:
                            finished_at.setdefault(partition, now - settled_at)
            if processed >= n and pending == 0:
                ended = time.perf_counter()
                for r in procs:
                    r.cpu.sample({r.pid})
                    r.waited.sample({r.pid})
                    r.pg.sample(r.pg_pids)
                broker.sample({broker_pid} if broker_pid else set())
                busy, total = machine_busy()
                machine = [busy - machine[0], total - machine[1]]
                break
            await asyncio.sleep(0.2)
        for partition in range(PARTITIONS):
            finished_at.setdefault(partition, ended - settled_at)  # type: ignore[operator]
        metrics = [await metric_values(r.http_port) for r in procs]
        assert settled_at is not None
        if n - processed_at_settle < n // 2:
            raise RuntimeError(f"{replicas} replica(s): {processed_at_settle:,} of {n:,} events were processed before "
                               "the group settled, too few left to measure: use a bigger --events")
        window = ended - settled_at
        outbox_rows = await scalar(conn, "SELECT count(*) FROM {s}.outbox", schema)
        processed = await scalar(conn, "SELECT count(*) FROM {s}.processed_events", schema)
    finally:
        for r in procs:
            try:
                await r.process.terminate()
            except TimeoutError:
                await r.process.kill()
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    published = await published_count(settings)
    await _delete_topics(settings.kafka)
    return RunResult(
        replicas=replicas, rate=(n - processed_at_settle) / window, rate_from_start=n / (ended - started),
        window=window, counted=n - processed_at_settle,
        cpu_replicas=[r.cpu.used() / window for r in procs], runqueue=[r.waited.used() / window for r in procs],
        cpu_pg=[r.pg.used() / window for r in procs],
        cpu_broker=broker.used() / window, machine_busy=machine[0] / machine[1] if machine[1] else 0.0,
        waits=waits, assignment=assignment, per_partition=per_partition, finished_at=finished_at,
        metrics=metrics, outbox_rows=outbox_rows, published=published, processed=processed)


async def backend_pids(conn: asyncpg.Connection, pid: int) -> set[int]:
    ports = pg_client_ports(pid, pg_infra.port())
    if not ports:
        return set()
    rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE client_port = any($1)", list(ports))
    return {r["pid"] for r in rows}


def describe_wait(row: Any) -> str:
    """What a replica's busy connection is doing: in the outbox relay's transaction (which holds the
    relay's advisory lock while Kafka acknowledges the batch) or in the consumer's, and whether the
    database is running, waiting on a lock or I/O, or waiting for the replica (Python working, or
    awaiting Kafka, inside the transaction)."""
    query = " ".join((row["query"] or "").split()).lower()
    relay = "outbox" in query and not query.startswith("insert") or "pg_try_advisory_xact_lock" in query
    phase = "relay" if relay else "consumer"
    if row["wait_event_type"] is None:
        return f"{phase} tx: database running"
    if row["wait_event_type"] == "Client":
        return f"{phase} tx: waiting for the replica"
    return f"{phase} tx: {row['wait_event_type']}:{row['wait_event']}"


# --- report --------------------------------------------------------------------------------------

def report(r: RunResult, n: int) -> None:
    print(f"\n{r.replicas} replica(s): {r.rate:,.0f} events/s ({r.counted:,} events in {r.window:.1f} s after the "
          f"group settled; {r.rate_from_start:,.0f} events/s counting start-up)")
    for i, (cpu, pg) in enumerate(zip(r.cpu_replicas, r.cpu_pg, strict=True)):
        m = r.metrics[i]
        print(f"  replica {i}: CPU {cpu:.0%} of a core, runnable but waiting for a CPU {r.runqueue[i]:.0%} of the "
              f"time; its PostgreSQL backends' CPU {pg:.0%}; "
              f"processed {m.get('processed', 0):,.0f}, duplicates dropped {m.get('duplicate', 0):,.0f}")
    print(f"  work per CPU-second: {r.per_cpu_second:,.0f} events per CPU-second of the replicas, "
          f"{r.counted / ((sum(r.cpu_replicas) + sum(r.cpu_pg)) * r.window):,.0f} with their PostgreSQL backends")
    print(f"  broker CPU {r.cpu_broker:.0%} of a core (shared with everyone); whole machine busy "
          f"{r.machine_busy:.0%} of its {os.cpu_count()} cores")
    for member, parts in sorted(r.assignment.items(), key=lambda kv: kv[1]):
        events = sum(r.per_partition[p] for p in parts)
        done = max(r.finished_at[p] for p in parts) if parts else 0.0
        short = re.sub(r"-[0-9a-f-]{36}$", "", member)
        print(f"  member {short}: partitions {parts}, {events:,} events, done at {done:.1f} s")
    samples = r.waits.pop("samples", 0) or 1
    locked = sum(v for k, v in r.waits.items() if k.split(": ", 1)[1].startswith("Lock:"))
    print(f"  waits on a PostgreSQL lock (row, transaction, advisory): {locked} in {samples} samples")
    print(f"  the replicas' open transactions, per sample ({samples} samples; {r.replicas} replica(s) with a consumer "
          "and a relay each): " + ", ".join(f"{k} {v / samples:.2f}" for k, v in r.waits.most_common(8)))
    ok = r.processed == n and r.published == r.outbox_rows
    print(f"  processed ids {r.processed:,} of {n:,}; deadline events on the topic {r.published:,}, outbox rows "
          f"{r.outbox_rows:,}: {'nothing processed or published twice' if ok else 'MISMATCH'}")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds of 1 and K replicas")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a drain may take at most")
    args = parser.parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # "not leader" while a new topic settles: retried
    started = await asyncio.to_thread(kafka_infra.start)
    await kafka_infra.wait_ready(120)
    await asyncio.to_thread(pg_infra.start)
    rng = random.Random(7)
    records: list[Any] = []
    cases = 0
    while len(records) < args.events:
        records.extend(synthetic_case(cases, rng))
        cases += 1
    messages = [(r.case_id.encode(), envelope(r)) for r in records[:args.events]]
    base = "bench" + uuid.uuid4().hex[:6]
    raw_settings = settings_for(base + "raw")
    try:
        raw = await raw_rate(raw_settings, args.events)
    finally:
        await _delete_topics(raw_settings.kafka)
    print(f"raw aiokafka consume+produce (acks=all, commit per batch, one process): {raw:,.0f} msg/s")
    if autogroup_enabled():
        print("Linux autogroup scheduling is on: a session's processes share one CPU share, so each replica is "
              "started in a session of its own (as in a container of its own)")
    print(f"backlog: {args.events:,} case events of {cases:,} synthetic cases on {PARTITIONS} partitions")
    ones: list[RunResult] = []
    manys: list[RunResult] = []
    for round_no in range(args.rounds):  # alternated, so a change in the machine's load hits both
        ones.append(await drain_with(1, f"{base}r{round_no}a", messages, started.pid, args.timeout))
        report(ones[-1], args.events)
        manys.append(await drain_with(args.replicas, f"{base}r{round_no}b", messages, started.pid, args.timeout))
        report(manys[-1], args.events)
    one = statistics.median(r.rate for r in ones)
    many = statistics.median(r.rate for r in manys)
    pairs = list(zip(ones, manys, strict=True))
    print(f"\n{args.replicas} replicas / 1 replica: {many / one:.2f}x (target 1.7x for 2; medians of {args.rounds} "
          f"alternated round(s); per round: {', '.join(f'{m.rate / o.rate:.2f}x' for o, m in pairs)})")
    print(f"1 replica / raw: {one / raw:.3f}; {args.replicas} replicas / raw: {many / raw:.3f}")
    efficiency = statistics.median(m.per_cpu_second / o.per_cpu_second for o, m in pairs)
    print(f"events per CPU-second of the replicas, {args.replicas} replicas / 1 replica: {efficiency:.2f} (1.00: no "
          f"work lost to coordinating replicas; the rate then follows the CPU the replicas get); CPU the replicas "
          f"got in all: {statistics.median(sum(r.cpu_replicas) for r in ones):.0%} of a core for 1, "
          f"{statistics.median(sum(r.cpu_replicas) for r in manys):.0%} for {args.replicas}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
