"""Issue 9: managers have quiet hours too. Breaches of the night (breach timers fire at midnight) reach
a manager at the start of the working day as one message, unless the subscription asks for
immediate alerts (kind breach_immediate); a breach in the working day is alerted at once."""

from __future__ import annotations

from datetime import date

import pytest

from services.notifier.domain.subscriptions import SubscriptionSpec
from tests.notifier.helpers import FakeClock, WeekdaysAndHolidays, deadline_event, london, notification_rows

pytestmark = pytest.mark.infra

NORTH = "north@council.example"
NIGHT_OWL = "owl@council.example"


async def drain(built) -> None:
    while await built.service.send_due():
        pass


async def test_overnight_breaches_reach_the_manager_as_one_morning_message(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 0, 0, )), calendar=WeekdaysAndHolidays(),
                                team_names={"team-n": "North SEN team"})
    subs = built.service.subscriptions
    await subs.add(SubscriptionSpec(manager_ref="mgr-n", scope="team", scope_id="team-n", kind="breach",
                                    address=NORTH))
    await subs.add(SubscriptionSpec(manager_ref="mgr-owl", scope="all", kind="breach_immediate", address=NIGHT_OWL))
    await built.service.handle_deadline_events([
        deadline_event("deadline.breached", f"case-{i}", "plan.final", due_on=date(2026, 3, 9)) for i in range(3)])
    await drain(built)
    assert built.email.to(NORTH) == []  # not at midnight
    assert len(built.email.to(NIGHT_OWL)) == 3  # asked for it

    built.clock.set(london(2026, 3, 10, 8, 0))
    await built.service.run_morning()
    await built.service.run_morning()  # a second trigger plans nothing more
    await drain(built)
    [rollup] = built.email.to(NORTH)
    assert rollup.template == "manager_breach_rollup"
    assert rollup.subject == "3 EHC deadlines missed overnight (North SEN team)"
    assert all(f"case-{i}" in rollup.body for i in range(3))
    assert len(built.email.to(NIGHT_OWL)) == 3  # already told, nothing rolled up for them

    # a breach found in the working day is an alert at once
    await built.service.handle_deadline_events([
        deadline_event("deadline.breached", "case-day", "plan.final", due_on=date(2026, 3, 9))])
    await drain(built)
    assert [m.template for m in built.email.to(NORTH)] == ["manager_breach_rollup", "manager_breach"]
    assert len(await notification_rows(built.sessions, kind="manager_breach_rollup")) == 1
