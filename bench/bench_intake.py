"""Benchmark of intake with real Kafka and PostgreSQL (issue 4).

    .venv/bin/ehc infra up && .venv/bin/python bench/bench_intake.py [--only mapped|webhook|sen2]

Prints, in one run:
1. mapped: a backlog of messages in a council's own shape (CaseFlow: flat JSON, UK dates, one in
   five with a parent's contact details) on its own Kafka topic, read by intake through the
   caseflow mapping: canonical events per second, from the subscriber's start until every event
   is in ehc.case-events (batch subscriber, one transaction per batch, outbox relayed with
   acks=all before the offsets are committed). Target: 5,000 events/s.
2. webhook: signed batches of 100 canonical events POSTed to intake's webhook served by uvicorn on
   a free port, by a few concurrent httpx clients; events per second from the first request to
   the last 202 (each 202 only once its events are in Kafka). Target: 1,000 events/s.
3. sen2: ``ehc intake import FILE --format sen2`` of a generated 15,000-person XML return, run as
   the command a council would run: wall seconds, start-up included. Target: under 30 s.

Every part uses its own topic prefix and database schema, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import uvicorn  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from services.intake.bootstrap import bootstrap  # noqa: E402
from services.intake.domain.sen2_synthetic import write_sen2_xml  # noqa: E402
from services.intake.entrypoints.http import sign  # noqa: E402
from shared import topics  # noqa: E402
from shared.kafka import ensure_topics, topic_partitions  # noqa: E402
from shared.local_infra import kafka as kafka_infra  # noqa: E402
from shared.local_infra import postgres as pg_infra  # noqa: E402
from shared.logging import configure_logging  # noqa: E402
from shared.settings import IntakeSettings, KafkaSettings, Settings  # noqa: E402
from shared.topics import TopicSpec  # noqa: E402

KEY = "bench-case-id-key-0123456789abcdef"
PARTITIONS = 6
STATUSES = [("REQ_RCVD", 3), ("DEC_ASSESS", 2), ("DEC_REFUSE", 1), ("DRAFT_ISSUED", 1), ("FINAL_ISSUED", 1),
            ("REVIEW_MTG", 1), ("REVIEW_DEC", 1), ("ALLOC", 1)]
TARGETS = {"mapped": 5_000.0, "webhook": 1_000.0, "sen2": 30.0}


def settings_for(tag: str, **intake: Any) -> Settings:
    return Settings(environment="test", database_url=pg_infra.database_url(), db_schema_prefix=f"{tag}_",
                    kafka=KafkaSettings(bootstrap_servers=kafka_infra.bootstrap_servers(), topic_prefix=f"{tag}.",
                                        group_prefix=f"{tag}.", partitions=PARTITIONS),
                    intake=IntakeSettings(case_id_key=SecretStr(KEY), **intake))


async def cleanup(settings: Settings, extra_topics: list[str]) -> None:
    conn = await asyncpg.connect(pg_infra.dsn())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.schema_for("intake")}" CASCADE')
    finally:
        await conn.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        prefix = settings.kafka.topic_prefix
        mine = [t for t in await admin.list_topics() if t.startswith(prefix) or t in extra_topics]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


class TopicSize:
    """The number of records in a topic (the sum of its partitions' end offsets), with one consumer."""

    def __init__(self, cfg: KafkaSettings, topic: str) -> None:
        self.cfg, self.topic = cfg, topic
        self.consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=None,
                                         enable_auto_commit=False)
        self.partitions: list[TopicPartition] = []

    async def __aenter__(self) -> TopicSize:
        await self.consumer.start()
        self.partitions = await topic_partitions(self.cfg, self.topic)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.consumer.stop()

    async def size(self) -> int:
        return int(sum((await self.consumer.end_offsets(self.partitions)).values())) if self.partitions else 0

    async def reaches(self, count: int, timeout: float) -> float:
        """The moment (monotonic clock) the topic held ``count`` records."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if await self.size() >= count:
                return time.monotonic()
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.topic} did not reach {count} records within {timeout:.0f} s")


async def topic_size(cfg: KafkaSettings, topic: str) -> int:
    async with TopicSize(cfg, topic) as counter:
        return await counter.size()


# --- 1. a mapped source topic ---------------------------------------------------------------

def caseflow_message(rng: random.Random, i: int, day: date) -> dict[str, Any]:
    status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
    on = (day + timedelta(days=rng.randint(0, 300))).strftime("%d/%m/%Y")
    message: dict[str, Any] = {"msg_id": f"CF-{i:08d}", "case_ref": f"CF/2026/{rng.randint(1, 20_000):05d}",
                               "status": status, "status_date": on, "recorded_at": f"{on} 10:{i % 60:02d}"}
    if status == "REQ_RCVD":
        message |= {"route": "NEW", "requested_by": rng.choice(["PAR", "SCH", "HLT"])}
    elif status == "FINAL_ISSUED":
        message["plan_ref"] = f"PLAN-{i}"
    elif status == "REVIEW_DEC":
        message["review_outcome"] = rng.choice(["MAINTAIN", "AMEND", "CEASE"])
    elif status == "ALLOC":
        message |= {"caseworker": f"cw-{rng.randint(1, 40)}", "team": f"team-{rng.randint(1, 5)}"}
    if i % 5 == 0:
        message |= {"parent_name": "A Parent", "parent_email": f"parent{i}@example.org", "contact_consent": "Y",
                    "contact_pref": "EMAIL"}
    return message


async def bench_mapped(n: int) -> dict[str, Any]:
    tag = "bi" + uuid.uuid4().hex[:8]
    source_topic = f"{tag}.caseflow.status"
    settings = settings_for(tag, source_topics={"caseflow": source_topic})
    await ensure_topics(settings.kafka)
    await ensure_topics(settings.kafka, [TopicSpec(source_topic, PARTITIONS)])
    rng = random.Random(4)
    messages = [caseflow_message(rng, i, date(2026, 1, 5)) for i in range(n)]
    contacts = sum(1 for m in messages if "parent_email" in m)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", linger_ms=5,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(source_topic, json.dumps(m).encode(), key=m["case_ref"].encode())
                   for m in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    intake = bootstrap(settings)
    await intake.start(consume=False)  # topics, migrations, producer: not part of the rate
    try:
        async with TopicSize(settings.kafka, settings.kafka.topic(topics.CASE_EVENTS)) as case_events:
            started = time.monotonic()
            await intake.broker.start()
            intake.consuming = True
            seconds = await case_events.reaches(n, 600) - started
    finally:
        await intake.stop()
        contacts_out = await topic_size(settings.kafka, settings.kafka.topic(topics.CONTACTS))
        dead = await topic_size(settings.kafka, settings.kafka.topic(topics.INTAKE_DEAD_LETTER))
        await cleanup(settings, [source_topic])
    return {"events": n, "contacts": contacts_out, "contacts_expected": contacts, "dead_letters": dead,
            "seconds": seconds, "per_second": n / seconds}


# --- 2. webhook batches ---------------------------------------------------------------------

def canonical_batch(start: int, size: int) -> bytes:
    now = datetime.now(UTC).isoformat()
    return json.dumps([
        {"specversion": "1.0", "id": f"wh-{i}", "source": "cms/bench", "type": "ehc.request.received",
         "subject": f"case-{i % 5000}", "time": now,
         "data": {"occurred_on": "2026-02-02", "route": "request", "requested_by": "parent"}}
        for i in range(start, start + size)]).encode()


async def bench_webhook(n: int, batch: int, clients: int) -> dict[str, Any]:
    tag = "bw" + uuid.uuid4().hex[:8]
    secret = "bench-webhook-secret"
    port = free_port()
    settings = settings_for(tag, webhook_secrets={"cms-bench": SecretStr(secret)},
                            webhook_sources={"cms-bench": ["cms/bench"]}, http_port=port)
    bodies = [canonical_batch(start, min(batch, n - start)) for start in range(0, n, batch)]
    intake = bootstrap(settings)
    await intake.start(consume=False)
    server = uvicorn.Server(uvicorn.Config(intake.webhook, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started, 30)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)
        statuses: dict[int, int] = {}

        async def client() -> None:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                while not queue.empty():
                    body = queue.get_nowait()
                    stamp = str(int(time.time()))
                    answer = await http.post("/v1/events", content=body, headers={
                        "X-EHC-Source": "cms-bench", "X-EHC-Timestamp": stamp,
                        "X-EHC-Signature": sign(secret, stamp, body), "Content-Type": "application/json"})
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
        seconds = time.monotonic() - started
        in_kafka = await topic_size(settings.kafka, settings.kafka.topic(topics.CASE_EVENTS))
    finally:
        server.should_exit = True
        await serving
        await intake.stop()
        await cleanup(settings, [])
    return {"events": n, "batch": batch, "clients": clients, "statuses": statuses, "in_kafka": in_kafka,
            "seconds": seconds, "per_second": n / seconds}


async def until(check: Any, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise RuntimeError("timed out")
        await asyncio.sleep(0.02)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- 3. an SEN2 return through `ehc intake import` -------------------------------------------

async def bench_sen2(persons: int) -> dict[str, Any]:
    tag = "bs" + uuid.uuid4().hex[:8]
    settings = settings_for(tag)
    await ensure_topics(settings.kafka)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHC_")}
    env |= {"EHC_ENVIRONMENT": "test", "EHC_DATABASE_URL": settings.database_url,
            "EHC_DB_SCHEMA_PREFIX": settings.db_schema_prefix,
            "EHC_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "EHC_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix, "EHC_KAFKA__PARTITIONS": str(PARTITIONS),
            "EHC_INTAKE__CASE_ID_KEY": KEY}
    ehc = str(Path(sys.executable).with_name("ehc"))
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "sen2.xml"
            generated = write_sen2_xml(path, persons, 2025, seed=2025)
            started = time.monotonic()
            result = await asyncio.to_thread(subprocess.run, [ehc, "intake", "import", str(path), "--format", "sen2"],
                                             env=env, capture_output=True, text=True, check=False)
            seconds = time.monotonic() - started
            if result.returncode != 0:
                raise RuntimeError(f"ehc intake import failed ({result.returncode}): {result.stderr[-2000:]}")
            started = time.monotonic()
            again = await asyncio.to_thread(subprocess.run, [ehc, "intake", "import", str(path), "--format", "sen2"],
                                            env=env, capture_output=True, text=True, check=False)
            again_seconds = time.monotonic() - started
        in_kafka = await topic_size(settings.kafka, settings.kafka.topic(topics.CASE_EVENTS))
    finally:
        await cleanup(settings, [])
    return {"persons": generated.persons, "requests": generated.requests,
            "events_expected": sum(generated.expected_events.values()), "in_kafka": in_kafka, "seconds": seconds,
            "again_seconds": again_seconds, "summary": result.stdout.strip(), "again_summary": again.stdout.strip()}


# --- main -----------------------------------------------------------------------------------

def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "meets" if ok else "MISSES"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["mapped", "webhook", "sen2"], action="append")
    parser.add_argument("--events", type=int, default=50_000, help="messages on the mapped source topic")
    parser.add_argument("--webhook-events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="events per webhook request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent webhook clients")
    parser.add_argument("--persons", type=int, default=15_000)
    args = parser.parse_args()
    parts = args.only or ["mapped", "webhook", "sen2"]
    configure_logging("WARNING")
    await asyncio.to_thread(kafka_infra.start)
    await kafka_infra.wait_ready(120)
    await asyncio.to_thread(pg_infra.start)
    await pg_infra.wait_ready(60)
    print(f"intake benchmark on {os.cpu_count()} CPUs, Kafka {kafka_infra.bootstrap_servers()}, PostgreSQL", flush=True)
    if "mapped" in parts:
        r = await bench_mapped(args.events)
        print(f"mapped source topic: {r['events']:,} events in {r['seconds']:.2f} s = {r['per_second']:,.0f} events/s "
              f"({verdict(r['per_second'], TARGETS['mapped'])} the {TARGETS['mapped']:,.0f}/s target); "
              f"{r['contacts']:,} contact updates (expected {r['contacts_expected']:,}), "
              f"{r['dead_letters']} dead letters", flush=True)
    if "webhook" in parts:
        r = await bench_webhook(args.webhook_events, args.batch, args.clients)
        print(f"webhook: {r['events']:,} events in batches of {r['batch']} by {r['clients']} clients in "
              f"{r['seconds']:.2f} s = {r['per_second']:,.0f} events/s "
              f"({verdict(r['per_second'], TARGETS['webhook'])} the {TARGETS['webhook']:,.0f}/s target); "
              f"answers {r['statuses']}, {r['in_kafka']:,} events in Kafka", flush=True)
    if "sen2" in parts:
        r = await bench_sen2(args.persons)
        print(f"SEN2 import: {r['persons']:,} persons, {r['requests']:,} requests -> {r['in_kafka']:,} events in "
              f"Kafka ({r['events_expected']:,} implied) in {r['seconds']:.1f} s wall "
              f"({verdict(r['seconds'], TARGETS['sen2'], higher_is_better=False)} the {TARGETS['sen2']:.0f} s target); "
              f"imported again in {r['again_seconds']:.1f} s", flush=True)
        print("  " + "\n  ".join(r["summary"].splitlines()), flush=True)
        print("  again: " + " / ".join(line.strip() for line in r["again_summary"].splitlines()[1:4]), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
