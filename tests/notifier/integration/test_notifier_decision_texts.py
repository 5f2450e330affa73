"""Issue 9: the family's decision text says what was decided and gives the family's own deadlines,
even when those deadlines arrive in a later batch than the decision (the text is held a moment)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from tests.notifier.helpers import FakeClock, contacts_event, deadline_event, london, notification_rows

pytestmark = pytest.mark.infra

CASE = "case-dec"
PARENT = {"role": "parent", "name": "Alex Morgan", "phone": "07700 900111", "channel": "sms", "consent": True}
NOTICE = date(2026, 3, 9)


def decision_met() -> object:
    return deadline_event("deadline.met", CASE, "assessment.decision", due_on=date(2026, 3, 27),
                          trigger_date=date(2026, 2, 13), completed_on=NOTICE)


async def test_a_refusal_text_waits_for_and_gives_the_appeal_and_mediation_deadlines(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 10, 0)), short_link_base="https://herts.gov.uk")
    await built.service.handle_contacts([(CASE, contacts_event(CASE, PARENT))])
    await built.service.handle_deadline_events([
        deadline_event("deadline.opened", CASE, "plan.final", due_on=date(2026, 7, 3), trigger_date=date(2026, 2, 13),
                       time=london(2026, 2, 13))])
    await built.service.handle_deadline_events([decision_met()])  # the rest of the notice comes a batch later
    assert await built.service.send_due() == 0  # held
    await built.service.handle_deadline_events([
        deadline_event("deadline.cancelled", CASE, "plan.final", due_on=date(2026, 7, 3),
                       trigger_date=date(2026, 2, 13)),
        deadline_event("deadline.opened", CASE, "mediation.adviser_contact", due_on=date(2026, 5, 11),
                       trigger_date=NOTICE, responsible="family"),
        deadline_event("deadline.opened", CASE, "appeal.deadline", due_on=date(2026, 5, 11), trigger_date=NOTICE,
                       responsible="family")])
    built.clock.advance(minutes=3)
    assert await built.service.send_due() == 1
    [text] = built.sms.sent
    assert re.fullmatch(re.escape("Hertfordshire County Council has decided not to carry out an EHC needs assessment. "
                                  "If you disagree, contact a mediation adviser, then you can appeal to the "
                                  "tribunal by 11 May 2026. Free advice: Herts SENDIASS 01992 555847. "
                                  "https://herts.gov.uk/f/") + "[A-Za-z0-9]{12}", text.body), text.body


async def test_an_agreed_assessment_is_told_when_the_plan_is_due_and_not_that_it_can_appeal(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 10, 0)), short_link_base="https://herts.gov.uk")
    await built.service.handle_contacts([(CASE, contacts_event(CASE, PARENT, sendiass=None))])
    await built.service.handle_deadline_events([
        deadline_event("deadline.opened", CASE, "plan.final", due_on=date(2026, 7, 3), trigger_date=date(2026, 2, 13),
                       time=london(2026, 2, 13)),
        decision_met()])
    [row] = await notification_rows(built.sessions, kind="family_family_decision_made")
    assert row.context["decision"] == "assess"
    built.clock.advance(minutes=3)
    await built.service.send_due()
    [text] = built.sms.sent
    assert re.fullmatch(re.escape("Hertfordshire County Council will carry out an EHC needs assessment. Any EHC plan "
                                  "is due by 3 July 2026. https://herts.gov.uk/f/") + "[A-Za-z0-9]{12}", text.body)
