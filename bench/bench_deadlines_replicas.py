"""Benchmark: do replicas scale? (issue 12, item 3) The deadlines service, or the notifier's senders.

    .venv/bin/python bench/bench_deadlines_replicas.py [--service deadlines|notifier] [--events 60000]
        [--replicas 2] [--rounds 2]

Prints, in one run, on the same data:
1. the raw aiokafka consume+produce rate (consumer group, acks=all, commit per batch), as context;
2. a backlog on a 6-partition topic (key = case id), drained by ONE `ehc <service> serve` process;
3. the same backlog on a fresh topic and schema, drained by K processes in one consumer group;
and the ratio of (3) to (2) (the target: two replicas do at least 1.7 times the work of one). (2) and
(3) alternate for ``--rounds`` rounds (medians), so a change in the shared machine's load hits both.
Each replica is a real process in a session of its own (so Linux autogroup gives each its own CPU
share, as a container of its own would).

``--service deadlines``: N realistic case events (services/deadlines/domain/synthetic.py) on the
case-events topic; the work is events processed (every outgoing deadline event published). Timers
are left out (EHC_DEADLINES__TICK_SECONDS=3600: these histories' old breach timers would fire
during the run). After each run: processed ids = N and deadline events on the topic = outbox rows,
so nothing was processed or published twice.

``--service notifier``: N deadline events on the deadline-events topic, a few per case in a fixed
order (a deadline opened, its reminders, another deadline opened, a breach), each making one email
to the case's caseworker (``caseworker_reminders=immediate``), sent to the GOV.UK Notify stand-in
(tests/notifier/notify_stub.py, in a child process; its rate limit lifted as in bench_notifier.py).
The work is notifications sent (every audit event published). After each run, from the stand-in's
requests: every notification sent exactly once (requests per notification id), none lost, and per
case the requests arrived in the order of the case's events (the one recipient of each case).

Rate: the work done after the group settled (K members, every partition assigned) over the time
from then until the backlog is drained; start-up and the first rebalance are left out. With each
rate: the CPU each process used over that window (each replica; its PostgreSQL backends; the broker;
the whole machine, 2 cores shared with others), what the replicas' PostgreSQL backends were doing
when sampled (running, waiting on a lock, waiting for the client), the partitions each replica held
with their records and the second it finished them, and each replica's own counts (its /metrics).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from aiokafka import AIOKafkaConsumer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment  # noqa: E402
from bench_deadlines_service import (  # noqa: E402
    backend_pids,
    cpu_seconds,
    envelope,
    produce_all,
    raw_rate,
    settings_for,
)

from services.deadlines.domain.synthetic import synthetic_stream  # noqa: E402
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

async def group_assignment(settings: Settings, group: str, topic: str) -> tuple[str, dict[str, list[int]]]:
    """The group's state and each member's (client host and id) partitions of ``topic``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    _error, _group, state, _ptype, _protocol, members, *_ = response.groups[0]
    out: dict[str, list[int]] = {}
    for member_id, _client_id, _host, _metadata, assignment in members:
        parts = ConsumerProtocolMemberAssignment.decode(assignment).partitions() if assignment else []
        out[member_id] = sorted(tp.partition for tp in parts if tp.topic == topic)
    return state, out


async def scalar(conn: asyncpg.Connection, query: str, schema: str) -> int:
    return int(await conn.fetchval(query.replace("{s}", f'"{schema}"')))


async def metric_values(port: int, wanted: dict[str, str]) -> dict[str, float]:
    """The replica's /metrics samples named in ``wanted`` (sample -> short name)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    out = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in wanted:
            out[wanted[name]] = float(value)
    return out


async def published_count(settings: Settings, topic_name: str) -> int:
    topic = settings.kafka.topic(topic_name)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        tps = await topic_partitions(settings.kafka, topic)
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


# --- what is drained: a service's backlog, how far it is, what is checked after -----------------

class Workload(Protocol):
    service: str  # ehc <service> serve
    group: str  # the consumer group whose members are counted (unprefixed)
    input_topic: str  # its topic (unprefixed), PARTITIONS partitions
    unit: str  # what the rate counts
    total: int  # how many of them the backlog makes

    async def prepare(self, settings: Settings) -> None:
        """Put the backlog on the input topic (and start what the replicas talk to)."""

    def replica_env(self, settings: Settings, http_port: int) -> dict[str, str]:
        """The environment of one replica."""

    async def progress(self, conn: asyncpg.Connection, schema: str, lag: int) -> tuple[int, bool]:
        """(units done so far, whether the backlog is drained); ``lag``: the input's records the group has
        not committed yet."""

    async def metrics(self, http_port: int) -> dict[str, float]:
        """One replica's own counts."""

    async def verify(self, conn: asyncpg.Connection, schema: str, settings: Settings) -> tuple[bool, str]:
        """After the run (the replicas still up): whether nothing was done twice or lost, and what was found."""

    async def close(self) -> None:
        """Stop what prepare started."""


@dataclass
class DeadlinesWorkload:
    """Case events in, deadline events out (see the module)."""

    messages: list[tuple[bytes, bytes]]
    service: str = "deadlines"
    group: str = "ehc-deadlines"
    input_topic: str = topics.CASE_EVENTS
    unit: str = "events"

    @property
    def total(self) -> int:
        return len(self.messages)

    async def prepare(self, settings: Settings) -> None:
        await produce_all(settings.kafka.bootstrap_servers, settings.kafka.topic(self.input_topic), self.messages)

    def replica_env(self, settings: Settings, http_port: int) -> dict[str, str]:
        return service_env(settings, EHC_DEADLINES__HTTP_PORT=str(http_port), EHC_DEADLINES__TICK_SECONDS="3600",
                           EHC_LOGGING__LEVEL="WARNING")

    async def progress(self, conn: asyncpg.Connection, schema: str, lag: int) -> tuple[int, bool]:
        if lag:  # the group's committed offsets say how far it is: no count of a growing table
            return self.total - lag, False
        processed = await scalar(conn, "SELECT count(*) FROM {s}.processed_events", schema)
        pending = await scalar(conn, "SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL", schema)
        return processed, processed >= self.total and pending == 0

    async def metrics(self, http_port: int) -> dict[str, float]:
        return await metric_values(http_port, {
            'ehc_deadlines_case_events_total{outcome="processed"}': "processed",
            'ehc_deadlines_case_events_total{outcome="duplicate"}': "duplicates dropped"})

    async def verify(self, conn: asyncpg.Connection, schema: str, settings: Settings) -> tuple[bool, str]:
        outbox_rows = await scalar(conn, "SELECT count(*) FROM {s}.outbox", schema)
        processed = await scalar(conn, "SELECT count(*) FROM {s}.processed_events", schema)
        published = await published_count(settings, topics.DEADLINE_EVENTS)
        ok = processed == self.total and published == outbox_rows
        return ok, (f"processed ids {processed:,} of {self.total:,}; deadline events on the topic {published:,}, "
                    f"outbox rows {outbox_rows:,}: "
                    f"{'nothing processed or published twice' if ok else 'MISMATCH'}")

    async def close(self) -> None:
        pass


# --- the notifier's senders ----------------------------------------------------------------------

CASEWORKERS = 40
#: Per case, in this order, each making one email to the case's caseworker: (event type, deadline
#: number, rule, due in days, reminder offset).
CASE_SCRIPT = (("deadline.opened", 1, "assessment.decision", 30, None),
               ("deadline.due_soon", 1, "assessment.decision", 30, 10),
               ("deadline.opened", 2, "assessment.advice", 25, None),
               ("deadline.due_soon", 1, "assessment.decision", 30, 5),
               ("deadline.breached", 3, "plan.final", -1, None))
EMAIL_TEMPLATES = ("caseworker_new_deadline", "caseworker_reminder", "caseworker_breach")


def notifier_backlog(events: int, run: str) -> tuple[list[tuple[bytes, bytes]], dict[str, int]]:
    """Deadline events of ``events // len(CASE_SCRIPT)`` cases (key = case id), and each expected
    notification's (deadline id | kind) -> its place in its case's order."""
    today = datetime.now(UTC).date()
    messages: list[tuple[bytes, bytes]] = []
    order: dict[str, int] = {}
    for c in range(max(1, events // len(CASE_SCRIPT))):
        case_id = f"case-{run}-{c}"
        for step, (type_, number, rule, due_in, offset) in enumerate(CASE_SCRIPT):
            deadline_id = f"{case_id}:{rule}:{number}"
            due_on = today + timedelta(days=due_in)
            data = {"case_id": case_id, "deadline_id": deadline_id, "rule_id": rule, "due_on": due_on.isoformat(),
                    "status": {"deadline.opened": "open", "deadline.due_soon": "due_soon"}.get(type_, "breached"),
                    "responsible": "la", "trigger_event_id": f"{case_id}-e{number}",
                    "trigger_date": today.isoformat(), "legal_source": "Regs 5(1); 4(1)",
                    "ruleset_version": "england-2014.1", "caseworker_id": f"cw-{c % CASEWORKERS}", "team_id": "team-n",
                    "reminder_offset_days": offset}
            event = {"specversion": "1.0", "id": f"{case_id}-{step}", "source": "ehc/deadlines", "subject": case_id,
                     "time": datetime.now(UTC).isoformat(), "type": type_, "datacontenttype": "application/json",
                     "data": data}
            kind = {"deadline.opened": "caseworker_new_deadline", "deadline.breached": "breach_alert"}.get(
                type_, f"caseworker_reminder_{offset}")
            order[f"{deadline_id}|{kind}"] = step
            messages.append((case_id.encode(), json.dumps(event).encode()))
    return messages, order


@dataclass
class NotifierWorkload:
    """Deadline events in, emails out to the GOV.UK Notify stand-in (see the module)."""

    events: int
    service: str = "notifier"
    group: str = "ehc-notifier"
    input_topic: str = topics.DEADLINE_EVENTS
    unit: str = "notifications"
    stand_in: Any = None
    order: dict[str, int] = field(default_factory=dict)
    key: str = ""

    @property
    def total(self) -> int:
        return len(self.order)

    async def prepare(self, settings: Settings) -> None:
        from bench_notifier import StandIn
        from cryptography.fernet import Fernet

        self.stand_in = await asyncio.to_thread(StandIn, "notify")
        self.key = Fernet.generate_key().decode()
        messages, self.order = notifier_backlog(self.events, uuid.uuid4().hex[:6])
        await produce_all(settings.kafka.bootstrap_servers, settings.kafka.topic(self.input_topic), messages)

    def replica_env(self, settings: Settings, http_port: int) -> dict[str, str]:
        info = self.stand_in.info
        return service_env(
            settings, EHC_NOTIFIER__HTTP_PORT=str(http_port), EHC_LOGGING__LEVEL="WARNING",
            EHC_NOTIFIER__ENCRYPTION_KEY=self.key, EHC_NOTIFIER__CASEWORKER_REMINDERS="immediate",
            EHC_NOTIFIER__CASEWORKER_DIRECTORY=json.dumps({f"cw-{i}": f"cw{i}@council.example"
                                                          for i in range(CASEWORKERS)}),
            EHC_NOTIFIER__COUNCIL_NAME="Bench Council", EHC_NOTIFIER__COUNCIL_PHONE="0300 123 4043",
            EHC_NOTIFIER__SENDIASS_CONTACT="Bench SENDIASS 0300 123 4044",
            EHC_NOTIFIER__EMAIL_CHANNEL="notify", EHC_NOTIFIER__SMS_CHANNEL="notify",
            EHC_NOTIFIER__NOTIFY_BASE_URL=info["url"], EHC_NOTIFIER__NOTIFY_API_KEY=info["api_key"],
            EHC_NOTIFIER__NOTIFY_TEMPLATES=json.dumps({f"{t}.email": info["template"] for t in EMAIL_TEMPLATES}),
            EHC_NOTIFIER__NOTIFY_RATE_PER_MINUTE=str(10**7), EHC_NOTIFIER__NOTIFY_RATE_BURST=str(10**6))

    async def progress(self, conn: asyncpg.Connection, schema: str, lag: int) -> tuple[int, bool]:
        try:
            sent = await scalar(conn, "SELECT count(*) FROM {s}.notifications WHERE status = 'sent'", schema)
            pending = await scalar(conn, "SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL", schema)
            failed = await scalar(conn, "SELECT count(*) FROM {s}.notifications WHERE status IN "
                                        "('failed', 'technical-failure', 'historical')", schema)
        except asyncpg.UndefinedTableError:
            return 0, False
        if failed:
            raise RuntimeError(f"{failed} notification(s) failed or were not sendable: see the replicas' logs")
        return sent, sent >= self.total and pending == 0

    async def metrics(self, http_port: int) -> dict[str, float]:
        return await metric_values(http_port, {
            'ehc_notifier_send_attempts_total{outcome="sent"}': "sent",
            "ehc_notifier_notifications_planned_total": "planned"})

    async def verify(self, conn: asyncpg.Connection, schema: str, settings: Settings) -> tuple[bool, str]:
        requests = await asyncio.to_thread(self.stand_in.arrivals)  # (notification id, arrival), in arrival order
        rows = await conn.fetch(f'SELECT notification_id, idempotency_key, case_id FROM "{schema}".notifications')
        step = {r["notification_id"]: self.order.get(r["idempotency_key"].rsplit("|", 1)[0]) for r in rows}
        case = {r["notification_id"]: r["case_id"] for r in rows}
        per_id = Counter(nid for nid, _ in requests)
        twice = sum(1 for count in per_id.values() if count > 1)
        unplanned = sum(1 for nid in per_id if step.get(nid) is None)
        lost = self.total - sum(1 for nid in per_id if step.get(nid) is not None)
        seen: dict[str, int] = {}
        out_of_order = 0
        for nid, _ in requests:  # per case, each request's step after the case's previous one
            s, c = step.get(nid), case.get(nid)
            if s is None or c is None:
                continue
            if s < seen.get(c, -1):
                out_of_order += 1
            seen[c] = max(s, seen.get(c, -1))
        ok = not (twice or unplanned or lost or out_of_order)
        return ok, (f"stand-in requests {len(requests):,} for {len(per_id):,} notifications of {self.total:,} "
                    f"expected: sent twice {twice}, lost {lost}, not expected {unplanned}, per-case order violations "
                    f"{out_of_order} ({len(seen):,} cases): {'OK' if ok else 'MISMATCH'}")

    async def close(self) -> None:
        if self.stand_in is not None:
            await asyncio.to_thread(self.stand_in.stop)


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
    unit: str
    rate: float
    rate_from_start: float
    window: float
    counted: int
    cpu_replicas: list[float]
    runqueue: list[float]
    cpu_pg: list[float]
    cpu_broker: float
    cpu_bench_pg: float
    machine_busy: float
    waits: Counter[str]
    assignment: dict[str, list[int]]
    per_partition: dict[int, int]
    finished_at: dict[int, float]
    metrics: list[dict[str, float]]
    ok: bool
    checked: str

    @property
    def per_cpu_second(self) -> float:
        """Work per CPU-second the replicas used: what they would do with a free core each."""
        return self.counted / (sum(self.cpu_replicas) * self.window)


async def drain_with(workload: Workload, replicas: int, tag: str, broker_pid: int | None,
                     timeout: float) -> RunResult:
    settings = settings_for(tag)
    await ensure_topics(settings.kafka, topic_specs(settings.kafka.topic_prefix, PARTITIONS))
    topic = settings.kafka.topic(workload.input_topic)
    assert len(await topic_partitions(settings.kafka, topic)) == PARTITIONS
    schema = settings.schema_for(workload.service)
    conn = await asyncpg.connect(pg_infra.dsn())
    procs: list[Replica] = []
    try:
        await workload.prepare(settings)
        group = settings.kafka.group(workload.group)
        per_partition = await consumer_lag(settings.kafka, group, topic)  # nothing committed yet: every record
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        for i in range(replicas):
            port = free_port()
            procs.append(Replica(ServiceProcess(workload.service, workload.replica_env(settings, port),
                                                LOG_DIR / f"{tag}-{i}.log", own_session=True), port))
        n = workload.total
        broker, bench_pg, machine = CpuMeter(), CpuMeter(), [0.0, 0.0]
        own_backend = {int(await conn.fetchval("SELECT pg_backend_pid()"))}  # the bench's polling, measured too
        waits: Counter[str] = Counter()
        finished_at: dict[int, float] = {}
        settled_at: float | None = None
        done_at_settle = 0
        assignment: dict[str, list[int]] = {}
        started = time.perf_counter()
        for r in procs:
            await r.process.start()
        deadline = started + timeout
        tick = 0
        done, finished = 0, False
        while True:
            now = time.perf_counter()
            if now > deadline:
                raise TimeoutError(f"{replicas} replica(s) did not drain {n} {workload.unit} in {timeout:.0f} s")
            for r in procs:
                if r.process.proc is not None and r.process.proc.returncode is not None:
                    raise RuntimeError(f"a replica exited ({r.process.proc.returncode}); see {r.process.log_path}")
            poll = settled_at is None or tick % 3 == 0  # progress every 0.6 s once measuring: polling costs too
            tick += 1
            if poll:
                left = await consumer_lag(settings.kafka, group, topic)
                if settled_at is not None:
                    for partition, count in left.items():
                        if count == 0:
                            finished_at.setdefault(partition, now - settled_at)
                try:
                    done, finished = await workload.progress(conn, schema, sum(left.values()))
                except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                    done, finished = 0, False  # not migrated yet
            if settled_at is None:
                state, assignment = await group_assignment(settings, group, topic)
                held = sorted(p for parts in assignment.values() for p in parts)
                if state == "Stable" and len(assignment) == replicas and held == list(range(PARTITIONS)):
                    settled_at, done_at_settle = time.perf_counter(), done
                    for r in procs:
                        r.pg_pids = await backend_pids(conn, r.pid)
                        r.cpu.start({r.pid})
                        r.waited.start({r.pid})
                        r.pg.start(r.pg_pids)
                    broker.start({broker_pid} if broker_pid else set())
                    bench_pg.start(own_backend)
                    machine = list(machine_busy())
            else:
                for r in procs:
                    r.cpu.sample({r.pid})
                    r.waited.sample({r.pid})
                    if poll:
                        r.pg_pids |= await backend_pids(conn, r.pid)
                    r.pg.sample(r.pg_pids)
                broker.sample({broker_pid} if broker_pid else set())
                bench_pg.sample(own_backend)
                for row in await conn.fetch(
                        "SELECT state, wait_event_type, wait_event, left(query, 200) AS query FROM pg_stat_activity "
                        "WHERE pid = any($1) AND state <> 'idle'", list(set().union(*(r.pg_pids for r in procs)))):
                    waits[describe_wait(row)] += 1
                waits["samples"] += 1
                if poll and finished:
                    ended = time.perf_counter()
                    for r in procs:
                        r.cpu.sample({r.pid})
                        r.waited.sample({r.pid})
                        r.pg.sample(r.pg_pids)
                    broker.sample({broker_pid} if broker_pid else set())
                    bench_pg.sample(own_backend)
                    busy, total = machine_busy()
                    machine = [busy - machine[0], total - machine[1]]
                    break
            await asyncio.sleep(0.2)
        for partition in range(PARTITIONS):
            finished_at.setdefault(partition, ended - settled_at)
        metrics = [await workload.metrics(r.http_port) for r in procs]
        if n - done_at_settle < n // 2:
            raise RuntimeError(f"{replicas} replica(s): {done_at_settle:,} of {n:,} {workload.unit} were done before "
                               "the group settled, too few left to measure: use a bigger --events")
        window = ended - settled_at
        ok, checked = await workload.verify(conn, schema, settings)
    finally:
        for r in procs:
            try:
                await r.process.terminate()
            except TimeoutError:
                await r.process.kill()
        await workload.close()
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
        await _delete_topics(settings.kafka)
    return RunResult(
        replicas=replicas, unit=workload.unit, rate=(n - done_at_settle) / window,
        rate_from_start=n / (ended - started), window=window, counted=n - done_at_settle,
        cpu_replicas=[r.cpu.used() / window for r in procs], runqueue=[r.waited.used() / window for r in procs],
        cpu_pg=[r.pg.used() / window for r in procs],
        cpu_broker=broker.used() / window, cpu_bench_pg=bench_pg.used() / window,
        machine_busy=machine[0] / machine[1] if machine[1] else 0.0,
        waits=waits, assignment=assignment, per_partition=per_partition, finished_at=finished_at,
        metrics=metrics, ok=ok, checked=checked)


def describe_wait(row: Any) -> str:
    """What a replica's busy connection is doing: in the outbox relay's transaction (which holds the
    relay's advisory lock while Kafka acknowledges the batch) or in the consumer's (or the sender's),
    and whether the database is running, waiting on a lock or I/O, or waiting for the replica
    (Python working, or awaiting Kafka or a provider, inside the transaction)."""
    query = " ".join((row["query"] or "").split()).lower()
    relay = "outbox" in query and not query.startswith("insert") or "pg_try_advisory_xact_lock" in query
    phase = "relay" if relay else "sender" if "notifications" in query and "for update" in query else "consumer"
    if row["wait_event_type"] is None:
        return f"{phase} tx: database running"
    if row["wait_event_type"] == "Client":
        return f"{phase} tx: waiting for the replica"
    return f"{phase} tx: {row['wait_event_type']}:{row['wait_event']}"


# --- report --------------------------------------------------------------------------------------

def report(r: RunResult) -> None:
    u = r.unit
    print(f"\n{r.replicas} replica(s): {r.rate:,.0f} {u}/s ({r.counted:,} {u} in {r.window:.1f} s after the "
          f"group settled; {r.rate_from_start:,.0f} {u}/s counting start-up)")
    for i, (cpu, pg) in enumerate(zip(r.cpu_replicas, r.cpu_pg, strict=True)):
        counts = ", ".join(f"{k} {v:,.0f}" for k, v in r.metrics[i].items())
        print(f"  replica {i}: CPU {cpu:.0%} of a core, runnable but waiting for a CPU {r.runqueue[i]:.0%} of the "
              f"time; its PostgreSQL backends' CPU {pg:.0%}; {counts}")
    print(f"  work per CPU-second: {r.per_cpu_second:,.0f} {u} per CPU-second of the replicas, "
          f"{r.counted / ((sum(r.cpu_replicas) + sum(r.cpu_pg)) * r.window):,.0f} with their PostgreSQL backends")
    print(f"  broker CPU {r.cpu_broker:.0%} of a core (shared with everyone); this bench's own PostgreSQL queries "
          f"{r.cpu_bench_pg:.0%}; whole machine busy "
          f"{r.machine_busy:.0%} of its {os.cpu_count()} cores")
    for member, parts in sorted(r.assignment.items(), key=lambda kv: kv[1]):
        records = sum(r.per_partition[p] for p in parts)
        done = max(r.finished_at[p] for p in parts) if parts else 0.0
        short = re.sub(r"-[0-9a-f-]{36}$", "", member)
        print(f"  member {short}: partitions {parts}, {records:,} records, consumed by {done:.1f} s")
    samples = r.waits.pop("samples", 0) or 1
    locked = sum(v for k, v in r.waits.items() if k.split(": ", 1)[1].startswith("Lock:"))
    print(f"  waits on a PostgreSQL lock (row, transaction, advisory): {locked} in {samples} samples")
    print(f"  the replicas' open transactions, per sample ({samples} samples; {r.replicas} replica(s)): "
          + ", ".join(f"{k} {v / samples:.2f}" for k, v in r.waits.most_common(8)))
    print(f"  {r.checked}")


def deadlines_backlog(events: int) -> tuple[list[tuple[bytes, bytes]], int]:
    records, cases = synthetic_stream(events)
    return [(r.case_id.encode(), envelope(r)) for r in records], cases


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", choices=["deadlines", "notifier"], default="deadlines")
    parser.add_argument("--events", type=int, default=None,
                        help="records in the backlog (default 60,000 case events; 10,000 deadline events)")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds of 1 and K replicas")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a drain may take at most")
    args = parser.parse_args(argv)
    events = args.events or (60_000 if args.service == "deadlines" else 10_000)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # "not leader" while a new topic settles: retried
    started = await asyncio.to_thread(kafka_infra.start)
    await kafka_infra.wait_ready(120)
    await asyncio.to_thread(pg_infra.start)
    if args.service == "deadlines":
        messages, cases = deadlines_backlog(events)

        def workload() -> Workload:
            return DeadlinesWorkload(messages)

        what = f"{events:,} case events of {cases:,} synthetic cases"
    else:
        def workload() -> Workload:
            return NotifierWorkload(events)

        what = (f"{events // len(CASE_SCRIPT) * len(CASE_SCRIPT):,} deadline events of "
                f"{events // len(CASE_SCRIPT):,} cases, one email each to the case's caseworker")
    base = "bench" + uuid.uuid4().hex[:6]
    raw_settings = settings_for(base + "raw")
    try:
        raw = await raw_rate(raw_settings, events)
    finally:
        await _delete_topics(raw_settings.kafka)
    print(f"raw aiokafka consume+produce (acks=all, commit per batch, one process): {raw:,.0f} msg/s")
    if autogroup_enabled():
        print("Linux autogroup scheduling is on: a session's processes share one CPU share, so each replica is "
              "started in a session of its own (as in a container of its own)")
    print(f"{args.service}: backlog of {what} on {PARTITIONS} partitions")
    ones: list[RunResult] = []
    manys: list[RunResult] = []
    for round_no in range(args.rounds):  # alternated, so a change in the machine's load hits both
        ones.append(await drain_with(workload(), 1, f"{base}r{round_no}a", started.pid, args.timeout))
        report(ones[-1])
        manys.append(await drain_with(workload(), args.replicas, f"{base}r{round_no}b", started.pid, args.timeout))
        report(manys[-1])
    one = statistics.median(r.rate for r in ones)
    many = statistics.median(r.rate for r in manys)
    pairs = list(zip(ones, manys, strict=True))
    unit = ones[0].unit
    print(f"\n{args.service}: {args.replicas} replicas / 1 replica: {many / one:.2f}x (target 1.7x for 2; medians of "
          f"{args.rounds} alternated round(s); per round: {', '.join(f'{m.rate / o.rate:.2f}x' for o, m in pairs)}); "
          f"1 replica {one:,.0f} {unit}/s, {args.replicas} replicas {many:,.0f} {unit}/s")
    print(f"1 replica / raw: {one / raw:.3f}; {args.replicas} replicas / raw: {many / raw:.3f}")
    efficiency = statistics.median(m.per_cpu_second / o.per_cpu_second for o, m in pairs)
    print(f"{unit} per CPU-second of the replicas, {args.replicas} replicas / 1 replica: {efficiency:.2f} (1.00: no "
          f"work lost to coordinating replicas; the rate then follows the CPU the replicas get); CPU the replicas "
          f"got in all: {statistics.median(sum(r.cpu_replicas) for r in ones):.0%} of a core for 1, "
          f"{statistics.median(sum(r.cpu_replicas) for r in manys):.0%} for {args.replicas}")
    failed = [r for r in ones + manys if not r.ok]
    kept = "nothing done twice, nothing lost" + ("" if args.service == "deadlines" else ", per-case order kept")
    print(f"every run: {kept}" if not failed else f"{len(failed)} run(s) FAILED their checks (see above)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
