"""Issue 9: staff can tell cases apart. Their messages show the council's own case reference (from the
contacts, kept sealed in stored contexts), team and area names from settings, a first digest capped
with the most urgent first, and a "not delivered" alert that names the deadline."""

from __future__ import annotations

import json
from datetime import date

import pytest

from services.notifier.adapters.channels import PermanentSendError
from services.notifier.domain.subscriptions import SubscriptionSpec
from tests.notifier.helpers import FakeClock, contacts_event, deadline_event, london, notification_rows
from tests.notifier.integration.conftest import CASEWORKER

pytestmark = pytest.mark.infra

REFERENCE = "HRT-2025-0142"
PARENT = {"role": "parent", "name": "Alex Morgan", "phone": "07700 900111", "channel": "sms", "consent": True}


def contacts_with_reference(case_id: str, reference: str = REFERENCE, *people: dict) -> object:
    event = contacts_event(case_id, *people)
    return event.model_copy(update={"data": event.data.model_copy(update={"case_reference": reference})})


async def test_a_breach_alert_names_the_councils_case_reference_and_team(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 10, 0)),
                                team_names={"team-n": "North SEN team"})
    await built.service.subscriptions.add(SubscriptionSpec(manager_ref="mgr-n", scope="team", scope_id="team-n",
                                                           kind="breach", address="north@council.example"))
    await built.service.handle_contacts([("case-e74e", contacts_with_reference("case-e74e"))])
    await built.service.handle_deadline_events([deadline_event("deadline.breached", "case-e74e", "plan.final",
                                                               due_on=date(2026, 3, 9))])
    while await built.service.send_due():
        pass
    [to_caseworker] = built.email.to(CASEWORKER[1])
    assert to_caseworker.subject == f"Deadline missed: Issue the final EHC plan (20 weeks), case {REFERENCE}"
    [to_manager] = built.email.to("north@council.example")
    assert "(North SEN team)" in to_manager.subject and REFERENCE in to_manager.subject
    stored = json.dumps([r.context for r in await notification_rows(built.sessions)])
    assert REFERENCE not in stored  # sealed in the stored context


async def test_the_first_digest_of_a_big_caseload_is_capped_most_urgent_first(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 8, 0)), digest_max_items=25)
    events = [deadline_event("deadline.opened", f"case-{i:03}", due_on=date(2026, 3, 11 + i % 5))
              for i in range(200)]
    events += [deadline_event("deadline.breached", f"case-late-{i}", "plan.final", due_on=date(2026, 3, 9))
               for i in range(3)]
    await built.service.handle_contacts([("case-late-0", contacts_with_reference("case-late-0", "HRT-LATE-0"))])
    built.clock.set(london(2026, 3, 9, 23, 0))
    await built.service.handle_deadline_events(events)
    built.clock.set(london(2026, 3, 10, 8, 0))
    assert await built.service.run_morning() == 1
    while await built.service.send_due():
        pass
    digest = built.email.to(CASEWORKER[1])[-1]
    assert digest.template == "caseworker_daily_digest"
    assert digest.subject.startswith("Your EHC deadlines for 10 March 2026: 3 overdue, ")
    lines = [line for line in digest.body.splitlines() if line.startswith("- Case ")]
    assert len(lines) == 25
    assert lines[0].startswith("- Case HRT-LATE-0: Issue the final EHC plan")  # overdue first, by reference
    assert "178 more not listed here" in digest.body


async def test_a_delivery_failure_alert_names_the_deadline(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 10, 0)))
    await built.service.handle_contacts([("case-f", contacts_with_reference("case-f", REFERENCE, PARENT))])
    built.sms.errors.append(PermanentSendError("400 not a mobile"))
    await built.service.handle_deadline_events([deadline_event("deadline.opened", "case-f", due_on=date(2026, 4, 21),
                                                               trigger_date=date(2026, 3, 9))])
    while await built.service.send_due():
        pass
    [alert] = built.email.to(CASEWORKER[1])
    assert alert.subject == ("Message not delivered: request received (family) (Decide whether to assess), "
                             f"case {REFERENCE}")
    assert "Deadline: Decide whether to assess, due 21 April 2026" in alert.body
