"""A restarted notifier and redelivered deadline events send nothing twice (issue 6 acceptance).

The notifier runs as a real process (`ehc notifier serve`), is killed with SIGKILL, the same
deadline events are delivered again (and one breach again under a new event id), new ones are
added, and it is started again: every person gets each message exactly once. Its log file holds
no personal data."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from email.message import Message

import asyncpg
import pytest
from cryptography.fernet import Fernet

from shared.local_infra import postgres as pg_infra
from shared.settings import Settings
from tests.conftest import Mailbox, eventually, free_port
from tests.e2e.harness import ServiceProcess, service_env
from tests.notifier.e2e.conftest import CASEWORKER, PARENT_EMAIL, PARENT_NAME, personal_data_in, publish
from tests.notifier.helpers import contacts_event, deadline_event

pytestmark = pytest.mark.infra


def notification_id(message: Message) -> str:
    return str(message["X-EHC-Notification-Id"])


async def test_a_restarted_notifier_and_redelivered_events_send_nothing_twice(
    isolated: Settings, smtp_server: Mailbox, producer, tmp_path,
) -> None:
    env = service_env(isolated, EHC_NOTIFIER__HTTP_PORT=str(free_port()), EHC_NOTIFIER__SMTP_HOST=smtp_server.host,
                      EHC_NOTIFIER__SMTP_PORT=str(smtp_server.port), EHC_NOTIFIER__SMS_CHANNEL="file",
                      EHC_NOTIFIER__FILE_SINK_DIR=str(tmp_path / "sink"),
                      EHC_NOTIFIER__CASEWORKER_DIRECTORY=json.dumps({CASEWORKER[0]: CASEWORKER[1]}),
                      EHC_NOTIFIER__ENCRYPTION_KEY=Fernet.generate_key().decode(),
                      EHC_NOTIFIER__COUNCIL_PHONE="0300 123 4043", EHC_LOGGING__LEVEL="INFO")
    log_path = tmp_path / "notifier.log"
    service = ServiceProcess("notifier", env, log_path)
    schema = isolated.schema_for("notifier")
    due = date.today() - timedelta(days=1)  # the real clock: a breach of last night (older ones are historical)

    def family(case_id: str) -> object:
        return contacts_event(case_id, {"name": PARENT_NAME, "email": PARENT_EMAIL.replace("@", f"+{case_id}@"),
                                        "channel": "email", "consent": True})

    first = [e for i in range(3) for e in (
        deadline_event("deadline.opened", f"case-{i}", due_on=due + timedelta(days=40), event_id=f"open-{i}"),
        deadline_event("deadline.breached", f"case-{i}", "plan.final", due_on=due, event_id=f"breach-{i}"))]
    later = [deadline_event("deadline.breached", f"case-{i}", "plan.final", due_on=due, event_id=f"breach-{i}")
             for i in (3, 4)]
    breach_again = deadline_event("deadline.breached", "case-0", "plan.final", due_on=due, event_id="breach-0-bis")

    async def settled(emails: int, processed: int) -> bool:
        return (len(smtp_server.messages) >= emails
                and await _count(schema, "processed_events") >= processed
                and await _count(schema, "outbox WHERE published_at IS NULL") == 0
                and await _count(schema, "notifications WHERE status NOT IN ('sent', 'delivered')") == 0)

    async def contacts_stored() -> bool:
        return await _count(schema, "contacts") == 5

    await service.start()
    try:
        await publish(producer, isolated, *(family(f"case-{i}") for i in range(5)))
        await eventually(contacts_stored, 60, "the contacts stored")
        await publish(producer, isolated, *first)
        # per case: the caseworker's breach alert, the family's "request received" and "deadline missed"
        await eventually(lambda: settled(9, 6), 60, "the first nine emails sent and recorded")
        await service.kill()

        await publish(producer, isolated, *first, *later, breach_again)  # redelivered, new, and a repeat
        await service.start()
        await eventually(lambda: settled(13, 9), 60, "the new breaches' emails sent")
    finally:
        await service.terminate()

    # a start after 08:00 on a working day may also plan today's caseworker digest (at most one)
    digests = [m for m in smtp_server.messages if str(m["Subject"]).startswith("Your EHC deadlines")]
    messages = [m for m in smtp_server.messages if m not in digests]
    assert len(digests) <= 1
    ids = [notification_id(m) for m in messages]
    assert len(ids) == len(set(ids)) == 13
    to_caseworker = [m for m in smtp_server.to(CASEWORKER[1]) if m in messages]
    assert sorted(" ".join(str(m["Subject"]).split()).rsplit(" ", 1)[-1] for m in to_caseworker) == [
        f"case-{i}" for i in range(5)]
    per_family = Counter(str(m["To"]) for m in messages if m not in to_caseworker)
    assert sorted(per_family.values()) == [1, 1, 2, 2, 2]  # cases 0-2: request received and missed; 3-4: missed
    logs = log_path.read_text()
    assert "notifier.attempt" in logs
    assert personal_data_in(logs) == []


async def _count(schema: str, table_and_condition: str) -> int:
    """Rows in the notifier's schema; -1 until the service has created its tables."""
    conn = await asyncpg.connect(pg_infra.dsn())
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".{table_and_condition}'))
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return -1
    finally:
        await conn.close()
