"""Digests and summaries from the notifier's own projection of the deadlines, against PostgreSQL.

Working days: Monday to Friday except Easter Monday 2026 (6 April), the test's own calendar.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select

from services.notifier.adapters import tables
from services.notifier.domain.subscriptions import SubscriptionSpec
from shared.contracts import parse_case_event
from tests.notifier.helpers import FakeClock, WeekdaysAndHolidays, deadline_event, london, notification_rows
from tests.notifier.integration.conftest import CASEWORKER

pytestmark = pytest.mark.infra
EASTER_MONDAY = date(2026, 4, 6)
CALENDAR = WeekdaysAndHolidays(EASTER_MONDAY)
TUESDAY = london(2026, 3, 10, 8, 0)


def at(moment: datetime) -> datetime:
    return moment


async def drain(built) -> None:
    while await built.service.send_due():
        pass


async def caseworker_day(built) -> None:
    """A caseworker's cases on Tuesday 10 March 2026."""
    events = [
        deadline_event("deadline.opened", "case-a", due_on=date(2026, 3, 12), time=london(2026, 2, 1)),
        deadline_event("deadline.breached", "case-b", "plan.final", due_on=date(2026, 3, 2), time=london(2026, 3, 3)),
        deadline_event("deadline.opened", "case-c", "assessment.plan_decision", due_on=date(2026, 6, 1),
                       time=london(2026, 3, 9, 15)),
        deadline_event("deadline.exception", "case-d", "plan.final", due_on=date(2026, 3, 20), exception="E3",
                       time=london(2026, 3, 1)),
        deadline_event("deadline.opened", "case-e", "review.under5", due_on=date(2026, 3, 11), flags=["guidance"],
                       time=london(2026, 3, 1)),
        deadline_event("deadline.opened", "case-e", "draft.representations", due_on=date(2026, 3, 11),
                       responsible="family", time=london(2026, 3, 1)),
    ]
    await built.service.handle_deadline_events(events)


async def test_one_digest_per_caseworker_instead_of_a_flood(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 9, 16, 0)), calendar=CALENDAR)
    await caseworker_day(built)
    await drain(built)
    # new deadlines, reminders and exception nudges wait for the digest; a breach first seen a week
    # after it happened is historical (not alerted): the digest lists it as overdue
    assert built.email.to(CASEWORKER[1]) == []
    assert [r.status for r in await notification_rows(built.sessions, kind="breach_alert")] == ["historical"]

    built.clock.set(london(2026, 3, 10, 8, 0))
    assert await built.service.run_morning() == 1
    assert await built.service.run_morning() == 0  # a second trigger (or replica) plans nothing
    await drain(built)
    digest = built.email.to(CASEWORKER[1])[-1]
    assert digest.template == "caseworker_daily_digest"
    assert digest.subject == "Your EHC deadlines for 10 March 2026: 1 overdue, 1 due soon, 1 new"
    body = digest.body
    assert "Case case-b: Issue the final EHC plan (20 weeks), was due 2 March 2026 (6 working days ago)" in body
    assert "Case case-a: Decide whether to assess, due 12 March 2026 (2 working days left)" in body
    assert "New since the last list (1):" in body and "Case case-c:" in body
    assert "Under an exception" in body and "Case case-d:" in body
    assert "case-e" not in body  # guidance and the family's own window are not the council's duties


@pytest.mark.parametrize(("moment", "why"), [
    (london(2026, 3, 10, 7, 59), "before 08:00"),
    (london(2026, 3, 14, 9, 0), "a Saturday"),
    (london(2026, 4, 6, 9, 0), "a bank holiday"),
])
async def test_no_digest_when_it_is_not_a_working_morning(make_notifier, moment: datetime, why: str) -> None:
    built = await make_notifier(clock=FakeClock(moment), calendar=CALENDAR)
    await caseworker_day(built)
    assert await built.service.run_morning() == 0, why


async def test_the_projection_ignores_stale_events_and_follows_reassignment(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(TUESDAY), calendar=CALENDAR,
                                caseworker_directory={CASEWORKER[0]: CASEWORKER[1], "cw-2": "kim@council.example"})
    await built.service.handle_deadline_events([
        deadline_event("deadline.opened", "case-a", due_on=date(2026, 3, 13), time=london(2026, 3, 5)),
        deadline_event("deadline.changed", "case-a", due_on=date(2026, 3, 11), time=london(2026, 3, 1)),  # older
    ])
    assigned = parse_case_event({"id": "as-2", "source": "cms/test", "type": "ehc.case.assigned", "subject": "case-a",
                                 "time": "2026-03-09T12:00:00Z",
                                 "data": {"occurred_on": "2026-03-09", "caseworker_id": "cw-2", "team_id": "team-s"}})
    assert await built.service.handle_case_events([assigned]) == 1
    v = tables.deadline_view
    async with built.sessions() as session:
        row = (await session.execute(select(v))).one()
    assert (row.due_on, row.caseworker_id, row.team_id) == (date(2026, 3, 13), "cw-2", "team-s")
    await built.service.run_morning()
    await drain(built)
    assert [m.template for m in built.email.to("kim@council.example")] == ["caseworker_daily_digest"]
    assert built.email.to(CASEWORKER[1]) == []


async def test_managers_get_daily_at_risk_lists_and_a_weekly_summary_for_their_scope(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 4, 7, 8, 0)), calendar=CALENDAR,
                                council_name="Hertfordshire County Council")
    subs = built.service.subscriptions
    await subs.add(SubscriptionSpec(manager_ref="mgr-n", scope="team", scope_id="team-n", kind="daily_digest",
                                    address="north@council.example"))
    await subs.add(SubscriptionSpec(manager_ref="mgr-x", scope="area", scope_id="area-x", kind="daily_digest",
                                    address="area@council.example"))
    await subs.add(SubscriptionSpec(manager_ref="head", scope="all", kind="weekly_summary",
                                    address="head@council.example"))
    week = {"time": london(2026, 4, 1)}
    await built.service.handle_deadline_events([
        # the week of 30 March to 5 April 2026
        deadline_event("deadline.opened", "n-1", due_on=date(2026, 5, 11), trigger_date="2026-03-30", **week),
        deadline_event("deadline.met", "n-2", due_on=date(2026, 4, 2), completed_on="2026-03-31", **week),
        deadline_event("deadline.met", "n-3", "plan.final", status="met_late", due_on=date(2026, 3, 31),
                       completed_on="2026-04-02", **week),
        deadline_event("deadline.breached", "n-4", "plan.final", due_on=date(2026, 4, 1), **week),
        deadline_event("deadline.opened", "s-1", due_on=date(2026, 4, 9), team_id="team-s", area_id="area-x",
                       trigger_date="2026-02-26", **week),
    ])
    # the caseworker's digest, two daily lists, and the weekly summary (Tuesday: the first working day)
    assert await built.service.run_morning() == 4
    await drain(built)
    [north] = built.email.to("north@council.example")
    assert north.template == "manager_daily_at_risk" and "team team-n" in north.subject
    assert "Case n-4:" in north.body and "s-1" not in north.body
    [area] = built.email.to("area@council.example")
    assert "Case s-1:" in area.body and "n-4" not in area.body
    [weekly] = built.email.to("head@council.example")
    assert weekly.template == "manager_weekly_summary"
    assert "week of 30 March 2026" in weekly.subject and "Hertfordshire County Council" in weekly.subject
    for line in ("Deadlines started: 1", "Met on time: 1", "Met late: 1", "Missed this week: 2",
                 "Overdue now: 1", "Due next week: 1"):
        assert line in weekly.body, line
    # Wednesday: digests again, no weekly summary
    built.clock.set(london(2026, 4, 8, 8, 0))
    assert await built.service.run_morning() == 3


async def test_immediate_mode_sends_each_event_and_no_digest(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(TUESDAY), calendar=CALENDAR, caseworker_reminders="immediate")
    await built.service.handle_deadline_events([
        deadline_event("deadline.opened", "case-a", due_on=date(2026, 3, 24)),
        deadline_event("deadline.due_soon", "case-a", due_on=date(2026, 3, 24), reminder_offset_days=10),
    ])
    await drain(built)
    assert [m.template for m in built.email.to(CASEWORKER[1])] == ["caseworker_new_deadline", "caseworker_reminder"]
    assert await built.service.run_morning() == 0
    rows = await notification_rows(built.sessions)
    assert {r.kind for r in rows} == {"caseworker_new_deadline", "caseworker_reminder_10"}


async def test_the_projection_keeps_the_newest_event_of_a_batch_and_the_first_legal_start(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(TUESDAY), calendar=CALENDAR)
    await built.service.handle_deadline_events([
        deadline_event("deadline.opened", "case-a", due_on=date(2026, 3, 20), trigger_date="2026-02-06",
                       time=london(2026, 2, 6)),
        deadline_event("deadline.changed", "case-a", due_on=date(2026, 3, 27), time=london(2026, 2, 9)),
        deadline_event("deadline.changed", "case-a", due_on=date(2026, 3, 13), time=london(2026, 2, 7)),  # older
    ])
    await built.service.handle_deadline_events([
        deadline_event("deadline.met", "case-a", due_on=date(2026, 3, 27), completed_on="2026-03-02",
                       time=london(2026, 3, 2)),
    ])
    v = tables.deadline_view
    async with built.sessions() as session:
        row = (await session.execute(select(v))).one()
    assert (row.due_on, row.status, row.completed_on) == (date(2026, 3, 27), "met", date(2026, 3, 2))
    assert row.opened_on == date(2026, 2, 6)  # kept: the later events carry no trigger date
