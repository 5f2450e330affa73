"""Nothing lost: a family milestone is planned whichever reaches the notifier first, the deadline
event or the family's contacts (or their consent), and only while it is still current; and a kind
as long as the contract allows is stored (PostgreSQL refused it: the whole batch failed for ever)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.notifier.helpers import contacts_event, deadline_event, notification_rows
from tests.notifier.integration.conftest import CASEWORKER

pytestmark = pytest.mark.infra

DUE = date(2026, 4, 21)
PARENT_E164 = "+447700900111"


def parent(**changes: object) -> dict[str, object]:
    contact: dict[str, object] = {"role": "parent", "name": "Alex Morgan", "phone": "07700 900111", "channel": "sms",
                                  "consent": True}
    contact.update(changes)
    return contact


async def family_kinds(built, case_id: str) -> list[str]:
    return sorted(r.kind for r in await notification_rows(built.sessions, recipient_kind="family", case_id=case_id))


async def test_contacts_after_the_request_still_get_the_request_received_text_once(make_notifier) -> None:
    built = await make_notifier()
    opened = deadline_event("deadline.opened", "case-1", due_on=DUE, time=built.clock())
    assert await built.service.handle_deadline_events([opened]) == 0  # nobody to tell yet
    assert await built.service.handle_contacts([("case-1", contacts_event("case-1", parent()))]) == 1
    # the contacts again (an update), and the event again: nothing more
    assert await built.service.handle_contacts([("case-1", contacts_event("case-1", parent()))]) == 0
    assert await built.service.handle_deadline_events([opened]) == 0
    while await built.service.send_due():
        pass
    [text] = built.sms.sent
    assert (text.to, text.template) == (PARENT_E164, "family_request_received")
    assert "21 April 2026" in text.body or "21 April 2026" in str(text.personalisation)


async def test_consent_given_later_gets_the_milestones_still_current(make_notifier) -> None:
    built = await make_notifier()
    now = built.clock()
    await built.service.handle_contacts([("case-2", contacts_event("case-2", parent(consent=False)))])
    await built.service.handle_deadline_events([
        deadline_event("deadline.opened", "case-2", due_on=DUE, time=now - timedelta(hours=2)),
        deadline_event("deadline.met", "case-2", due_on=DUE, completed_on=date(2026, 3, 10), time=now),
        deadline_event("deadline.opened", "case-2", "draft.representations", due_on=date(2026, 3, 25), time=now),
        deadline_event("deadline.breached", "case-2", "plan.final", due_on=date(2026, 3, 9), time=now),
    ])
    assert await family_kinds(built, "case-2") == []
    await built.service.handle_contacts([("case-2", contacts_event("case-2", parent()))])
    # the request is decided: "request received" is no longer news, "decision made" is
    assert await family_kinds(built, "case-2") == ["family_family_decision_made", "family_family_draft_plan_issued",
                                                    "family_missed"]


async def test_a_milestone_long_past_is_history_when_the_contacts_come(make_notifier) -> None:
    built = await make_notifier()
    today = built.clock().date()
    await built.service.handle_deadline_events([
        deadline_event("deadline.opened", "case-3", due_on=DUE, trigger_date=today - timedelta(days=5)),
        deadline_event("deadline.opened", "case-4", due_on=DUE, trigger_date=today - timedelta(days=1))])
    await built.service.handle_contacts([(c, contacts_event(c, parent())) for c in ("case-3", "case-4")])
    [old] = await notification_rows(built.sessions, recipient_kind="family", case_id="case-3")
    assert old.status == "historical"  # recorded, never sent
    assert await family_kinds(built, "case-4") == ["family_family_request_received"]
    while await built.service.send_due():
        pass
    assert len(built.sms.sent) == 1


async def test_an_exception_nudge_with_the_longest_event_id_is_planned(make_notifier) -> None:
    built = await make_notifier(caseworker_reminders="immediate")
    event = deadline_event("deadline.exception", "case-5", due_on=DUE, exception="E3", event_id="x" * 200,
                           time=datetime.now(UTC))
    assert await built.service.handle_deadline_events([event]) == 1
    [row] = await notification_rows(built.sessions, case_id="case-5")
    assert row.kind == f"caseworker_exception_{'x' * 200}" and row.recipient_ref == CASEWORKER[0]
