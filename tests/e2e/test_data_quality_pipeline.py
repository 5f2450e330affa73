"""Issue 11 item 5 through real infrastructure: a review decision dated before its meeting goes in
through intake's Kafka topic; the deadlines service stores the warning and publishes
``case.data_quality``; the notifier keeps it (nothing parked) and the caseworker's daily digest,
sent through a real SMTP server (aiosmtpd), lists it under "Data to check"."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from services.deadlines.bootstrap import bootstrap as deadlines_bootstrap
from services.intake.bootstrap import bootstrap as intake_bootstrap
from services.notifier.adapters import tables as notifier_tables
from services.notifier.bootstrap import bootstrap as notifier_bootstrap
from shared import topics
from shared.settings import Settings
from tests.conftest import Mailbox, body_text, eventually
from tests.e2e.harness import case_event, running
from tests.e2e.test_walking_skeleton import CASEWORKER, EveryDayWorks, with_mail

pytestmark = pytest.mark.infra


async def test_the_caseworker_digest_lists_data_that_cannot_be_true(isolated: Settings, smtp_server: Mailbox,
                                                                   producer) -> None:
    settings = with_mail(isolated, smtp_server)
    today = date.today()
    meeting, decision = today - timedelta(days=10), today - timedelta(days=20)
    notifier = notifier_bootstrap(settings, calendar=EveryDayWorks())
    async with running(intake_bootstrap(settings), deadlines_bootstrap(settings), notifier):
        source = settings.kafka.topic(topics.INTAKE_CANONICAL)
        for raw in (case_event("q-assign", "case-q", "ehc.case.assigned", today - timedelta(days=300),
                               caseworker_id=CASEWORKER[0], team_id="team-n"),
                    case_event("q-plan", "case-q", "ehc.plan.issued", today - timedelta(days=300), plan_id="p-1"),
                    case_event("q-meeting", "case-q", "ehc.review.meeting_held", meeting),
                    case_event("q-decision", "case-q", "ehc.review.decision_issued", decision, outcome="maintain")):
            await producer.send_and_wait(source, raw, key=b"case-q")

        async def kept() -> bool:
            q = notifier_tables.case_data_quality
            async with notifier.sessions() as session:
                return await session.scalar(select(q.c.warning_count).where(q.c.case_id == "case-q")) == 1

        await eventually(kept, 60, "the notifier keeps the case's data-quality warning")
        assert await notifier.service.digests.caseworker_digests(today, datetime.now(UTC)) == 1

        def digests() -> list:  # type: ignore[type-arg]
            return [m for m in smtp_server.to(CASEWORKER[1]) if "Your EHC deadlines" in str(m["Subject"])]

        async def emailed() -> bool:
            return bool(digests())

        await eventually(emailed, 30, "the caseworker's digest")
        assert await notifier.dead_letters.held_case_count() == 0  # type: ignore[union-attr]

    [mail] = digests()
    assert "1 case with data to check" in " ".join(str(mail["Subject"]).split())
    text = body_text(mail)
    assert "Data to check (1 case):" in text
    line = next(line for line in text.splitlines() if line.startswith("- Case case-q: the review decision"))
    assert f"({decision.isoformat()} before {meeting.isoformat()})" in line
