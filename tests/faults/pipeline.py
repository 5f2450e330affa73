"""The whole pipeline as real processes (`ehc intake|deadlines|notifier serve`) on the fault tests'
own Kafka and PostgreSQL, and what the fault tests check after every fault.

One :class:`Pipeline` per test: its own topic prefix, consumer groups and schemas; one or more
replicas of each service, started, killed (SIGKILL), stopped and restarted by the test. Input goes
through intake (its canonical topic, or a council's own topic read through the ``caseflow``
mapping); family texts go to the GOV.UK Notify stand-in.

:meth:`Pipeline.caught_up` says what is still outstanding (an empty list: caught up);
:meth:`Pipeline.verify` checks the invariants of issue 13 item 7 and gathers the figures of issue 9.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from cryptography.fernet import Fernet
from pydantic import ValidationError

from services.deadlines.adapters.records import record_from_event
from services.deadlines.bootstrap import DomainEngine
from services.notifier.domain.policy import is_historical
from services.notifier.domain.recipients import Recipient, may_tell_family, plan_for_deadline_event
from services.notifier.service_layer.sending import INTERRUPTED
from shared import topics
from shared.contracts import parse_case_event
from shared.contracts.deadline_events import parse_deadline_event
from shared.kafka import ensure_topics, topic_partitions
from shared.settings import DeadlinesSettings, KafkaSettings, NotifierSettings, Settings
from shared.topics import TopicSpec, topic_specs
from tests.conftest import free_port
from tests.e2e.harness import ServiceProcess, service_env
from tests.faults.infra import FaultInfra
from tests.faults.workload import Workload
from tests.notifier.e2e.conftest import notify_templates
from tests.notifier.notify_stub import NotifyStub

SERVICES = ("intake", "deadlines", "notifier")
CASEFLOW = "caseflow.status"  # a council's own topic, read by intake through the shipped `caseflow` mapping
CASE_ID_KEY = "fault-tests-case-id-key-0123456789"
WEBHOOK_SOURCE, WEBHOOK_SECRET = "cms-faults", "fault-tests-webhook-secret-0123456789"
API_TOKEN = "fault-tests-api-token-0123456789"  # the deadlines read API, role admin
ADMIN_TOKEN = "fault-tests-admin-token-0123456789"  # the notifier's subscriptions API
CALLBACK_TOKEN = "fault-tests-callback-token-0123456789"  # GOV.UK Notify's delivery receipts
LONDON = ZoneInfo("Europe/London")
PARTITIONS = 3


def dead_letter_topic(service: str) -> str:
    """Where a service parks a record it cannot use. Intake's is ``ehc.intake.dead-letter`` (DESIGN
    §5); the deadlines service's and the notifier's are named the same way by the per-record
    isolation work of issue 13 (adjust here if they are named otherwise)."""
    return topics.INTAKE_DEAD_LETTER if service == "intake" else f"ehc.{service}.dead-letter"


#: For each input topic (before the prefix), the services that must park a poison record found on
#: it in their dead-letter topic. The notifier's routing subscriber also reads ehc.case-events,
#: but only for assignments; a poison record there must not stop it, parking it is the deadlines
#: service's job.
PARKED_BY: dict[str, tuple[str, ...]] = {
    topics.INTAKE_CANONICAL: ("intake",),
    CASEFLOW: ("intake",),
    topics.CASE_EVENTS: ("deadlines",),
    topics.DEADLINE_EVENTS: ("notifier",),
    topics.CONTACTS: ("notifier",),
}

#: The consumer groups (before the prefix) of each service and the topic each reads.
GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "intake": (("ehc-intake-canonical", topics.INTAKE_CANONICAL), ("ehc-intake-caseflow", CASEFLOW)),
    "deadlines": (("ehc-deadlines", topics.CASE_EVENTS),),
    "notifier": (("ehc-notifier", topics.DEADLINE_EVENTS), ("ehc-notifier-routing", topics.CASE_EVENTS),
                 ("ehc-notifier-contacts", topics.CONTACTS)),
}
CLAIMABLE = ("pending", "deferred", "temporary-failure")
DECISION_HOLD_SECONDS = 2
SENDER_LEASE_SECONDS = 8


def london_today() -> date:
    return datetime.now(LONDON).date()


@dataclass
class Replica:
    service: str
    process: ServiceProcess
    http_port: int
    log_path: Path

    @property
    def running(self) -> bool:
        return self.process.proc is not None and self.process.proc.returncode is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


@dataclass
class FaultRecord:
    fault: str
    recovery_s: float | None  # from the restart (or the kill, where nothing restarts) until caught up
    caught_up: bool
    outstanding: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    figures: dict[str, Any]
    problems: list[str]


class Pipeline:
    def __init__(self, infra: FaultInfra, notify: NotifyStub, notify_url: str, log_dir: Path, name: str) -> None:
        tag = "f" + uuid.uuid4().hex[:8]
        self.name = name
        self.infra = infra
        self.notify = notify
        self.notify_url = notify_url
        self.log_dir = log_dir
        self.settings = Settings(
            environment="test", database_url=infra.database_url, db_schema_prefix=f"{tag}_",
            kafka=KafkaSettings(bootstrap_servers=infra.bootstrap, topic_prefix=f"{tag}.", group_prefix=f"{tag}.",
                                partitions=PARTITIONS))
        self.replicas: dict[str, list[Replica]] = {s: [] for s in SERVICES}
        self.faults: list[FaultRecord] = []
        self.sent: dict[str, int] = Counter()  # messages handed to each input topic
        self.poison_sent: dict[str, int] = Counter()
        # services whose outbox may have published a batch again: a replica SIGKILLed, or the broker
        # restarted under a relay (a batch partly acknowledged is published again as a whole)
        self.may_republish: set[str] = set()
        self.poison_at: dict[str, list[tuple[int, int]]] = {}  # input topic -> (partition, offset) of each
        self.started_on = london_today()
        self.t0 = time.monotonic()
        self._producer: AIOKafkaProducer | None = None
        self._encryption_key = Fernet.generate_key().decode()

    # --- names -------------------------------------------------------------------------------
    def topic(self, name: str) -> str:
        return self.settings.kafka.topic(name)

    def schema(self, service: str) -> str:
        return self.settings.schema_for(service)

    # --- set-up and tear-down ----------------------------------------------------------------
    async def __aenter__(self) -> Pipeline:
        await ensure_topics(self.settings.kafka, [*topic_specs(self.settings.kafka.topic_prefix, PARTITIONS),
                                                  TopicSpec(self.topic(CASEFLOW), PARTITIONS)])
        self._producer = AIOKafkaProducer(bootstrap_servers=self.infra.bootstrap, acks="all",
                                          enable_idempotence=True, linger_ms=5)
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(self._end(r) for rs in self.replicas.values() for r in rs))
        if self._producer is not None:
            await self._producer.stop()
        await self._drop()

    async def _end(self, replica: Replica) -> None:
        if not replica.running:
            return
        try:
            await replica.process.terminate()
        except TimeoutError:
            await replica.process.kill()

    async def _drop(self) -> None:
        """The test's topics and schemas go with it (the fault broker and database are shared by the session)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.infra.bootstrap)
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if t.startswith(self.settings.kafka.topic_prefix)]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()
        conn = await asyncpg.connect(self.infra.dsn)
        try:
            for service in SERVICES:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema(service)}" CASCADE')
        finally:
            await conn.close()

    # --- services ----------------------------------------------------------------------------
    def env(self, service: str, http_port: int) -> dict[str, str]:
        extra = {f"EHC_{service.upper()}__HTTP_PORT": str(http_port), "EHC_LOGGING__LEVEL": "INFO"}
        if service == "intake":
            extra.update(EHC_INTAKE__CASE_ID_KEY=CASE_ID_KEY,
                         EHC_INTAKE__SOURCE_TOPICS=json.dumps({"caseflow": self.topic(CASEFLOW)}),
                         EHC_INTAKE__WEBHOOK_SECRETS=json.dumps({WEBHOOK_SOURCE: WEBHOOK_SECRET}))
        elif service == "deadlines":
            extra.update(EHC_DEADLINES__TICK_SECONDS="0.5", EHC_DEADLINES__API_TOKENS=json.dumps({API_TOKEN: "admin"}))
        elif service == "notifier":
            extra.update(
                EHC_NOTIFIER__EMAIL_CHANNEL="notify", EHC_NOTIFIER__SMS_CHANNEL="notify",
                EHC_NOTIFIER__NOTIFY_BASE_URL=self.notify_url, EHC_NOTIFIER__NOTIFY_API_KEY=self.notify.api_key(),
                EHC_NOTIFIER__NOTIFY_TEMPLATES=json.dumps(notify_templates()),
                EHC_NOTIFIER__NOTIFY_CALLBACK_TOKEN=CALLBACK_TOKEN,
                EHC_NOTIFIER__ADMIN_TOKENS=json.dumps([ADMIN_TOKEN]),
                EHC_NOTIFIER__ENCRYPTION_KEY=self._encryption_key,
                EHC_NOTIFIER__COUNCIL_NAME="Fault Test Council", EHC_NOTIFIER__COUNCIL_PHONE="0300 123 4043",
                EHC_NOTIFIER__SENDIASS_CONTACT="Fault Test SENDIASS, 0300 123 4000",
                # texts at any hour of the run, and as many to one family as its case calls for
                EHC_NOTIFIER__QUIET_HOURS_START="00:00", EHC_NOTIFIER__QUIET_HOURS_END="00:00",
                EHC_NOTIFIER__TEXTS_PER_NUMBER_PER_HOUR="1000",
                # a decision text waits for the deadlines its notice starts (120 s by default): a
                # few seconds is enough here, where they follow within the same stream
                EHC_NOTIFIER__DECISION_HOLD_SECONDS=str(DECISION_HOLD_SECONDS),
                # a send cut off by a SIGKILL is swept (technical-failure, never sent twice) once its
                # lease has run out: seconds here, not the minute and a half of the defaults
                EHC_NOTIFIER__SENDER_LEASE_SECONDS=str(SENDER_LEASE_SECONDS),
                EHC_NOTIFIER__SENDER_SWEEP_SECONDS="1")
        return service_env(self.settings, **extra)

    async def start(self, service: str, replicas: int = 1, timeout: float = 180.0) -> float:
        """Start ``replicas`` more processes of ``service`` and wait until each is ready; the seconds it took."""
        t0 = time.monotonic()
        started = []
        for _ in range(replicas):
            port = free_port()
            index = len(self.replicas[service])
            log = self.log_dir / f"{self.name}-{service}-{index}.log"
            replica = Replica(service, ServiceProcess(service, self.env(service, port), log), port, log)
            self.replicas[service].append(replica)
            await replica.process.start()
            started.append(replica)
        await asyncio.gather(*(self.wait_ready(r, timeout) for r in started))
        return time.monotonic() - t0

    async def restart(self, replica: Replica, timeout: float = 180.0) -> float:
        t0 = time.monotonic()
        await replica.process.start()
        await self.wait_ready(replica, timeout)
        return time.monotonic() - t0

    async def start_all(self, replicas: int = 1) -> float:
        t0 = time.monotonic()
        await asyncio.gather(*(self.start(s, replicas) for s in SERVICES))
        return time.monotonic() - t0

    async def wait_ready(self, replica: Replica, timeout: float) -> None:
        """Until ``/readyz`` answers 200 (database and Kafka reachable, migrations done)."""
        end = time.monotonic() + timeout
        url = f"http://127.0.0.1:{replica.http_port}/readyz"
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if not replica.running:
                    raise AssertionError(f"{replica.service} exited while starting:\n{replica.log_tail()}")
                try:
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > end:
                    raise AssertionError(f"{replica.service} not ready within {timeout} s:\n{replica.log_tail()}")
                await asyncio.sleep(0.2)

    async def kill(self, service: str, index: int = 0) -> Replica:
        replica = self.replicas[service][index]
        await replica.process.kill()
        self.may_republish.add(service)
        return replica

    async def stop_kafka(self) -> None:
        """The broker stopped under every service (started again with ``infra.start_kafka``)."""
        self.may_republish.update(SERVICES)
        await self.infra.stop_kafka()

    async def stop(self, service: str, index: int = 0) -> Replica:
        replica = self.replicas[service][index]
        await replica.process.terminate()
        return replica

    def crashed(self) -> list[str]:
        """Replicas that exited by themselves (a killed or stopped one is not counted)."""
        return [f"{r.service}: exit {r.process.proc.returncode}\n{r.log_tail(1500)}"
                for rs in self.replicas.values() for r in rs
                if r.process.proc is not None and r.process.proc.returncode not in (None, -9, 0)]

    # --- input -------------------------------------------------------------------------------
    async def send(self, messages: Iterable[tuple[bytes, bytes]], topic: str = topics.INTAKE_CANONICAL
                   ) -> list[Any]:
        """Send and wait until the broker has every message; their record metadata (partition, offset)."""
        assert self._producer is not None
        futures = [await self._producer.send(self.topic(topic), value, key=key) for key, value in messages]
        self.sent[topic] += len(futures)
        return [await future for future in futures]

    async def send_poison(self, topic: str, records: dict[str, bytes]) -> None:
        sent = await self.send(((b"poison-case", value) for value in records.values()), topic)
        self.sent[topic] -= len(records)
        self.poison_sent[topic] += len(records)
        self.poison_at.setdefault(topic, []).extend((m.partition, m.offset) for m in sent)

    # --- observing ---------------------------------------------------------------------------
    async def count(self, service: str, table_and_condition: str) -> int:
        """Rows in a service's table; -1 until the service has created it (or while the database is away)."""
        try:
            conn = await asyncpg.connect(self.infra.dsn, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return -1
        try:
            return int(await conn.fetchval(f'SELECT count(*) FROM "{self.schema(service)}".{table_and_condition}'))
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
            return -1
        finally:
            await conn.close()

    async def fetch(self, service: str, query: str) -> list[Any]:
        conn = await asyncpg.connect(self.infra.dsn)
        try:
            return list(await conn.fetch(query.replace("{s}", f'"{self.schema(service)}"')))
        finally:
            await conn.close()

    async def texts_sent(self) -> int:
        return len(self._stub_texts())

    def _stub_texts(self) -> list[Any]:
        with self.notify._lock:
            return [n for n in self.notify.notifications.values() if n.type == "sms"]

    async def lags(self) -> dict[str, int]:
        """Messages not yet committed, per consumer group (summed over partitions)."""
        kafka = self.settings.kafka
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None)
        await admin.start()
        await consumer.start()
        try:
            ends: dict[str, dict[Any, int]] = {}
            for topic in {t for groups in GROUPS.values() for _, t in groups}:
                tps = await topic_partitions(kafka, kafka.topic(topic))
                ends[topic] = await consumer.end_offsets(tps) if tps else {}
            out = {}
            for groups in GROUPS.values():
                for group, topic in groups:
                    committed = await admin.list_consumer_group_offsets(kafka.group(group))
                    out[group] = sum(max(0, end - (committed[tp].offset if tp in committed else 0))
                                     for tp, end in ends[topic].items())
            return out
        finally:
            await consumer.stop()
            await admin.close()

    async def caught_up(self, events: int) -> list[str]:
        """What is still outstanding (empty: caught up): every one of ``events`` case events stored by
        the deadlines service, every outbox relayed, every due timer fired, every due notification
        sent and none left in ``sending``, every consumer group at the end of its topic."""
        # The consumer groups first: a group at the end of its topic has committed the effects of
        # everything it read (offsets follow the transaction), so the tables read after show them.
        # Read the other way round, a consumer committing between the two reads looked caught up
        # with the notifications its batch had just planned unseen.
        try:
            lags = await self.lags()
        except Exception as exc:  # the broker is away
            return [f"consumer lag unknown ({type(exc).__name__})"]
        behind = {g: n for g, n in lags.items() if n}
        if behind:
            return [f"consumer lag {behind}"]
        now = "now() - interval '2 seconds'"
        checks = [
            ("deadlines", "case_events", lambda n: n == events, f"case events stored (of {events})"),
            ("intake", "outbox WHERE published_at IS NULL", lambda n: n == 0, "intake outbox rows unrelayed"),
            ("deadlines", "outbox WHERE published_at IS NULL", lambda n: n == 0, "deadlines outbox rows unrelayed"),
            ("notifier", "outbox WHERE published_at IS NULL", lambda n: n == 0, "notifier outbox rows unrelayed"),
            ("deadlines", f"timers WHERE fired_at IS NULL AND fire_at < {now}", lambda n: n == 0, "timers due unfired"),
            ("notifier", f"notifications WHERE status IN {CLAIMABLE} AND next_attempt_at < {now}",
             lambda n: n == 0, "notifications due unsent"),
            # a decision text is held a few seconds for the deadlines its notice starts: not due yet,
            # but outstanding all the same
            ("notifier", "notifications WHERE status = 'pending' AND next_attempt_at < now() + interval "
             f"'{DECISION_HOLD_SECONDS + 1} seconds'", lambda n: n == 0, "notifications held or pending"),
            ("notifier", "notifications WHERE status = 'sending'", lambda n: n == 0, "notifications in 'sending'"),
        ]
        for service, table, ok, what in checks:
            n = await self.count(service, table)
            if not ok(n):
                return [f"{what}: {n}"]
        return []

    async def wait_caught_up(self, events: int, timeout: float) -> tuple[bool, float, list[str]]:
        """Poll :meth:`caught_up` until nothing is outstanding twice in a row or ``timeout`` s passed;
        never raises. Twice: a relay publishing between the lag read and the outbox read of one poll
        (its rows then marked, their consumer not yet at them) shows in the next."""
        t0 = time.monotonic()
        outstanding = ["not checked yet"]
        clean_since: float | None = None
        while time.monotonic() - t0 < timeout:
            outstanding = await self.caught_up(events)
            if not outstanding:
                if clean_since is not None:
                    return True, clean_since - t0, []
                clean_since = time.monotonic()
            else:
                clean_since = None
            if self.crashed():
                return False, time.monotonic() - t0, [*outstanding, *self.crashed()]
            await asyncio.sleep(0.5)
        return False, time.monotonic() - t0, outstanding

    async def recover(self, fault: str, restarted_at: float, events: int, timeout: float = 60.0,
                      **detail: Any) -> FaultRecord:
        """Wait until caught up and record the time from ``restarted_at`` (monotonic) to then."""
        ok, _, outstanding = await self.wait_caught_up(events, timeout)
        record = FaultRecord(fault, round(time.monotonic() - restarted_at, 1) if ok else None, ok, outstanding,
                             detail)
        self.faults.append(record)
        return record

    async def wait_for(self, what: str, check: Any, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > end:
                raise AssertionError(f"{self.name}: {what} did not happen within {timeout} s; "
                                     f"crashed: {self.crashed()}")
            await asyncio.sleep(0.2)

    # --- verdict -----------------------------------------------------------------------------
    async def read_all(self, topic: str) -> list[Any]:
        """Every record on a topic now (empty if it does not exist)."""
        kafka = self.settings.kafka
        tps = await topic_partitions(kafka, topic)
        if not tps:
            return []
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            await consumer.seek_to_beginning(*tps)
            records: list[Any] = []
            end = time.monotonic() + 60
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                if time.monotonic() > end:
                    raise AssertionError(f"could not read {topic} to its end")
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(recs)
            return records
        finally:
            await consumer.stop()

    async def verify(self, workload: Workload) -> Verdict:
        """The invariants, as figures and a list of problems (empty: all hold)."""
        problems: list[str] = []
        figures: dict[str, Any] = {"test": self.name, "cases": len(workload.cases)}

        # 1. intake: every message of the workload became a case event; the deadlines service stored every one
        on_topic: dict[str, Any] = {}
        case_records = []
        for record in await self.read_all(self.topic(topics.CASE_EVENTS)):
            try:
                event = parse_case_event(record.value or b"")
            except ValidationError:
                continue  # poison put there by the test
            on_topic[event.id] = event
            case_records.append((event.id, record))
        problems.extend(self._published_twice("case events", "intake", case_records, figures))
        sent_ids = workload.event_ids
        stored_ids = {r["event_id"] for r in await self.fetch("deadlines", "SELECT event_id FROM {s}.case_events")}
        figures.update(events_sent=len(sent_ids), events_published=len(on_topic), events_stored=len(stored_ids))
        if lost := sent_ids - set(on_topic):
            problems.append(f"{len(lost)} case events sent to intake never published, e.g. {sorted(lost)[:3]}")
        if unstored := set(on_topic) - stored_ids:
            problems.append(f"{len(unstored)} case events published but not stored, e.g. {sorted(unstored)[:3]}")

        # 2. every stored deadline is what the engine computes from the same events
        by_case: dict[str, list[Any]] = {}
        for event in on_topic.values():
            by_case.setdefault(event.subject, []).append(record_from_event(event))
        engine = DomainEngine(DeadlinesSettings())
        stored = {r["deadline_id"]: (r["due_on"], r["status"]) for r in
                  await self.fetch("deadlines", "SELECT deadline_id, due_on, status FROM {s}.deadlines")}
        mismatches = self._compare_with_engine(engine, by_case, stored)
        figures.update(deadlines_stored=len(stored), deadline_mismatches=len(mismatches))
        if mismatches:
            problems.append(f"{len(mismatches)} stored deadlines differ from the engine's, e.g. {mismatches[:3]}")

        # 3. deadline events: none published twice
        deadline_events = []
        deadline_records = []
        for record in await self.read_all(self.topic(topics.DEADLINE_EVENTS)):
            try:
                event = parse_deadline_event(record.value or b"")
            except ValidationError:
                continue
            deadline_events.append(event)
            deadline_records.append((event.id, record))
        figures["deadline_events"] = len(deadline_events)
        problems.extend(self._published_twice("deadline events", "deadlines", deadline_records, figures))

        # 4. every text a family must get, sent exactly once, to that family
        families = {c.case_id: c for c in workload.cases if c.consent}
        required = required_family_texts(deadline_events, families, self.settings.notifier)
        rows = {r["notification_id"]: r for r in await self.fetch(
            "notifier", "SELECT notification_id, case_id, deadline_id, kind, recipient_kind, status, last_error "
            "FROM {s}.notifications")}
        texts = [n for n in self._stub_texts() if n.reference in rows]
        sent = Counter((rows[n.reference]["case_id"], rows[n.reference]["deadline_id"], rows[n.reference]["kind"])
                       for n in texts if rows[n.reference]["recipient_kind"] == "family")
        miswired = [n.reference for n in texts if rows[n.reference]["recipient_kind"] == "family"
                    and _digits(n.to)[-10:] != _digits(workload.by_case()[rows[n.reference]["case_id"]].phone)[-10:]]
        same_text = Counter((n.to, n.body) for n in texts)
        # a send cut off by a SIGKILL is never sent again (the provider may have it: a family must
        # not be told twice); it is swept to technical-failure, visibly, and the caseworker is told
        interrupted = {(r["case_id"], r["deadline_id"], r["kind"]) for r in rows.values()
                       if r["recipient_kind"] == "family" and r["status"] == "technical-failure"
                       and r["last_error"] == INTERRUPTED}
        missing = sorted(required - set(sent) - interrupted)
        figures["texts_interrupted"] = len((required - set(sent)) & interrupted)
        planned = {(r["case_id"], r["deadline_id"], r["kind"]) for r in rows.values()
                   if r["recipient_kind"] == "family"}
        figures["texts_never_planned"] = sum(1 for m in missing if m not in planned)
        figures["family_contacts_stored"] = await self.count("notifier", "contacts")
        unexpected = sorted(set(sent) - required)
        duplicates = sum(n - 1 for n in sent.values() if n > 1) + sum(n - 1 for n in same_text.values() if n > 1)
        figures.update(texts_required=len(required), texts_sent=sum(sent.values()), texts_missing=len(missing),
                       texts_unexpected=len(unexpected), texts_duplicated=duplicates)
        if missing:
            problems.append(f"{len(missing)} of {len(required)} required family texts not sent "
                            f"({figures['texts_never_planned']} never planned; contacts of "
                            f"{figures['family_contacts_stored']} of {len(workload.cases)} cases stored), "
                            f"e.g. {missing[:3]}")
        if unexpected:
            problems.append(f"{len(unexpected)} family texts sent that no deadline event called for, "
                            f"e.g. {unexpected[:3]}")
        if duplicates:
            problems.append(f"{duplicates} family texts sent more than once: "
                            f"{[k for k, n in sent.items() if n > 1][:3]}")
        if miswired:
            problems.append(f"{len(miswired)} texts went to another family's number")

        # 5. nothing stuck: no notification left 'sending' or overdue, no consumer behind, nothing unrelayed
        statuses = Counter(r["status"] for r in rows.values())
        figures["notification_statuses"] = dict(statuses)
        figures["notification_errors"] = dict(Counter(str(r["last_error"])[:100] for r in rows.values()
                                                      if r["last_error"]).most_common(5))
        stuck = await self.count("notifier", "notifications WHERE status = 'sending' OR (status IN "
                                 f"{CLAIMABLE} AND next_attempt_at < now() - interval '5 seconds')")
        figures["notifications_stuck"] = stuck
        if stuck:
            problems.append(f"{stuck} notifications stuck ('sending', or due and unsent)")
        try:
            lags = await self.lags()
        except Exception as exc:
            lags = {"unknown": -1}
            problems.append(f"consumer lag unknown at the end ({type(exc).__name__})")
        figures["lag_end"] = lags
        if any(lags.values()):
            problems.append(f"consumer lag at the end: { {g: n for g, n in lags.items() if n} }")
        for service in SERVICES:
            if (n := await self.count(service, "outbox WHERE published_at IS NULL")) != 0:
                problems.append(f"{service}: {n} outbox rows never relayed")

        # 6. dead letters: each poison record parked by each service that must park it
        figures["poison_sent"] = dict(self.poison_sent)
        figures["dead_letters"] = {}
        for service in SERVICES:
            letters = await self.read_all(self.topic(dead_letter_topic(service)))
            figures["dead_letters"][dead_letter_topic(service)] = len(letters)
            parked = _positions(letters)
            for topic, positions in self.poison_at.items():
                if service not in PARKED_BY[topic]:
                    continue
                unparked = [at for at in positions if (self.topic(topic), *at) not in parked]
                if unparked:
                    problems.append(f"{service}: {len(unparked)} of {len(positions)} poison records on {topic} not "
                                    f"parked in {dead_letter_topic(service)}")

        problems.extend(f"crashed: {c}" for c in self.crashed())
        for record in self.faults:
            if not record.caught_up:
                problems.append(f"after {record.fault}: not caught up: {record.outstanding}")
        figures["faults"] = [vars(r) for r in self.faults]
        figures["duration_s"] = round(time.monotonic() - self.t0, 1)
        return Verdict(figures, problems)

    def _published_twice(self, what: str, producer: str, records: list[tuple[str, Any]],
                         figures: dict[str, Any]) -> list[str]:
        """Events on a topic more than once. Delivery is at-least-once, made effectively-once by
        consumers that de-duplicate by event id (DESIGN §5): a replica SIGKILLed between publishing
        its outbox batch and marking it published leaves the batch to be published again, by itself
        on restart or by the other replica at once; a batch of which the broker acknowledged only a
        part before it went away is published again as a whole. Such a copy, byte for byte, after
        one of these faults is allowed (and counted); any other repeat is a problem: a handler that
        made the same event twice, or a copy with no fault to explain it."""
        first: dict[str, bytes] = {}
        copies, differing = 0, []
        for event_id, record in records:
            if event_id not in first:
                first[event_id] = record.value
            elif record.value == first[event_id]:
                copies += 1
            else:
                differing.append((event_id, record.partition, record.offset))
        key = what.replace(" ", "_")
        figures[f"{key}_republished"] = copies
        figures[f"{key}_duplicates"] = copies + len(differing)
        problems = []
        if differing:
            problems.append(f"{len(differing)} {what} published twice with different contents, e.g. {differing[:3]}")
        if copies and producer not in self.may_republish:
            problems.append(f"{copies} {what} published twice, though neither a {producer} replica was killed "
                            "nor the broker restarted")
        return problems

    def _compare_with_engine(self, engine: DomainEngine, by_case: dict[str, list[Any]],
                             stored: dict[str, tuple[date, str]]) -> list[str]:
        """Stored (due_on, status) against the engine's for every case; a timer's reminder makes
        'due_soon' of 'open' (the same live state); a stored deadline the engine no longer makes
        must be cancelled. The run may cross midnight: either day's computation will do."""
        days = {self.started_on, london_today()}
        mismatches = []
        computed_ids: set[str] = set()
        live = {"open", "due_soon"}
        for records in by_case.values():
            per_day = [{d.deadline_id: (d.due_on, str(d.status)) for d in engine.compute(records, day)}
                       for day in days]
            for deadline_id in set().union(*per_day):
                computed_ids.add(deadline_id)
                have = stored.get(deadline_id)
                if have is None:
                    mismatches.append(f"{deadline_id}: not stored")
                    continue
                if not any(deadline_id in c and c[deadline_id][0] == have[0]
                           and (c[deadline_id][1] == have[1] or {c[deadline_id][1], have[1]} <= live)
                           for c in per_day):
                    mismatches.append(f"{deadline_id}: stored {have}, engine {[c.get(deadline_id) for c in per_day]}")
        for deadline_id, (_, status) in stored.items():
            if deadline_id not in computed_ids and status != "cancelled":
                mismatches.append(f"{deadline_id}: stored {status}, the engine makes no such deadline")
        return mismatches


def required_family_texts(deadline_events: Iterable[Any], families: dict[str, Any],
                          cfg: NotifierSettings) -> set[tuple[str, str, str]]:
    """(case, deadline, kind) of every text a consenting family must get for the deadline events
    that were published, by the notifier's own rules of who is told what, with its settings
    (``recipients.may_tell_family`` and ``plan_for_deadline_event``: milestones, a council duty
    missed, reminders of the family's own dates, a moved date) and of what is too late to tell
    (``policy.is_historical``, a moved date judged by when it was published): the fault tests check
    delivery, not that policy."""
    now = datetime.now(UTC)
    required = set()
    for event in deadline_events:
        d = event.data
        family = families.get(d.case_id)
        if (family is None or not may_tell_family(event, cfg.family_reminder_days)
                or is_historical(event.type, d, now, cfg.historical_after_days, event_time=event.time)):
            continue
        someone = Recipient("family", f"family-of-{d.case_id}", "sms", family.phone)
        for planned in plan_for_deadline_event(event, None, [someone], [], {}, cfg.caseworker_reminders,
                                               cfg.family_reminder_days):
            if planned.recipient is someone:
                required.add((d.case_id, d.deadline_id, planned.kind))
    return required


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _positions(letters: list[Any]) -> set[tuple[str, int, int]]:
    """(topic, partition, offset) of the original record of each dead letter: intake's rejected input
    and every service's parked records both name where the record was (``data.original_*``)."""
    found = set()
    for letter in letters:
        try:
            data = json.loads(letter.value or b"").get("data", {})
            found.add((data["original_topic"], int(data["original_partition"]), int(data["original_offset"])))
        except (ValueError, AttributeError, KeyError, TypeError):
            continue
    return found
