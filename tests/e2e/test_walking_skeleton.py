"""Issue 2's walking skeleton through real infrastructure: a request for an EHC needs assessment
goes in through intake's Kafka topic, the deadlines service opens `assessment.decision` (request
date + 6 weeks, Regs 5(1)) and the notifier emails the assigned caseworker through a real SMTP
server (aiosmtpd)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from services.deadlines.bootstrap import bootstrap as deadlines_bootstrap
from services.intake.bootstrap import bootstrap as intake_bootstrap
from services.notifier.bootstrap import bootstrap as notifier_bootstrap
from services.notifier.domain.messages import format_date
from shared import topics
from shared.settings import Settings
from tests.conftest import Mailbox, body_text, eventually, read_topic
from tests.e2e.harness import case_event, running

pytestmark = pytest.mark.infra
CASEWORKER = ("cw-101", "cw101@council.example")


async def _settled(mailbox: Mailbox) -> bool:
    return len(mailbox.to(CASEWORKER[1])) >= 3


def with_mail(settings: Settings, mailbox: Mailbox) -> Settings:
    return settings.model_copy(update={"notifier": settings.notifier.model_copy(update={
        "smtp_host": mailbox.host, "smtp_port": mailbox.port, "email_channel": "smtp", "sms_channel": "file",
        "caseworker_directory": {CASEWORKER[0]: CASEWORKER[1]}})})


async def test_request_reaches_the_caseworker_by_email(isolated: Settings, smtp_server: Mailbox, producer) -> None:
    settings = with_mail(isolated, smtp_server)
    requested = date.today() - timedelta(days=3)
    due = requested + timedelta(weeks=6)
    async with running(intake_bootstrap(settings), deadlines_bootstrap(settings), notifier_bootstrap(settings)):
        source = settings.kafka.topic(topics.INTAKE_CANONICAL)
        await producer.send_and_wait(source, case_event("e-assign", "case-101", "ehc.case.assigned", requested,
                                                        caseworker_id=CASEWORKER[0], team_id="team-n"), key=b"case-101")
        await producer.send_and_wait(source, case_event("e-request", "case-101", "ehc.request.received", requested,
                                                        route="request", requested_by="parent"), key=b"case-101")

        async def emailed() -> bool:
            return bool(smtp_server.to(CASEWORKER[1]))

        await eventually(emailed, 60, "the caseworker's email")
        await eventually(lambda: _settled(smtp_server), 10, "all three deadline emails")

    # One email per council deadline the request started (Regs 5(1), 10(1), 13(2)); this test
    # follows assessment.decision.
    mail = smtp_server.to(CASEWORKER[1])
    about_decision = [m for m in mail if "Regs 5(1)" in body_text(m)]
    assert len(about_decision) == 1
    text = body_text(about_decision[0])
    assert "case-101" in about_decision[0]["Subject"]
    assert format_date(due) in about_decision[0]["Subject"] + text

    records = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.DEADLINE_EVENTS),
                               lambda rs: any(b"assessment.decision" in r.value for r in rs))
    opened = [json.loads(r.value) for r in records if b'"deadline.opened"' in r.value]
    decision = next(e for e in opened if e["data"]["rule_id"] == "assessment.decision")
    assert decision["data"]["due_on"] == due.isoformat()
    assert decision["data"]["trigger_event_id"] == "e-request"
    assert decision["data"]["caseworker_id"] == CASEWORKER[0]
    assert all(r.key == b"case-101" for r in records)
