"""One range of years for intake and the engine (issue 13): what intake accepts the engine computes;
a date the calendar does not know is a DateOutOfRange (a case's data problem), never a crash
elsewhere."""

from __future__ import annotations

from datetime import date

import pytest

from services.deadlines.domain.calendar import WorkingDayCalendar
from services.deadlines.domain.engine import compute
from services.deadlines.domain.events import CaseEventRecord
from services.deadlines.domain.quality import date_problem
from services.deadlines.domain.rules import load_ruleset_history
from services.intake.domain.values import PLAUSIBLE_YEARS, plausible
from shared.working_days import ACCEPTED_YEARS, CALENDAR_YEARS, DateOutOfRange


def plan_issued(day: date) -> CaseEventRecord:
    from datetime import UTC, datetime

    return CaseEventRecord("p-1", "case-1", "ehc.plan.issued", day, datetime(2026, 1, 1, tzinfo=UTC),
                           {"plan_id": "plan-1"})


def test_intake_accepts_exactly_the_engines_years() -> None:
    assert PLAUSIBLE_YEARS is ACCEPTED_YEARS
    assert plausible(date(ACCEPTED_YEARS.stop - 1, 12, 31))
    with pytest.raises(ValueError, match="plausible"):
        plausible(date(ACCEPTED_YEARS.stop, 1, 1))


def test_the_engine_computes_the_last_accepted_year() -> None:
    calendar = WorkingDayCalendar()
    deadlines = compute([plan_issued(date(ACCEPTED_YEARS.stop - 1, 12, 31))], load_ruleset_history("england"),
                        calendar, date(2026, 1, 1))
    assert deadlines and all(d.due_on.year in CALENDAR_YEARS for d in deadlines)


def test_beyond_the_calendar_is_a_date_out_of_range() -> None:
    calendar = WorkingDayCalendar()
    with pytest.raises(DateOutOfRange, match="beyond the working-day calendar"):
        calendar.is_working_day(date(CALENDAR_YEARS.stop, 1, 1))
    with pytest.raises(DateOutOfRange):
        calendar.add_working_days(date(CALENDAR_YEARS.stop - 1, 12, 1), 40)
    assert calendar.add_working_days(date(CALENDAR_YEARS.stop - 1, 6, 1), 20).year == CALENDAR_YEARS.stop - 1


def test_a_history_outside_the_accepted_years_is_a_named_problem() -> None:
    assert date_problem([plan_issued(date(2026, 6, 1))]) is None
    problem = date_problem([plan_issued(date(2099, 6, 1))])
    assert problem is not None and problem.startswith("event p-1: occurred_on 2099-06-01 is outside the years")
