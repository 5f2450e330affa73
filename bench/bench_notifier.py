"""Benchmark of the notifier: deadline events in through Kafka, notifications out to the GOV.UK
Notify stand-in and to a real SMTP server (aiosmtpd).

    .venv/bin/python bench/bench_notifier.py [--n 3000] [--paced 600 --rate 100] [--channel notify|smtp|both]
        2>/tmp/bench-notifier.log

Needs the local Kafka broker and PostgreSQL (``ehc infra up``; they are started if they are not
running). Each run gets its own topics and database schema. The stand-ins run in a child process,
so they do not compete with the notifier for this process's interpreter lock.

Every event is a ``deadline.breached`` of a council duty on its own case, so it makes exactly one
notification (the caseworker's breach alert), sent at once. Two phases per channel:

* burst: ``--n`` events produced as fast as possible; throughput = notifications / (last request
  received by the stand-in - first event produced); the sender-only rate (first to last request)
  is shown too;
* paced: ``--paced`` events at ``--rate`` a second; the latency from producing the deadline event
  to the stand-in receiving the outgoing request, as p50 / p95 / p99 / max.

GOV.UK Notify limits an API key to 3,000 requests a minute; the notifier's own limiter enforces
it by default. This benchmark lifts that limit (``--notify-limit`` keeps it) to measure the
notifier's capacity. Logging is at INFO (JSON to stderr), as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from services.notifier.adapters import tables  # noqa: E402
from services.notifier.bootstrap import Notifier, bootstrap  # noqa: E402
from shared import topics  # noqa: E402
from shared.contracts import DeadlineEvent  # noqa: E402
from shared.kafka import build_producer, ensure_topics  # noqa: E402
from shared.local_infra import kafka as kafka_infra  # noqa: E402
from shared.local_infra import postgres as pg_infra  # noqa: E402
from shared.logging import configure_logging  # noqa: E402
from shared.settings import KafkaSettings, NotifierSettings, Settings  # noqa: E402

CASEWORKER = ("cw-bench", "caseworker@council.example")
TARGET_PER_SECOND = 300


# --- the stand-ins, in a child process ---------------------------------------------------------

def _stand_in(kind: str, conn: Any) -> None:
    """Run the Notify stand-in or an SMTP server; on "collect", send back (notification id, arrival)."""
    if kind == "notify":
        from tests.notifier.conftest import EMAIL_TEMPLATE, SECRET, SERVICE_ID
        from tests.notifier.notify_stub import NotifyStub, ServerThread

        stub = NotifyStub(SERVICE_ID, [SECRET], [EMAIL_TEMPLATE])
        server = ServerThread(stub.app).start()
        conn.send({"url": server.url, "api_key": stub.api_key(), "template": EMAIL_TEMPLATE.id})

        def collect() -> list[tuple[str, float]]:
            return [(r.json["reference"], r.received_at) for r in list(stub.received)
                    if r.method == "POST" and r.status_code == 201]
    else:
        from aiosmtpd.controller import Controller

        from tests.notifier.notify_stub import free_port

        arrivals: list[tuple[str, float]] = []

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                now = time.time()
                message = message_from_bytes(envelope.original_content or envelope.content)
                arrivals.append((str(message["X-EHC-Notification-Id"]), now))
                return "250 Message accepted for delivery"

        port = free_port()
        controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        controller.start()
        conn.send({"host": "127.0.0.1", "port": port})

        def collect() -> list[tuple[str, float]]:
            return list(arrivals)

    while True:
        command = conn.recv()
        if command == "collect":
            conn.send(collect())
        elif command == "count":
            conn.send(len(collect()))
        else:
            break


class StandIn:
    def __init__(self, kind: str) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_stand_in, args=(kind, child), daemon=True)
        self._proc.start()
        self.info: dict[str, Any] = self._conn.recv()

    def _ask(self, command: str) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def arrivals(self) -> list[tuple[str, float]]:
        """(notification id, arrival) of every message received, in the order they arrived."""
        return list(self._ask("collect"))

    async def collect(self) -> dict[str, float]:
        return dict(await asyncio.to_thread(self.arrivals))

    def stop(self) -> None:
        self._conn.send("stop")
        self._proc.join(timeout=10)


# --- the run ---------------------------------------------------------------------------------------

def settings_for(kind: str, stand_in: StandIn, keep_notify_limit: bool) -> Settings:
    tag = "bench" + uuid.uuid4().hex[:8]
    notifier: dict[str, Any] = {
        "encryption_key": Fernet.generate_key().decode(), "caseworker_directory": {CASEWORKER[0]: CASEWORKER[1]},
        "council_phone": "0300 123 4043", "sms_channel": "file",
    }
    if kind == "notify":
        templates = {"caseworker_breach.email": stand_in.info["template"]}
        notifier.update(email_channel="notify", notify_base_url=stand_in.info["url"],
                        notify_api_key=stand_in.info["api_key"], notify_templates=templates)
        if not keep_notify_limit:
            notifier.update(notify_rate_per_minute=10**7, notify_rate_burst=10**6)
    else:
        notifier.update(email_channel="smtp", smtp_host=stand_in.info["host"], smtp_port=stand_in.info["port"])
    return Settings(environment="test", database_url=pg_infra.database_url(), db_schema_prefix=f"{tag}_",
                    kafka=KafkaSettings(bootstrap_servers=kafka_infra.bootstrap_servers(), topic_prefix=f"{tag}.",
                                        group_prefix=f"{tag}.", partitions=3),
                    notifier=NotifierSettings.model_validate(notifier))


def breach(i: int, run: str) -> DeadlineEvent:
    case_id = f"case-{run}-{i}"
    yesterday = datetime.now(UTC).date() - timedelta(days=1)  # breached today: news (an older breach is history)
    return DeadlineEvent.model_validate({
        "id": f"{run}-{i}", "source": "ehc/deadlines", "subject": case_id, "time": datetime.now(UTC).isoformat(),
        "type": "deadline.breached",
        "data": {"case_id": case_id, "deadline_id": f"{case_id}:assessment.decision:1",
                 "rule_id": "assessment.decision", "due_on": yesterday.isoformat(), "status": "breached",
                 "responsible": "la",
                 "trigger_event_id": "e-1", "legal_source": "Regs 5(1); 4(1)", "ruleset_version": "england-2014.1",
                 "caseworker_id": CASEWORKER[0], "team_id": "team-n"}})


async def sent_count(notifier: Notifier) -> int:
    n = tables.notifications
    async with notifier.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(n).where(n.c.status == "sent")) or 0)


async def notification_deadlines(notifier: Notifier) -> dict[str, str]:
    n = tables.notifications
    async with notifier.sessions() as session:
        return {r.notification_id: r.deadline_id
                for r in (await session.execute(select(n.c.notification_id, n.c.deadline_id))).all()}


async def produce(producer: Any, topic: str, events: list[DeadlineEvent], rate: float | None) -> dict[str, float]:
    """Send the events (at ``rate`` a second, or as fast as possible); when each was produced."""
    produced: dict[str, float] = {}
    pending = []
    start = time.monotonic()
    for i, event in enumerate(events):
        if rate:
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        produced[event.data.deadline_id] = time.time()
        pending.append(await producer.send(topic, event.to_json(), key=event.key()))
    await asyncio.gather(*pending)
    return produced


async def wait_for(notifier: Notifier, count: int, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while await sent_count(notifier) < count:
        if time.monotonic() > end:
            raise RuntimeError(f"only {await sent_count(notifier)} of {count} notifications sent in {timeout:.0f} s")
        await asyncio.sleep(0.05)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": q[49], "p95": q[94], "p99": q[98], "max": ordered[-1]}


async def bench_channel(kind: str, n: int, paced: int, rate: float, keep_notify_limit: bool) -> dict[str, Any]:
    stand_in = StandIn(kind)
    settings = settings_for(kind, stand_in, keep_notify_limit)
    await ensure_topics(settings.kafka)
    notifier = bootstrap(settings)
    producer = build_producer(settings.kafka, "bench", linger_ms=2)
    await producer.start()
    await notifier.start()
    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(job())  # type: ignore[arg-type]
                                      for job in notifier.runtime().background]
    topic = settings.kafka.topic(topics.DEADLINE_EVENTS)
    try:
        # warm-up: consumer group joined, connections open
        await produce(producer, topic, [breach(i, "warm") for i in range(20)], None)
        await wait_for(notifier, 20)

        run = uuid.uuid4().hex[:6]
        produced = await produce(producer, topic, [breach(i, run) for i in range(n)], None)
        await wait_for(notifier, 20 + n)
        arrivals = await stand_in.collect()
        deadlines = await notification_deadlines(notifier)
        burst = {nid: t for nid, t in arrivals.items() if deadlines.get(nid, "").startswith(f"case-{run}-")}
        first_produced, last_received = min(produced.values()), max(burst.values())
        throughput = n / (last_received - first_produced)
        sender_only = (n - 1) / (max(burst.values()) - min(burst.values()))
        burst_latency = [burst[nid] - produced[deadlines[nid]] for nid in burst]

        paced_run = uuid.uuid4().hex[:6]
        produced_paced = await produce(producer, topic, [breach(i, paced_run) for i in range(paced)], rate)
        await wait_for(notifier, 20 + n + paced)
        arrivals = await stand_in.collect()
        deadlines = await notification_deadlines(notifier)
        latency = [t - produced_paced[deadlines[nid]] for nid, t in arrivals.items()
                   if deadlines.get(nid, "").startswith(f"case-{paced_run}-")]
        return {"channel": kind, "n": n, "throughput": throughput, "sender_only": sender_only,
                "burst_latency": percentiles(burst_latency), "paced": paced, "rate": rate,
                "paced_latency": percentiles(latency), "smtp_connections": getattr(
                    notifier.channels.get("smtp"), "connections_opened", None)}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await notifier.stop()
        await producer.stop()
        stand_in.stop()
        await drop_run(settings)


async def drop_run(settings: Settings) -> None:
    """The run's schema and topics go with it (old topics cost a broker CPU, later runs' included)."""
    import asyncpg

    from tests.conftest import _delete_topics

    conn = await asyncpg.connect(pg_infra.dsn())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.schema_for("notifier")}" CASCADE')
    finally:
        await conn.close()
    await _delete_topics(settings.kafka)


def report(result: dict[str, Any]) -> None:
    ms = {k: f"{v * 1000:.0f} ms" for k, v in result["paced_latency"].items()}
    burst_ms = {k: f"{v * 1000:.0f} ms" for k, v in result["burst_latency"].items()}
    verdict = "meets" if result["throughput"] >= TARGET_PER_SECOND else "MISSES"
    print(f"\n== {result['channel']} ==")
    print(f"burst of {result['n']}: {result['throughput']:.0f} notifications/s end to end "
          f"({verdict} the {TARGET_PER_SECOND}/s target); sender alone {result['sender_only']:.0f}/s")
    print(f"  latency in the burst (queueing included): {burst_ms}")
    print(f"paced {result['paced']} at {result['rate']:.0f}/s: latency event -> outgoing request {ms}")
    if result["smtp_connections"] is not None:
        print(f"  SMTP connections opened: {result['smtp_connections']}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="events in the burst")
    parser.add_argument("--paced", type=int, default=600, help="events in the paced phase")
    parser.add_argument("--rate", type=float, default=100.0, help="events a second in the paced phase")
    parser.add_argument("--channel", choices=["notify", "smtp", "both"], default="both")
    parser.add_argument("--notify-limit", action="store_true", help="keep GOV.UK Notify's 3,000 a minute")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    configure_logging(args.log_level, json_output=True)
    await asyncio.to_thread(kafka_infra.start)
    await kafka_infra.wait_ready(120)
    await asyncio.to_thread(pg_infra.start)
    await pg_infra.wait_ready(60)
    kinds = ["notify", "smtp"] if args.channel == "both" else [args.channel]
    for kind in kinds:
        report(await bench_channel(kind, args.n, args.paced, args.rate, args.notify_limit))


if __name__ == "__main__":
    asyncio.run(main())
