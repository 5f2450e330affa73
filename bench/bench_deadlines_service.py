"""Benchmark of the deadlines service with real Kafka and PostgreSQL (issue 5).

    .venv/bin/ehc infra up && .venv/bin/python bench/bench_deadlines_service.py [--events N] [--no-timers]
        [--latency-seconds S (0: skip)] [--only latency|timers] [--stages (latency per stage)]
        [--profile N (cProfile of the sustained run, CPU time, top N)]

Prints, in one run:
1. the raw aiokafka consume-and-produce rate (consumer group, acks=all, commit per batch): the
   ceiling the service runs against on this machine;
2. the service's sustained rate through a backlog of realistic case histories (case event in,
   history stored, case recomputed, deadlines diffed and stored, deadline events out via the
   outbox, offsets committed), its ratio to (1) (issue 12's target: at least 0.2), and the CPU
   per case event of this process (steadier than the rate on a shared machine), of its PostgreSQL
   backends and of the Kafka broker (the whole broker: others' use of it counts too);
3. latency from case event to deadline event, p50/p99, at a steady 200 events/s;
4. with 1,000,000 open deadlines stored, the time to fire 10,000 due timers, and peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import resource
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from services.deadlines.bootstrap import bootstrap  # noqa: E402
from services.deadlines.domain.synthetic import synthetic_stream  # noqa: E402
from services.deadlines.entrypoints.scheduler import fire_all_due  # noqa: E402
from shared import topics  # noqa: E402
from shared.consumer import Isolated  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.local_infra import kafka as kafka_infra  # noqa: E402
from shared.local_infra import postgres as pg_infra  # noqa: E402
from shared.logging import configure_logging  # noqa: E402
from shared.settings import KafkaSettings, Settings  # noqa: E402
from shared.topics import TopicSpec, topic_specs  # noqa: E402
from tests.conftest import _delete_topics, free_port  # noqa: E402
from tests.e2e.harness import ServiceProcess, service_env  # noqa: E402

LOG_DIR = Path(__file__).resolve().parents[1] / "var" / "bench"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def envelope(record: Any) -> bytes:
    data = {"occurred_on": record.occurred_on.isoformat()}
    data.update({k: (v.isoformat() if isinstance(v, date) else v) for k, v in record.data.items()})
    return json.dumps({"specversion": "1.0", "id": record.id, "source": "bench/synthetic", "type": record.type,
                       "subject": record.case_id, "time": record.recorded_at.isoformat(), "data": data}).encode()


def settings_for(tag: str) -> Settings:
    return Settings(environment="test", database_url=pg_infra.database_url(), db_schema_prefix=f"{tag}_",
                    kafka=KafkaSettings(bootstrap_servers=kafka_infra.bootstrap_servers(), topic_prefix=f"{tag}.",
                                        group_prefix=f"{tag}.", partitions=6))


async def produce_all(bootstrap_servers: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_rate(settings: Settings, n: int) -> float:
    """aiokafka alone: consume in a group, produce each record to another topic, commit per batch."""
    src, dst = settings.kafka.topic("bench.raw-in"), settings.kafka.topic("bench.raw-out")
    await ensure_topics(settings.kafka, [TopicSpec(src, 6), TopicSpec(dst, 6)])
    payload = [(f"case-{i % 5000}".encode(), b'{"x": %d}' % i + b" " * 400) for i in range(n)]
    await produce_all(settings.kafka.bootstrap_servers, src, payload)
    consumer = AIOKafkaConsumer(src, bootstrap_servers=settings.kafka.bootstrap_servers,
                                group_id=settings.kafka.group("raw"), enable_auto_commit=False,
                                auto_offset_reset="earliest", max_poll_records=500)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all",
                                enable_idempotence=True, linger_ms=5, max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    done = 0
    t0 = time.perf_counter()
    try:
        while done < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            futures = [await producer.send(dst, r.value, key=r.key) for rs in batch.values() for r in rs]
            await asyncio.gather(*futures)
            await consumer.commit()
            done += len(futures)
        return n / (time.perf_counter() - t0)
    finally:
        await consumer.stop()
        await producer.stop()


async def count(schema: str, query: str) -> int:
    conn = await asyncpg.connect(pg_infra.dsn())
    try:
        return int(await conn.fetchval(query.replace("{s}", f'"{schema}"')))
    finally:
        await conn.close()


def pg_client_ports(pid: int, pg_port: int) -> set[int]:
    """The local ports of a process's TCP connections to PostgreSQL (pg_stat_activity.client_port)."""
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return set()
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:  # closed since the listing (the listing's own descriptor, for this process)
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[9] in inodes and int(cols[2].rsplit(":", 1)[1], 16) == pg_port:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


async def backend_pids(conn: asyncpg.Connection, pid: int) -> set[int]:
    ports = pg_client_ports(pid, pg_infra.port())
    if not ports:
        return set()
    rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE client_port = any($1)", list(ports))
    return {r["pid"] for r in rows}


async def backend_cpu() -> dict[int, float]:
    """CPU seconds so far of the PostgreSQL backends serving this process, by backend pid."""
    conn = await asyncpg.connect(pg_infra.dsn())
    try:
        pids = await backend_pids(conn, os.getpid()) - {await conn.fetchval("SELECT pg_backend_pid()")}
    finally:
        await conn.close()
    return {pid: cpu_seconds(pid) or 0.0 for pid in pids}


def print_profile(profiler: cProfile.Profile, top: int) -> None:
    """Where the sustained run's CPU went: the costliest functions by their own time, and the
    share of the whole run's CPU of the main parts of the hot path (cumulative)."""
    stats = pstats.Stats(profiler)
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
    parts = {"engine (compute)": "engine.py:compute", "history read back (record_from_row)": "record_from_row",
             "deadline events built (_change_event)": "_change_event", "events to JSON (to_json)": "to_json",
             "case events decoded (parse_case_event)": "parse_case_event",
             "SQLAlchemy execute": "session.py:execute", "bulk writes (shared.bulk)": "bulk.py:insert_rows",
             "outbox COPY (shared.bulk)": "bulk.py:copy_rows", "relay pass (_publish_batch)": "_publish_batch",
             "combined batch statements (shared.bulk)": "bulk.py:fetch",
             "held-case check (dead letters)": "dead_letters.py:held",
             "handle_case_events": "handle_case_events"}
    cumulative: dict[str, float] = {}
    for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).name}:{name}"
        for label, key in parts.items():
            if where.endswith(key) or (":" not in key and name == key):
                cumulative[label] = max(cumulative.get(label, 0.0), ct)
    print(f"profile of the sustained run: {total:.1f} s of CPU in Python functions")
    for label, ct in sorted(cumulative.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<42} {ct:6.2f} s  {100 * ct / total:5.1f}%")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[-6000:])


async def sustained_rate(settings: Settings, n_events: int, profiler: cProfile.Profile | None = None,
                         broker_pid: int | None = None) -> tuple[float, int, int, float, float]:
    """The rate, the cases, the deadline events out, and this process's CPU seconds per event
    (the service's own work: less sensitive than the rate to a machine shared with others).
    Prints where the CPU went: this process, its PostgreSQL backends, the Kafka broker (the whole
    broker: anyone else's use of it counts too). Also returns the seconds the consumer took to start
    (joining its group; on a broker shared with the tests, reading the metadata of thousands of
    topics), counted in the rate as before, but not part of the raw loop's time."""
    records, cases = synthetic_stream(n_events)
    await produce_all(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.CASE_EVENTS),
                      [(r.case_id.encode(), envelope(r)) for r in records])
    schema = settings.schema_for("deadlines")
    service = bootstrap(settings, clock=FixedClock(datetime(2026, 11, 27, 12, tzinfo=UTC)))
    await service.start(consume=False, schedule=False)
    relay = asyncio.create_task(service.relay.run())
    pg0, broker0 = await backend_cpu(), (cpu_seconds(broker_pid) or 0.0) if broker_pid else 0.0
    t0, cpu0 = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    await service.broker.start()
    startup = time.perf_counter() - t0
    poll = await asyncpg.connect(pg_infra.dsn())  # one connection for the polling, not one a poll
    while await poll.fetchval(f'SELECT count(*) FROM "{schema}".processed_events') < len(records):
        await asyncio.sleep(0.2)
    await poll.close()
    while await service.relay.pending():
        await asyncio.sleep(0.05)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if profiler is not None:
        profiler.disable()
    pg = sum(cpu - pg0.get(pid, 0.0) for pid, cpu in (await backend_cpu()).items())
    broker = (cpu_seconds(broker_pid) or 0.0) - broker0 if broker_pid else 0.0
    n = len(records)
    print(f"CPU per case event: this process {cpu / n * 1e6:,.0f} us, its PostgreSQL backends {pg / n * 1e6:,.0f} us, "
          f"the Kafka broker {broker / n * 1e6:,.0f} us (whole broker); wall {elapsed / n * 1e6:,.0f} us")
    published = await count(schema, "SELECT count(*) FROM {s}.outbox")
    relay.cancel()
    await service.stop()
    return len(records) / elapsed, cases, published, cpu / len(records), startup


STAGES = ("received", "committed", "pass_started", "sent", "acked")


class _StageProbe:
    """Times each latency event through the service's stages (bench only: wraps the consumer's
    batch call, the relay's pass and its producer; the service itself is unchanged)."""

    def __init__(self, service: Any) -> None:
        self.at: dict[bytes, dict[str, float]] = {}
        self.gc_pauses: list[float] = []
        self._gc_start = 0.0
        self._pass_started = 0.0
        relay = service.relay
        self._relay, self._orig_pass, self._orig_producer = relay, relay._publish_batch, relay._producer
        self._orig_consume = Isolated._consume
        probe = self

        async def timed_consume(isolated: Any, records: Any) -> None:
            t = time.perf_counter()
            for r in records:
                probe._mark(r.key, "received", t)
            await probe._orig_consume(isolated, records)
            t = time.perf_counter()
            for r in records:
                probe._mark(r.key, "committed", t)

        async def timed_pass() -> int:
            probe._pass_started = time.perf_counter()
            return await probe._orig_pass()

        class TimedProducer:
            async def send(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None) -> Any:
                probe._mark(key, "pass_started", probe._pass_started)
                probe._mark(key, "sent", time.perf_counter())
                future = await probe._orig_producer.send(topic, value, key=key, headers=headers)
                future.add_done_callback(lambda _f: probe._mark(key, "acked", time.perf_counter()))
                return future

        Isolated._consume = timed_consume  # type: ignore[method-assign]
        relay._publish_batch = timed_pass
        relay._producer = TimedProducer()
        gc.callbacks.append(self._on_gc)

    def _mark(self, key: bytes | None, stage: str, t: float) -> None:
        if key is not None:
            self.at.setdefault(key, {}).setdefault(stage, t)

    def _on_gc(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_pauses.append(time.perf_counter() - self._gc_start)

    def remove(self) -> None:
        Isolated._consume = self._orig_consume  # type: ignore[method-assign]
        self._relay._publish_batch, self._relay._producer = self._orig_pass, self._orig_producer
        gc.callbacks.remove(self._on_gc)

    def report(self, sent: dict[str, float], received: dict[str, float]) -> None:
        """p50/p99 of each stage's share, in milliseconds, over the events seen end to end."""
        names = ["produced", *STAGES, "listener"]
        rows: dict[str, list[float]] = {f"{a} -> {b}": [] for a, b in zip(names, names[1:], strict=False)}
        for event_id, t0 in sent.items():
            stamps = self.at.get(f"case-{event_id}".encode(), {})
            if event_id not in received or any(s not in stamps for s in STAGES):
                continue
            times = [t0, *(stamps[s] for s in STAGES), received[event_id]]
            for label, a, b in zip(rows, times, times[1:], strict=False):
                rows[label].append((b - a) * 1000)
        print("stages (ms)                      p50     p99     max")
        for label, values in rows.items():
            if values:
                values.sort()
                print(f"  {label:<28} {statistics.median(values):7.1f} "
                      f"{values[min(len(values) - 1, int(len(values) * 0.99))]:7.1f} {values[-1]:7.1f}")
        if self.gc_pauses:
            print(f"  garbage collections: {len(self.gc_pauses)}, longest {max(self.gc_pauses) * 1000:.1f} ms, "
                  f"total {sum(self.gc_pauses) * 1000:.0f} ms")


def request_received(event_id: str, case_id: str) -> bytes:
    return json.dumps({"specversion": "1.0", "id": event_id, "source": "bench", "type": "ehc.request.received",
                       "subject": case_id, "time": datetime.now(UTC).isoformat(),
                       "data": {"occurred_on": (date.today() - timedelta(days=7)).isoformat(), "route": "request",
                                "requested_by": "parent"}}).encode()


async def latency(settings: Settings, rate: int, seconds: int, stages: bool = False,
                  own_process: bool = False) -> tuple[list[float], float | None]:
    """Case event -> deadline event at a steady ``rate``. The service runs in this process (its stages
    can be timed), or, ``own_process``, as ``ehc deadlines serve`` in a process of its own, as deployed
    (this process then only produces and listens: its work is not on the service's event loop).
    Returns the latencies and, for a service of its own, its CPU seconds per case event."""
    service, process, relay = None, None, None
    if own_process:
        process = ServiceProcess("deadlines", service_env(
            settings, EHC_DEADLINES__HTTP_PORT=str(free_port()), EHC_LOGGING__LEVEL="WARNING"),
            LOG_DIR / f"latency-{settings.kafka.topic_prefix.rstrip('.')}.log", own_session=True)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        await process.start()
    else:
        service = bootstrap(settings, clock=FixedClock(datetime.now(UTC)))
        await service.start(schedule=False)
        relay = asyncio.create_task(service.relay.run())
    probe = _StageProbe(service) if stages and service is not None else None
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    # The listener must measure the service, not its own fetching: the broker answers as soon as
    # one byte is there (fetch_min_bytes=1) and the listener's poll never sleeps on an empty fetch.
    consumer = AIOKafkaConsumer(settings.kafka.topic(topics.DEADLINE_EVENTS),
                                bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None,
                                auto_offset_reset="latest", fetch_min_bytes=1, fetch_max_wait_ms=10)
    await consumer.start()
    await consumer.seek_to_end()

    async def listen() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            now = time.perf_counter()
            for rs in batch.values():
                for r in rs:
                    e = json.loads(r.value)
                    if e["type"] == "deadline.opened" and e["data"]["rule_id"] == "assessment.decision":
                        received.setdefault(e["data"]["trigger_event_id"], now)

    listener = asyncio.create_task(listen())
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", linger_ms=0)
    await producer.start()
    topic = settings.kafka.topic(topics.CASE_EVENTS)
    # Warm up (start-up, the group's first assignment, first statements): one event on each
    # partition's way, and nothing is measured until each has come back as a deadline event.
    warm = {f"warm-{k}" for k in range(12)}
    for event_id in warm:
        await producer.send(topic, request_received(event_id, f"case-{event_id}"), key=f"case-{event_id}".encode())
    end = time.perf_counter() + 120
    while not warm <= received.keys():
        if time.perf_counter() > end or (process is not None and process.proc.returncode is not None):
            raise RuntimeError("the deadlines service did not answer the warm-up events")
        await asyncio.sleep(0.05)
    cpu_before = cpu_seconds(process.proc.pid) if process is not None else None
    start = time.perf_counter()
    for k in range(rate * seconds):
        due = start + k / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        event_id = f"lat-{k}"
        case_id = f"case-lat-{k}"
        body = request_received(event_id, case_id)
        sent[event_id] = time.perf_counter()
        await producer.send(topic, body, key=case_id.encode())
    await producer.flush()
    end = time.perf_counter() + 30
    while len(received.keys() & sent.keys()) < len(sent) and time.perf_counter() < end:
        await asyncio.sleep(0.1)
    cpu_after = cpu_seconds(process.proc.pid) if process is not None else None
    listener.cancel()
    await consumer.stop()
    await producer.stop()
    if process is not None:
        await process.terminate()
    else:
        relay.cancel()
        await service.stop()
    if probe is not None:
        probe.remove()
        probe.report(sent, received)
    cpu = (cpu_after - cpu_before) / len(sent) if cpu_before is not None and cpu_after is not None else None
    return sorted((received[i] - sent[i]) * 1000 for i in sent if i in received), cpu


async def timers(settings: Settings, stored: int, due: int, profile: int = 0) -> tuple[float, int]:
    """Fire ``due`` timers among ``stored`` deadlines; prints the time, and the ratio to the raw
    database work the same firing needs (baseline, same run, rolled back): on asyncpg, in one
    transaction, lock the due deadlines (FOR UPDATE SKIP LOCKED), mark their timers fired, set
    their status, insert one outbox row each. ``profile``: print the firing's N costliest functions
    (CPU time) and its CPU against its wall time."""
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    service = bootstrap(settings, clock=FixedClock(now))
    await service.start(consume=False, schedule=False)
    schema = settings.schema_for("deadlines")
    conn = await asyncpg.connect(pg_infra.dsn())
    try:
        await conn.execute(f'TRUNCATE "{schema}".deadlines, "{schema}".timers, "{schema}".outbox')
        today = now.date()
        explanation = json.dumps({"rule_id": "assessment.decision", "legal_source": "Regs 5(1); 4(1)",
                                  "period_text": "6 weeks", "trigger_event_id": "e",
                                  "ruleset_version": "england-2014.1",
                                  "responsible": "la", "kind": "duty", "flags": []})
        rows = ((f"case-{i}:assessment.decision:1", f"case-{i}", "assessment.decision",
                 today + timedelta(days=1 + i % 300) if i >= due else today - timedelta(days=1), "open", "la", "duty",
                 "team-1", f"cw-{i % 80}", explanation, now) for i in range(stored))
        await conn.copy_records_to_table("deadlines", schema_name=schema, records=rows,
                                         columns=["deadline_id", "case_id", "rule_id", "due_on", "status",
                                                  "responsible", "kind", "team_id", "caseworker_id", "explanation",
                                                  "updated_at"])
        timer_rows = ((f"case-{i}:assessment.decision:1", f"case-{i}", "breach", 0,
                       today - timedelta(days=1) if i < due else today + timedelta(days=2 + i % 300),
                       now - timedelta(hours=1) if i < due else now + timedelta(days=2 + i % 300), None)
                      for i in range(stored))
        await conn.copy_records_to_table("timers", schema_name=schema, records=timer_rows,
                                         columns=["deadline_id", "case_id", "kind", "offset_days", "due_on", "fire_at",
                                                  "fired_at"])
        await conn.execute(f'ANALYZE "{schema}".deadlines; ANALYZE "{schema}".timers')
        value = json.dumps({"specversion": "1.0", "id": str(uuid.uuid4()), "type": "deadline.breached",
                            "data": json.loads(explanation)}).encode()
        t0 = time.perf_counter()
        tr = conn.transaction()
        await tr.start()
        ids = [r[0] for r in await conn.fetch(
            f'SELECT deadline_id FROM "{schema}".deadlines WHERE deadline_id IN (SELECT deadline_id FROM '
            f'"{schema}".timers WHERE fired_at IS NULL AND fire_at <= $1) FOR UPDATE SKIP LOCKED', now)]
        await conn.execute(f'UPDATE "{schema}".timers SET fired_at = $1 WHERE deadline_id = ANY($2::text[]) '
                           f'AND fired_at IS NULL AND fire_at <= $1', now, ids)
        await conn.execute(f'UPDATE "{schema}".deadlines SET status = $1 WHERE deadline_id = ANY($2::text[])',
                           "breached", ids)
        await conn.execute(f'INSERT INTO "{schema}".outbox (topic, key, value) SELECT $1, k.k, $3 '
                           f'FROM unnest($2::bytea[]) AS k(k)', "t", [i.encode() for i in ids], value)
        baseline = time.perf_counter() - t0
        await tr.rollback()
        await conn.execute(f'VACUUM ANALYZE "{schema}".timers')
    finally:
        await conn.close()
    print(f"timers baseline: raw asyncpg claim (FOR UPDATE SKIP LOCKED) + mark fired + status + "
          f"{len(ids):,} outbox rows: {baseline:.2f} s")
    profiler = cProfile.Profile(time.process_time) if profile else None
    t0, cpu0 = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    fired = await fire_all_due(service.service, service.after_batch)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if profiler is not None:
        profiler.disable()
    await service.stop()
    print(f"timers: {fired:,} due among {stored:,} stored deadlines fired (published) in {elapsed:.2f} s "
          f"({fired / elapsed:,.0f}/s); ratio to baseline: {elapsed / baseline:.1f}; CPU of this process {cpu:.2f} s")
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(r"handlers|outbox|repository|bulk|scheduler", profile)
        stats.sort_stats("tottime").print_stats(profile)
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
    return elapsed, fired


async def report_latency(tag: str, seconds: int, stages: bool) -> None:
    """Latency with the service in its own process (as deployed), then in this process (where
    ``stages`` can time its stages), each on topics and a schema of its own."""
    for suffix, own_process in (("p", True), ("i", False)):
        settings = settings_for(tag + suffix)
        await ensure_topics(settings.kafka, topic_specs(settings.kafka.topic_prefix, 6))
        samples, cpu = await latency(settings, 200, seconds, stages, own_process)
        where = "service in its own process" if own_process else "service in the bench's process"
        if samples:
            p50 = statistics.median(samples)
            p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
            print(f"latency case event -> deadline event at 200 events/s, {where} ({len(samples)} samples): "
                  f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {samples[-1]:.0f} ms"
                  + (f"; the service's CPU {cpu * 1e6:,.0f} us per case event" if cpu is not None else ""))


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--stored", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--latency-seconds", type=int, default=15)
    parser.add_argument("--only", choices=["timers", "latency"], help="run only this part")
    parser.add_argument("--stages", action="store_true",
                        help="with the latency, time each stage (consumed, committed, relayed, acked, received)")
    parser.add_argument("--no-timers", action="store_true", help="skip (4), the timers among stored deadlines")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="profile the sustained run (with --only timers: the firing) (cProfile) and print "
                             "its N costliest functions")
    args = parser.parse_args(argv)
    configure_logging("WARNING", json_output=False)
    broker_pid = (await asyncio.to_thread(kafka_infra.start)).pid
    await kafka_infra.wait_ready(120)
    await asyncio.to_thread(pg_infra.start)
    tag = "bench" + uuid.uuid4().hex[:6]
    settings = settings_for(tag)
    await ensure_topics(settings.kafka, topic_specs(settings.kafka.topic_prefix, 6))
    try:
        if args.only == "timers":
            await ensure_topics(settings_for(tag + "t").kafka, topic_specs(f"{tag}t.", 6))
            await timers(settings_for(tag + "t"), args.stored, args.due, args.profile)
            return 0
        if args.only == "latency":
            await report_latency(tag + "l", args.latency_seconds, args.stages)
            return 0
        raw = await raw_rate(settings, args.events)
        print(f"raw aiokafka consume+produce (acks=all, commit per batch): {raw:,.0f} msg/s")
        profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not wall time
        rate, cases, published, cpu, startup = await sustained_rate(settings, args.events, profiler, broker_pid)
        print(f"deadlines service, backlog of {args.events:,} case events over {cases:,} cases: {rate:,.0f} events/s "
              f"({published:,} deadline events out); ratio to raw: {rate / raw:.2f}; "
              f"CPU of this process {cpu * 1e6:,.0f} us per case event")
        steady = args.events / (args.events / rate - startup)
        print(f"  of which the consumer's start-up {startup:.2f} s; without it {steady:,.0f} events/s, "
              f"ratio to raw {steady / raw:.2f}")
        if profiler is not None:
            print_profile(profiler, args.profile)
        if args.latency_seconds:
            await report_latency(tag + "l", args.latency_seconds, args.stages)
        if not args.no_timers:
            t_settings = settings_for(tag + "t")
            await ensure_topics(t_settings.kafka, topic_specs(t_settings.kafka.topic_prefix, 6))
            await timers(t_settings, args.stored, args.due)
        print(f"peak memory of this process (service in-process): "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        conn = await asyncpg.connect(pg_infra.dsn())
        for suffix in ("", "lp", "li", "t"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{tag}{suffix}_deadlines" CASCADE')
        await conn.close()
        # every topic of this run ("<tag>.", "<tag>lp.", ...) goes with it: a broker that keeps
        # thousands of old topics spends CPU on them, the next runs' figures included
        await _delete_topics(KafkaSettings(bootstrap_servers=settings.kafka.bootstrap_servers, topic_prefix=tag))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
