"""Nothing stranded (issue 9): the notifier, a real process (`ehc notifier serve`), is killed with
SIGKILL while a slow SMTP server (aiosmtpd) is taking its emails, and started again at once. Within
two minutes every notification is sent, or settled as technical-failure with the caseworker told
(an interrupted send is never sent again: a family must never be told twice)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet

from shared.settings import Settings
from tests.conftest import eventually, free_port
from tests.e2e.harness import ServiceProcess, service_env
from tests.notifier.conftest import CollectingHandler
from tests.notifier.e2e.conftest import CASEWORKER, PARENT_EMAIL, PARENT_NAME, publish
from tests.notifier.e2e.test_notifier_restart import _count
from tests.notifier.helpers import contacts_event, deadline_event

pytestmark = pytest.mark.infra

CASES = 30
SETTLED = ("sent", "delivered", "technical-failure")


class SlowHandler(CollectingHandler):
    """A mail relay that takes its time over each message."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.sleep(0.4)
        return await super().handle_DATA(server, session, envelope)


@asynccontextmanager
async def sending_slowly(isolated: Settings, producer: Any, tmp_path: Any) -> AsyncIterator[tuple[ServiceProcess,
                                                                                                 SlowHandler]]:
    """`ehc notifier serve` as a process, emailing through a slow SMTP server; yields once it is in
    the middle of sending a breach alert and a family email for each of CASES cases."""
    handler = SlowHandler()
    smtp_port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    env = service_env(isolated, EHC_NOTIFIER__HTTP_PORT=str(free_port()), EHC_NOTIFIER__SMTP_HOST="127.0.0.1",
                      EHC_NOTIFIER__SMTP_PORT=str(smtp_port), EHC_NOTIFIER__SMS_CHANNEL="file",
                      EHC_NOTIFIER__FILE_SINK_DIR=str(tmp_path / "sink"),
                      EHC_NOTIFIER__CASEWORKER_DIRECTORY=json.dumps({CASEWORKER[0]: CASEWORKER[1]}),
                      EHC_NOTIFIER__ENCRYPTION_KEY=Fernet.generate_key().decode(),
                      EHC_NOTIFIER__COUNCIL_PHONE="0300 123 4043", EHC_LOGGING__LEVEL="INFO",
                      EHC_NOTIFIER__SENDER_LEASE_SECONDS="20", EHC_NOTIFIER__SENDER_SWEEP_SECONDS="5")
    service = ServiceProcess("notifier", env, tmp_path / "notifier.log")
    schema = isolated.schema_for("notifier")
    cases = [f"case-{i}" for i in range(CASES)]
    try:
        await service.start()
        await publish(producer, isolated, *(contacts_event(c, {
            "role": "parent", "name": PARENT_NAME, "email": PARENT_EMAIL.replace("@", f"+{c}@"), "channel": "email",
            "consent": True}) for c in cases))
        await eventually(lambda: _is(_count(schema, "contacts"), CASES), 60, "the contacts stored")
        # per case: the caseworker's breach alert and the family's "deadline missed" (today: news)
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        await publish(producer, isolated, *(deadline_event("deadline.breached", c, "plan.final",
                                                           due_on=yesterday) for c in cases))

        async def mid_batch() -> bool:
            return (await _count(schema, "notifications WHERE status = 'sent'") >= 3
                    and await _count(schema, "notifications WHERE status = 'sending'") >= 1)

        await eventually(mid_batch, 60, "sends in flight")
        yield service, handler
    finally:
        await service.terminate()
        controller.stop()


async def test_a_notifier_stopped_mid_send_finishes_its_sends_first(isolated: Settings, producer, tmp_path) -> None:
    schema = isolated.schema_for("notifier")
    async with sending_slowly(isolated, producer, tmp_path) as (service, handler):
        await service.terminate()  # SIGTERM: a graceful stop
        assert await _count(schema, "notifications WHERE status = 'sending'") == 0
        assert await _count(schema, "notifications WHERE status = 'technical-failure'") == 0
        sent = await _count(schema, "notifications WHERE status = 'sent'")
    ids = Counter(str(message_from_bytes(m.content)["X-EHC-Notification-Id"]) for m in handler.messages)
    assert len(ids) == sent and set(ids.values()) == {1}  # every email that went is recorded as sent


async def test_a_notifier_killed_mid_send_settles_every_notification_within_two_minutes(
    isolated: Settings, producer, tmp_path,
) -> None:
    schema = isolated.schema_for("notifier")
    async with sending_slowly(isolated, producer, tmp_path) as (service, handler):
        await service.kill()
        interrupted = await _count(schema, "notifications WHERE status = 'sending'")
        assert interrupted >= 1

        restarted = time.monotonic()
        await service.start()

        async def settled() -> bool:
            unsettled = await _count(schema, "notifications WHERE status NOT IN ('sent', 'delivered', "
                                     "'technical-failure')")
            # every email settled as interrupted (to a family or the caseworker) has its alert to
            # the caseworker, sent
            untold = await _count(schema, "notifications f WHERE f.status = 'technical-failure' "
                                  "AND f.kind <> 'caseworker_delivery_failed' AND NOT EXISTS (SELECT 1 FROM "
                                  f'"{schema}".notifications a WHERE a.kind = \'caseworker_delivery_failed\' '
                                  "AND a.idempotency_key LIKE f.notification_id || '|%' AND a.status = 'sent')")
            planned = await _count(schema, "notifications WHERE kind IN ('breach_alert', 'family_missed')")
            return planned == 2 * CASES and unsettled == 0 and untold == 0

        await eventually(settled, 120, "every notification sent, or settled with the caseworker told")
        took = time.monotonic() - restarted
    assert took < 120
    failed = await _count(schema, "notifications WHERE status = 'technical-failure'")
    assert failed >= 1  # the sends in flight at the kill: never sent again
    ids = Counter(str(message_from_bytes(m.content)["Message-ID"]) for m in handler.messages)
    assert [i for i, n in ids.items() if n > 1] == []  # nothing twice
    print(f"interrupted at the kill: {interrupted}; settled as technical-failure: {failed}; "
          f"settled {took:.0f} s after the restart")


async def _is(value: Any, expected: int) -> bool:
    return await value == expected
