"""Replicas (issue 12): two `ehc notifier serve` processes sharing one database and one consumer
group. Deadline events of many cases, several per case, each an email to the case's caseworker,
reach a real SMTP server (aiosmtpd): every notification arrives exactly once, both processes send,
and each case's emails arrive in the order of its events."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet

from shared import topics
from shared.local_infra import postgres as pg_infra
from shared.settings import Settings
from tests.conftest import eventually, free_port
from tests.e2e.harness import ServiceProcess, service_env
from tests.notifier.conftest import CollectingHandler
from tests.notifier.e2e.conftest import CASEWORKER, publish
from tests.notifier.e2e.test_notifier_restart import _count
from tests.notifier.helpers import deadline_event

pytestmark = pytest.mark.infra

CASES = 24
TODAY = datetime.now(UTC).date()
#: per case, in this order: (event, rule, due date, extra data); each one email to the caseworker
SCRIPT = (("deadline.opened", "assessment.decision", TODAY + timedelta(days=40), {}),
          ("deadline.due_soon", "assessment.decision", TODAY + timedelta(days=40), {"reminder_offset_days": 10}),
          ("deadline.opened", "plan.final", TODAY + timedelta(days=90), {}),
          ("deadline.due_soon", "assessment.decision", TODAY + timedelta(days=40), {"reminder_offset_days": 5}),
          ("deadline.breached", "assessment.advice", TODAY - timedelta(days=1), {}))
KINDS = ("caseworker_new_deadline", "caseworker_reminder_10", "caseworker_new_deadline", "caseworker_reminder_5",
         "breach_alert")


async def test_two_notifier_processes_send_each_email_once_both_send_and_keep_each_cases_order(
        isolated: Settings, producer: Any, tmp_path: Any) -> None:
    handler = CollectingHandler()
    smtp_port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    key = Fernet.generate_key().decode()
    ports = [free_port(), free_port()]
    replicas = [ServiceProcess("notifier", service_env(
        isolated, EHC_NOTIFIER__HTTP_PORT=str(port), EHC_NOTIFIER__SMTP_HOST="127.0.0.1",
        EHC_NOTIFIER__SMTP_PORT=str(smtp_port), EHC_NOTIFIER__SMS_CHANNEL="file",
        EHC_NOTIFIER__FILE_SINK_DIR=str(tmp_path / "sink"), EHC_NOTIFIER__ENCRYPTION_KEY=key,
        EHC_NOTIFIER__CASEWORKER_DIRECTORY=json.dumps({CASEWORKER[0]: CASEWORKER[1]}),
        EHC_NOTIFIER__CASEWORKER_REMINDERS="immediate", EHC_NOTIFIER__COUNCIL_PHONE="0300 123 4043",
        EHC_LOGGING__LEVEL="WARNING"), tmp_path / f"notifier-{i}.log") for i, port in enumerate(ports)]
    schema = isolated.schema_for("notifier")
    try:
        for replica in replicas:
            await replica.start()
        await eventually(lambda: _members_with_partitions(isolated, 2), 120, "both replicas in the consumer group")
        # each replica's HTTP server comes up after its consumers: without this wait the emails could all
        # be sent before a replica's /metrics answers (CI saw a connection refused there)
        await eventually(lambda: _all_answer(ports), 60, "both replicas' HTTP servers answering")
        await publish(producer, isolated, *(
            deadline_event(type_, f"case-{c}", rule, due_on=due, event_id=f"case-{c}-{step}", **data)
            for step, (type_, rule, due, data) in enumerate(SCRIPT) for c in range(CASES)))
        total = CASES * len(SCRIPT)
        await eventually(lambda: _is(_count(schema, "notifications WHERE status = 'sent'"), total), 120,
                         "every email sent")
        sent_by = [await _sent_by(port) for port in ports]
    finally:
        for replica in replicas:
            await replica.terminate()
        controller.stop()

    ids = [str(message_from_bytes(m.content)["X-EHC-Notification-Id"]) for m in handler.messages]
    assert len(ids) == total and set(Counter(ids).values()) == {1}  # every email once
    assert all(n > 0 for n in sent_by) and sum(sent_by) == total, sent_by  # both replicas send
    rows = await _rows(schema)
    arrived: dict[str, list[int]] = {}
    for nid in ids:
        case_id, kind, deadline_id = rows[nid]
        step = next(s for s, (_, rule, _, _) in enumerate(SCRIPT) if KINDS[s] == kind and f":{rule}:" in deadline_id)
        arrived.setdefault(case_id, []).append(step)
    assert arrived == {f"case-{c}": list(range(len(SCRIPT))) for c in range(CASES)}


async def _members_with_partitions(settings: Settings, wanted: int) -> bool:
    """The notifier's deadline-events group is stable with ``wanted`` members, each holding partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([settings.kafka.group("ehc-notifier")])
    finally:
        await admin.close()
    _error, _group, state, _ptype, _protocol, members, *_ = response.groups[0]
    topic = settings.kafka.topic(topics.DEADLINE_EVENTS)
    held = [[tp for tp in ConsumerProtocolMemberAssignment.decode(assignment).partitions() if tp.topic == topic]
            if assignment else [] for *_, assignment in members]
    return state == "Stable" and len(held) == wanted and all(held)


async def _all_answer(ports: list[int]) -> bool:
    async with httpx.AsyncClient(timeout=5) as client:
        for port in ports:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code != 200:
                    return False
            except httpx.TransportError:
                return False
    return True


async def _sent_by(port: int) -> int:
    """Emails this replica sent, from its /metrics."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    return sum(int(float(line.rpartition(" ")[2])) for line in text.splitlines()
               if line.startswith('ehc_notifier_send_attempts_total{outcome="sent"}'))


async def _rows(schema: str) -> dict[str, tuple[str, str, str]]:
    conn = await asyncpg.connect(pg_infra.dsn())
    try:
        found = await conn.fetch(f'SELECT notification_id, case_id, kind, deadline_id FROM "{schema}".notifications')
    finally:
        await conn.close()
    return {r["notification_id"]: (r["case_id"], r["kind"], r["deadline_id"]) for r in found}


async def _is(value: Any, expected: int) -> bool:
    return await value == expected
