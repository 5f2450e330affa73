"""Issue 11 item 2 with real PostgreSQL: a moved deadline is one message to the family and one to the
caseworker; the same change delivered again, or published again by a rebuild, plans nothing more."""

from __future__ import annotations

from datetime import date

import pytest

from tests.notifier.helpers import FakeClock, contacts_event, deadline_event, london, notification_rows
from tests.notifier.integration.conftest import CASEWORKER

pytestmark = pytest.mark.infra

CASE = "case-moved"
PARENT = {"role": "parent", "name": "Alex Morgan", "phone": "07700 900111", "channel": "sms", "consent": True}


def moved(due_on: date, previous_due_on: date, reason: str = "calendar") -> object:
    return deadline_event("deadline.changed", CASE, "assessment.decision", due_on=due_on,
                          previous_due_on=previous_due_on, previous_status="open", change_reason=reason,
                          change_detail="the working-day calendar changed", trigger_date=date(2026, 11, 2))


async def test_a_moved_date_is_one_text_and_one_email_and_a_redelivery_plans_nothing(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 11, 18, 10, 0)))  # digest mode (the default)
    await built.service.handle_contacts([(CASE, contacts_event(CASE, PARENT))])
    event = moved(date(2026, 12, 30), date(2026, 12, 29))
    assert await built.service.handle_deadline_events([event]) == 2

    rows = await notification_rows(built.sessions)
    assert sorted((r.recipient_kind, r.template, r.status) for r in rows) == [
        ("caseworker", "caseworker_date_changed", "pending"), ("family", "family_date_changed", "pending")]
    assert {r.kind for r in rows} == {"date_changed:2026-12-30"}

    # the same event again, and the same change published again by a rebuild (a new event id)
    assert await built.service.handle_deadline_events([event]) == 0
    assert await built.service.handle_deadline_events([moved(date(2026, 12, 30), date(2026, 12, 29))]) == 0
    assert len(await notification_rows(built.sessions)) == 2

    while await built.service.send_due():
        pass
    [text] = built.sms.sent
    # the text: the new date and the short link to the timeline (issue 10); the old date and why are in
    # the family's email and on the timeline
    assert text.body.startswith("New date:") and "by 30 December 2026. http://127.0.0.1:8004/f/" in text.body
    [email] = built.email.to(CASEWORKER[1])
    assert email.subject.startswith("Date changed:")


async def test_no_text_about_a_date_that_has_gone_nor_when_time_merely_passed(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 11, 18, 10, 0)))
    await built.service.handle_contacts([(CASE, contacts_event(CASE, PARENT))])
    await built.service.handle_deadline_events([moved(date(2026, 11, 17), date(2026, 11, 16), "events")])
    assert {r.status for r in await notification_rows(built.sessions)} == {"historical"}
    time_passed = deadline_event("deadline.changed", CASE, "plan.final", due_on=date(2027, 3, 1),
                                 previous_due_on=date(2027, 2, 1), change_reason="time")
    assert await built.service.handle_deadline_events([time_passed]) == 0
    assert built.sms.sent == [] and await built.service.send_due() == 0
