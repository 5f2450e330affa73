"""Issue 2's walking skeleton through real infrastructure: a request for an EHC needs assessment
goes in through intake's Kafka topic, the deadlines service opens `assessment.decision` (request
date + 6 weeks, Regs 5(1)) and the notifier emails the assigned caseworker through a real SMTP
server (aiosmtpd).

Since issue 6 a caseworker is not sent one email per new deadline: new deadlines and reminders go
into one daily digest (08:00 on working days; breach alerts still go at once). The test triggers
the digest job directly, with a calendar of its own, instead of waiting for 08:00."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from services.deadlines.bootstrap import bootstrap as deadlines_bootstrap
from services.intake.bootstrap import bootstrap as intake_bootstrap
from services.notifier.adapters import tables as notifier_tables
from services.notifier.bootstrap import bootstrap as notifier_bootstrap
from services.notifier.domain.messages import format_date
from shared import topics
from shared.settings import Settings
from tests.conftest import Mailbox, body_text, eventually, read_topic
from tests.e2e.harness import case_event, running

pytestmark = pytest.mark.infra
CASEWORKER = ("cw-101", "cw101@council.example")


class EveryDayWorks:
    def is_working_day(self, day: date) -> bool:
        return True


def with_mail(settings: Settings, mailbox: Mailbox) -> Settings:
    return settings.model_copy(update={"notifier": settings.notifier.model_copy(update={
        "smtp_host": mailbox.host, "smtp_port": mailbox.port, "email_channel": "smtp", "sms_channel": "file",
        "caseworker_directory": {CASEWORKER[0]: CASEWORKER[1]}})})


async def test_request_reaches_the_caseworker_by_email(isolated: Settings, smtp_server: Mailbox, producer) -> None:
    settings = with_mail(isolated, smtp_server)
    requested = date.today() - timedelta(days=3)
    due = requested + timedelta(weeks=6)
    notifier = notifier_bootstrap(settings, calendar=EveryDayWorks())
    async with running(intake_bootstrap(settings), deadlines_bootstrap(settings), notifier):
        source = settings.kafka.topic(topics.INTAKE_CANONICAL)
        await producer.send_and_wait(source, case_event("e-assign", "case-101", "ehc.case.assigned", requested,
                                                        caseworker_id=CASEWORKER[0], team_id="team-n"), key=b"case-101")
        await producer.send_and_wait(source, case_event("e-request", "case-101", "ehc.request.received", requested,
                                                        route="request", requested_by="parent"), key=b"case-101")

        async def projected() -> bool:  # the notifier has the three deadlines the request started
            async with notifier.sessions() as session:
                v = notifier_tables.deadline_view
                return await session.scalar(select(func.count()).select_from(v).where(v.c.case_id == "case-101")) == 3

        await eventually(projected, 60, "the notifier's view of the three deadlines")
        assert smtp_server.to(CASEWORKER[1]) == []  # no flood: nothing until the digest
        planned = await notifier.service.digests.caseworker_digests(date.today(), datetime.now(UTC))
        assert planned == 1

        async def emailed() -> bool:
            return bool(smtp_server.to(CASEWORKER[1]))

        await eventually(emailed, 30, "the caseworker's digest")

    # One digest listing every council deadline the request started (Regs 5(1), 10(1), 13(2)).
    [mail] = smtp_server.to(CASEWORKER[1])
    text = body_text(mail)
    assert "3 new" in mail["Subject"]
    assert text.count("case-101") >= 3
    decision = next(line for line in text.splitlines() if "Regs 5(1)" in line)
    assert "case-101" in decision and format_date(due) in decision

    records = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.DEADLINE_EVENTS),
                               lambda rs: any(b"assessment.decision" in r.value for r in rs))
    opened = [json.loads(r.value) for r in records if b'"deadline.opened"' in r.value]
    decision_event = next(e for e in opened if e["data"]["rule_id"] == "assessment.decision")
    assert decision_event["data"]["due_on"] == due.isoformat()
    assert decision_event["data"]["trigger_event_id"] == "e-request"
    assert decision_event["data"]["caseworker_id"] == CASEWORKER[0]
    assert all(r.key == b"case-101" for r in records)
