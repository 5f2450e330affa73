"""Issue 9: a case's history loaded long after the fact texts nobody; each would-be message is a
``historical`` notification (visible, audited), and news that is still news goes as before."""

from __future__ import annotations

from datetime import date

import pytest

from tests.notifier.helpers import (
    FakeClock,
    contacts_event,
    deadline_event,
    history_of_a_2025_case,
    london,
    notification_rows,
)

pytestmark = pytest.mark.infra

CASE = "case-2025"
PARENT = {"role": "parent", "name": "Alex Morgan", "phone": "07700 900111", "channel": "sms", "consent": True}


async def test_a_backfilled_case_texts_nobody_and_records_each_message_as_historical(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 11, 18, 10, 0)))
    await built.service.handle_contacts([(CASE, contacts_event(CASE, PARENT))])
    await built.service.handle_deadline_events(history_of_a_2025_case(CASE))

    family = await notification_rows(built.sessions, recipient_kind="family")
    assert family, "each would-be text is recorded"
    assert {r.status for r in family} == {"historical"}
    assert {r.status for r in await notification_rows(built.sessions)} == {"historical"}  # the alerts too

    assert await built.service.send_due() == 0
    assert built.sms.sent == [] and built.email.sent == []
    audit = await built.audit()
    assert {e["status"] for e in audit if e["recipient_kind"] == "family"} == {"pending", "historical"}
    assert all(e["error"] for e in audit if e["status"] == "historical")  # says why


async def test_news_of_yesterday_is_still_sent(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 11, 18, 10, 0)))
    await built.service.handle_contacts([(CASE, contacts_event(CASE, PARENT))])
    await built.service.handle_deadline_events([
        deadline_event("deadline.opened", CASE, "assessment.decision", due_on=date(2026, 12, 30),
                       trigger_date=date(2026, 11, 17))])
    [row] = await notification_rows(built.sessions, recipient_kind="family")
    assert row.status == "pending"
    assert await built.service.send_due() == 1
    assert len(built.sms.sent) == 1
