"""Digests and summaries (pure): working days, when the morning jobs are due, what the lists hold."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.notifier.domain.digests import (
    MANAGER_LIST_LIMIT,
    DeadlineView,
    digest_lists,
    first_working_day_of_week,
    in_scope,
    london_instant,
    manager_daily_context,
    morning_jobs,
    parse_hhmm,
    previous_working_day,
    scope_name,
    weekly_summary_context,
    working_days_after,
)
from tests.notifier.helpers import WeekdaysAndHolidays, london

GOOD_FRIDAY, EASTER_MONDAY = date(2026, 4, 3), date(2026, 4, 6)
CALENDAR = WeekdaysAndHolidays(GOOD_FRIDAY, EASTER_MONDAY)
TUESDAY = date(2026, 3, 10)
URL = "https://ehc.example/v1/cases"


def view(case_id: str = "case-1", rule_id: str = "assessment.decision", *, due_on: date, status: str = "open",
         **changes: object) -> DeadlineView:
    fields: dict = {"deadline_id": f"{case_id}:{rule_id}:1", "case_id": case_id, "rule_id": rule_id, "due_on": due_on,
                    "status": status, "responsible": "la", "legal_source": "Regs 5(1)", "team_id": "team-n"}
    fields.update(changes)
    return DeadlineView(**fields)


def test_working_days_after_skips_weekends_and_bank_holidays() -> None:
    assert working_days_after(CALENDAR, date(2026, 4, 2), date(2026, 4, 8)) == 2  # Fri, Mon off: Tue, Wed
    assert working_days_after(CALENDAR, TUESDAY, TUESDAY) == 0
    assert working_days_after(CALENDAR, TUESDAY, TUESDAY - timedelta(days=3)) == 0
    assert previous_working_day(CALENDAR, date(2026, 4, 7)) == date(2026, 4, 2)


def test_the_first_working_day_of_a_week() -> None:
    assert first_working_day_of_week(CALENDAR, date(2026, 3, 9))  # an ordinary Monday
    assert not first_working_day_of_week(CALENDAR, TUESDAY)
    assert not first_working_day_of_week(CALENDAR, EASTER_MONDAY)
    assert first_working_day_of_week(CALENDAR, date(2026, 4, 7))  # the Tuesday after Easter Monday


@pytest.mark.parametrize(("moment", "day", "weekly_from"), [
    (london(2026, 3, 10, 7, 59), None, None),  # before 08:00
    (london(2026, 3, 10, 8, 0), TUESDAY, None),
    (london(2026, 3, 9, 8, 0), date(2026, 3, 9), date(2026, 3, 2)),  # Monday: last week's summary too
    (london(2026, 3, 14, 9, 0), None, None),  # Saturday
    (london(2026, 4, 6, 9, 0), None, None),  # Easter Monday
    (london(2026, 4, 7, 8, 30), date(2026, 4, 7), date(2026, 3, 30)),
    (london(2026, 7, 1, 8, 0), date(2026, 7, 1), None),  # 08:00 BST is 07:00 UTC
])
def test_morning_jobs(moment: datetime, day: date | None, weekly_from: date | None) -> None:
    jobs = morning_jobs(moment.astimezone(UTC), CALENDAR)
    assert (jobs.day, jobs.weekly_from) == (day, weekly_from)
    assert bool(jobs) is (day is not None)


def test_08_00_london_in_summer_is_07_00_utc() -> None:
    assert not morning_jobs(datetime(2026, 7, 1, 6, 59, tzinfo=UTC), CALENDAR)
    assert morning_jobs(datetime(2026, 7, 1, 7, 0, tzinfo=UTC), CALENDAR)


def test_a_catch_up_at_start_only_runs_in_the_morning() -> None:
    assert morning_jobs(london(2026, 3, 10, 11, 59), CALENDAR, catch_up_hours=4)
    assert not morning_jobs(london(2026, 3, 10, 12, 0), CALENDAR, catch_up_hours=4)
    assert morning_jobs(london(2026, 3, 10, 22, 0), CALENDAR)  # the scheduler's own trigger is not limited
    assert parse_hhmm("07:30").hour == 7
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm("8am")


def test_digest_lists_sort_council_deadlines() -> None:
    since = london_instant(date(2026, 3, 9), parse_hhmm("08:00"))
    views = [
        view("case-late", "plan.final", due_on=date(2026, 3, 2), status="breached"),
        view("case-lag", due_on=date(2026, 3, 9), status="due_soon"),  # its breach event is not here yet
        view("case-today", due_on=TUESDAY, status="due_soon"),
        view("case-10", due_on=date(2026, 3, 24)),  # exactly 10 working days away
        view("case-11", due_on=date(2026, 3, 25), first_seen_at=london(2026, 3, 1)),  # 11: not yet, not new
        view("case-new", due_on=date(2026, 6, 1), first_seen_at=london(2026, 3, 9, 15)),
        view("case-exc", due_on=date(2026, 3, 20), status="exception"),
        view("case-guide", "review.under5", due_on=date(2026, 3, 11), flags=("guidance",)),
        view("case-family", "draft.representations", due_on=date(2026, 3, 11), responsible="family"),
        view("case-met", due_on=date(2026, 3, 11), status="met"),
    ]
    lists = digest_lists(views, TUESDAY, CALENDAR, due_soon_working_days=10, url_base=URL, new_since=since)
    assert [i["case_id"] for i in lists.overdue] == ["case-late", "case-lag"]
    assert [i["working_days_overdue"] for i in lists.overdue] == [6, 1]
    assert [(i["case_id"], i["working_days_left"]) for i in lists.due_soon] == [("case-today", 0), ("case-10", 10)]
    assert [i["case_id"] for i in lists.new] == ["case-new"]
    assert [i["case_id"] for i in lists.exceptions] == ["case-exc"]
    assert lists.overdue[0]["case_url"] == f"{URL}/case-late"
    assert not lists.is_empty()


def test_manager_lists_leave_out_new_and_exceptions_and_are_cut_short() -> None:
    views = [view(f"case-{i:03}", due_on=date(2026, 2, 2), status="breached") for i in range(MANAGER_LIST_LIMIT + 5)]
    views.append(view("case-exc", due_on=date(2026, 3, 20), status="exception"))
    lists = digest_lists(views, TUESDAY, CALENDAR, due_soon_working_days=10, url_base=URL,
                         include_new_and_exceptions=False)
    context = manager_daily_context(lists, TUESDAY, "team team-n", "https://ehc.example/at-risk")
    assert len(context["overdue"]) == MANAGER_LIST_LIMIT and context["overdue_count"] == MANAGER_LIST_LIMIT + 5
    assert lists.exceptions == []


def test_scopes() -> None:
    v = view(due_on=TUESDAY, team_id="team-n", area_id="area-w")
    assert in_scope(v, "all", None) and in_scope(v, "team", "team-n") and in_scope(v, "area", "area-w")
    assert not in_scope(v, "team", "team-s") and not in_scope(v, "area", None) and not in_scope(v, "region", "x")
    assert scope_name("team", "team-n", "Herts") == "team team-n" and scope_name("all", None, "Herts") == "Herts"


def test_weekly_counts() -> None:
    week = date(2026, 3, 2)
    views = [
        view("opened", due_on=date(2026, 5, 1), opened_on=date(2026, 3, 4)),
        view("opened-before", due_on=date(2026, 5, 1), opened_on=date(2026, 3, 1)),
        view("met", due_on=date(2026, 3, 20), status="met", completed_on=date(2026, 3, 6)),
        view("met-late", due_on=date(2026, 3, 3), status="met_late", completed_on=date(2026, 3, 5)),
        view("breached-in-week", due_on=date(2026, 3, 1), status="breached"),  # breach day Monday 2 March
        view("breached-before", due_on=date(2026, 2, 20), status="breached"),
        view("due-next", due_on=date(2026, 3, 13)),
        view("guidance", due_on=date(2026, 3, 12), flags=("guidance",), opened_on=date(2026, 3, 4)),
    ]
    context = weekly_summary_context(views, week, TUESDAY, CALENDAR, name_of_scope="Herts", url_base=URL,
                                     report_url=None)
    assert context["counts"] == {"opened": 1, "met_on_time": 1, "met_late": 1, "breached": 2, "overdue_now": 2,
                                 "due_next_week": 1}
    assert [i["case_id"] for i in context["oldest_overdue"]] == ["breached-before", "breached-in-week"]
    assert (context["week_start"], context["week_end"]) == ("2026-03-02", "2026-03-08")
