"""Working days (law file C7), the appeal roll-over (C9) and term calendars (C8, E1/E2)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from engine_testkit import CALENDAR, d

from services.deadlines.domain import CalendarError, Closure, TermCalendar, WorkingDayCalendar


@pytest.mark.parametrize(
    "day",
    [
        pytest.param("2026-04-03", id="C7 Good Friday 2026"),
        pytest.param("2027-03-26", id="C7 Good Friday 2027"),
        pytest.param("2026-12-25", id="C7 Christmas Day 2026"),
        pytest.param("2027-12-27", id="C7 Christmas Day 2027 substitute (25th is a Saturday)"),
        pytest.param("2026-12-28", id="C7 Boxing Day 2026 substitute"),
        pytest.param("2026-04-06", id="C7 Easter Monday"),
        pytest.param("2026-05-04", id="C7 early May bank holiday"),
        pytest.param("2026-08-31", id="C7 summer bank holiday"),
        pytest.param("2023-05-08", id="C7 one-off bank holiday (coronation)"),
        pytest.param("2026-01-03", id="C7 Saturday"),
        pytest.param("2026-01-04", id="C7 Sunday"),
    ],
)
def test_non_working_days(day: str) -> None:
    assert not CALENDAR.is_working_day(d(day))


def test_christmas_and_good_friday_are_in_the_library_every_year() -> None:
    for year in range(2015, 2041):
        assert not CALENDAR.is_working_day(date(year, 12, 25))
    import holidays

    lib = holidays.country_holidays("GB", subdiv="ENG", years=range(2015, 2041))
    names = {(day.year, name) for day, name in lib.items()}
    for year in range(2015, 2041):
        assert (year, "Good Friday") in names
        assert (year, "Christmas Day") in names


@pytest.mark.parametrize(
    ("start", "n", "beginning_with", "expected"),
    [
        pytest.param("2026-12-23", 3, False, "2026-12-30", id="C7 3 working days of Wed 23 Dec 2026"),
        pytest.param("2026-04-02", 3, False, "2026-04-09", id="C7 3 working days of Thu 2 Apr 2026 (Easter)"),
        pytest.param("2026-03-30", 15, True, "2026-04-21", id="C7 15 working days beginning with Mon 30 Mar"),
        pytest.param("2026-03-28", 1, True, "2026-03-30", id="C7 beginning with a Saturday: day 1 is Monday"),
        pytest.param("2026-03-30", 1, True, "2026-03-30", id="C7 beginning with a working day: itself"),
        pytest.param("2026-07-20", 30, False, "2026-09-01", id="C7 30 working days over August"),
        pytest.param("2026-07-20", 0, False, "2026-07-20", id="C7 zero working days"),
    ],
)
def test_add_working_days(start: str, n: int, beginning_with: bool, expected: str) -> None:
    assert CALENDAR.add_working_days(d(start), n, beginning_with) == d(expected)


def test_next_working_day() -> None:
    assert CALENDAR.next_working_day(d("2026-04-02")) == d("2026-04-07")
    assert CALENDAR.next_working_day(d("2026-04-07"), inclusive=True) == d("2026-04-07")
    assert CALENDAR.working_days_between(d("2026-04-02"), d("2026-04-07")) == 1


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        pytest.param("2026-12-24", "2026-12-24", id="C9 24 December stays"),
        pytest.param("2026-12-25", "2027-01-04", id="C9 25 December to after 1 January"),
        pytest.param("2026-12-29", "2027-01-04", id="C9 29 December (a working day) still moves"),
        pytest.param("2027-01-01", "2027-01-04", id="C9 1 January"),
        pytest.param("2027-01-02", "2027-01-04", id="C9 2 January: a Saturday, next working day"),
        pytest.param("2026-08-01", "2026-09-01", id="C9 August to after 31 August (bank holiday 31st)"),
        pytest.param("2027-08-16", "2027-09-01", id="C9 August 2027"),
        pytest.param("2026-04-03", "2026-04-07", id="C9 Good Friday to after Easter Monday"),
        pytest.param("2026-03-07", "2026-03-09", id="C9 Saturday to Monday"),
        pytest.param("2026-03-10", "2026-03-10", id="C9 a working day stays"),
    ],
)
def test_appeal_roll_over_hesc_rules_12_3(due: str, expected: str) -> None:
    assert CALENDAR.appeal_roll_over(d(due)) == d(expected)


def test_dates_outside_the_prebuilt_table_extend_it() -> None:
    cal = WorkingDayCalendar(first_year=2025, last_year=2026)
    assert cal.add_working_days(d("2026-12-23"), 30) == CALENDAR.add_working_days(d("2026-12-23"), 30)
    assert not cal.is_working_day(d("2030-04-19"))  # Good Friday 2030
    assert not cal.is_working_day(d("2010-04-02"))  # Good Friday 2010


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_override_file_adds_and_removes_days(tmp_path: Path, suffix: str) -> None:
    content = {"extra": ["2026-06-15"], "removed": ["2026-05-04"]}
    path = tmp_path / f"overrides{suffix}"
    path.write_text(json.dumps(content))  # JSON is valid YAML too
    cal = WorkingDayCalendar.from_override_file(path)
    assert not cal.is_working_day(d("2026-06-15"))
    assert cal.is_working_day(d("2026-05-04"))


def test_override_file_as_a_plain_list(tmp_path: Path) -> None:
    path = tmp_path / "extra.yaml"
    path.write_text("- 2026-06-15\n- 2026-06-16\n")
    cal = WorkingDayCalendar.from_override_file(path)
    assert not cal.is_working_day(d("2026-06-16"))


def test_shipped_override_example_changes_nothing() -> None:
    from services.deadlines.domain.calendar import _CALENDARS_DIR

    cal = WorkingDayCalendar.from_override_file(_CALENDARS_DIR / "bank_holiday_overrides.example.yaml")
    assert cal.add_working_days(d("2026-07-20"), 30) == d("2026-09-01")


@pytest.mark.parametrize("text", ["extra: [not-a-date]\n", "bogus: []\n", "42\n"])
def test_bad_override_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CalendarError):
        WorkingDayCalendar.from_override_file(path)


# -- term calendars ------------------------------------------------------------------------------


def test_e1_window_from_a_week_before_closure_to_a_week_before_reopening() -> None:
    terms = TermCalendar([Closure(d("2026-07-22"), d("2026-09-02"), "Summer")])
    assert not terms.closure_window_contains(None, d("2026-07-14"))
    assert terms.closure_window_contains(None, d("2026-07-15"))
    assert terms.closure_window_contains(None, d("2026-08-27"))  # re-opens 3 Sep
    assert not terms.closure_window_contains(None, d("2026-08-28"))


def test_closures_shorter_than_four_weeks_do_not_count() -> None:
    terms = TermCalendar([Closure(d("2026-12-19"), d("2027-01-03")), Closure(d("2026-01-01"), d("2026-01-27"))])
    assert not terms.closure_window_contains(None, d("2026-12-20"))
    assert not terms.closure_window_contains(None, d("2026-01-10"))
    four_weeks = TermCalendar([Closure(d("2026-01-01"), d("2026-01-28"))])
    assert four_weeks.closure_window_contains(None, d("2026-01-10"))


def test_setting_override_replaces_the_default() -> None:
    terms = TermCalendar(
        [Closure(d("2026-07-22"), d("2026-09-02"))],
        {"ey-1": [Closure(d("2026-12-24"), d("2027-01-01"))]},
    )
    assert terms.closure_window_contains("school-9", d("2026-08-01"))
    assert not terms.closure_window_contains("ey-1", d("2026-08-01"))


def test_shipped_example_term_calendar() -> None:
    terms = TermCalendar.from_file()
    assert terms.name.startswith("example")
    for year in range(2024, 2029):
        assert terms.closure_window_contains(None, date(year, 8, 10)), year
        assert not terms.closure_window_contains(None, date(year, 11, 20)), year
    summer = terms.closure_window_for(None, d("2026-08-10"))
    assert summer is not None and summer.name == "Summer 2026"


def test_bad_term_file(tmp_path: Path) -> None:
    path = tmp_path / "terms.yaml"
    path.write_text("closures:\n  - {first_day: 2026-07-22}\n")
    with pytest.raises(CalendarError):
        TermCalendar.from_file(path)
