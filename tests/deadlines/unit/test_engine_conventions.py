"""Counting conventions C1-C7 (law file section C), as date arithmetic."""

from __future__ import annotations

import pytest
from engine_testkit import CALENDAR, d

from services.deadlines.domain.calculators import Period, add_months, apply_convention, calendar_free_due


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        pytest.param("2026-10-01", 2, "2026-12-01", id="add_months 1 October + 2"),
        pytest.param("2026-01-31", 1, "2026-02-28", id="add_months 31 January + 1: last day of February"),
        pytest.param("2028-01-31", 1, "2028-02-29", id="add_months leap year"),
        pytest.param("2028-02-29", 12, "2029-02-28", id="add_months 29 February + 12"),
        pytest.param("2026-11-15", 3, "2027-02-15", id="add_months over the year end"),
        pytest.param("2027-01-10", -5, "2026-08-10", id="add_months backwards"),
        pytest.param("2026-07-31", -5, "2026-02-28", id="add_months backwards to a short month"),
    ],
)
def test_add_months(start: str, months: int, expected: str) -> None:
    assert add_months(d(start), months) == d(expected)


CASES = [
    pytest.param("C1", Period(6, "weeks"), "2026-01-05", "2026-02-16", id="C1 6 weeks: same weekday"),
    pytest.param("C1", Period(20, "weeks"), "2026-01-05", "2026-05-25", id="C1 20 weeks = 140 days"),
    pytest.param("C1", Period(15, "days"), "2026-06-01", "2026-06-16", id="C1 15 days"),
    pytest.param("C1", Period(0, "days"), "2026-07-01", "2026-07-01", id="C1 immediately"),
    pytest.param("C2", Period(15, "days"), "2026-04-20", "2026-05-04", id="C2 at least 15 days beginning with"),
    pytest.param("C3", Period(12, "months"), "2026-03-10", "2027-03-09", id="C3 12 months starting with (law file)"),
    pytest.param("C3", Period(12, "months"), "2028-03-01", "2029-02-28", id="C3 from 1 March after a leap day"),
    pytest.param("C3", Period(6, "months"), "2026-03-10", "2026-09-09", id="C3 6 months"),
    # Law file C3 corrected (england.md#L130-L135): its worked examples, and the earlier formula kept
    # for england-2014.1's clocks (C3.2014), a day early for these.
    pytest.param("C3", Period(12, "months"), "2027-03-01", "2028-02-29", id="C3 england.md#L133 1 Mar 2027"),
    pytest.param("C3", Period(12, "months"), "2028-02-29", "2029-02-28", id="C3 england.md#L133 29 Feb 2028"),
    pytest.param("C3", Period(3, "months"), "2027-05-01", "2027-07-31", id="C3 england.md#L134 3 months"),
    pytest.param("C3", Period(1, "months"), "2027-01-31", "2027-02-28", id="C3 no corresponding day"),
    pytest.param("C3.2014", Period(12, "months"), "2027-03-01", "2028-02-28", id="C3.2014 england-2014.1"),
    pytest.param("C3.2014", Period(3, "months"), "2027-05-01", "2027-07-30", id="C3.2014 3 months"),
    pytest.param("C4+C9", Period(2, "months"), "2027-10-27", "2028-01-04", id="C4+C9 Christmas england.md#L146"),
    pytest.param("C4", Period(2, "months"), "2026-10-01", "2026-12-01", id="C4 2 months after (law file)"),
    pytest.param("C4", Period(2, "months"), "2026-12-31", "2027-02-28", id="C4 to a short month"),
    pytest.param("C5", Period(0, "fixed_date", month=2, day=15), "2027-09-01", "2027-02-14",
                 id="C5 before 15 February of the year of transfer"),
    pytest.param("C6w", Period(2, "weeks"), "2027-01-20", "2027-01-06", id="C6w at least 2 weeks before"),
    pytest.param("C6m", Period(5, "months"), "2027-01-10", "2026-08-10", id="C6m at least 5 months before"),
    pytest.param("C7", Period(3, "working_days"), "2026-12-23", "2026-12-30", id="C7 working days of"),
    pytest.param("C7", Period(15, "working_days", beginning_with=True), "2026-03-30", "2026-04-21",
                 id="C7 working days beginning with"),
    pytest.param("C4+C9", Period(2, "months"), "2026-06-15", "2026-09-01", id="C4+C9 August roll-over"),
]


@pytest.mark.parametrize(("convention", "period", "trigger", "expected"), CASES)
def test_apply_convention(convention: str, period: Period, trigger: str, expected: str) -> None:
    assert apply_convention(convention, period, d(trigger), CALENDAR) == d(expected)


@pytest.mark.parametrize(("convention", "period", "trigger", "expected"), CASES)
def test_fast_path_agrees_with_the_convention(convention: str, period: Period, trigger: str, expected: str) -> None:
    fn = calendar_free_due(convention, period)
    if fn is not None:  # calendar-free conventions only
        assert fn(d(trigger)) == d(expected)


def test_unknown_convention_is_an_error() -> None:
    with pytest.raises(ValueError):
        apply_convention("C10", Period(1, "days"), d("2026-01-01"), CALENDAR)
    with pytest.raises(ValueError):
        apply_convention("C7", Period(1, "days"), d("2026-01-01"), CALENDAR)
