"""The DfE 20-week figures (SEN2 FORMAT notes): population, 140 days, exceptions, bands, mean, rounding."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest

from services.intake.domain.sen2 import AssessmentRecord
from services.intake.domain.timeliness import compute_timeliness, round_half_up

ISSUED = date(2025, 6, 30)


def plan(days: int | None, *, week20: bool = False, issued: date = ISSUED, outcome: str = "Y") -> AssessmentRecord:
    received = None if days is None else issued - timedelta(days=days)
    return AssessmentRecord(received_on=received, outcome=outcome, outcome_on=issued, week20=week20)


def test_dfe_20_weeks_is_140_days_or_fewer():
    report = compute_timeliness([plan(0), plan(139), plan(140), plan(141)], 2025)
    figures = report.including_exceptions
    assert (figures.plans, figures.within_20_weeks) == (4, 3)
    assert figures.percent_within_20_weeks == 75.0


def test_bands_over_20_up_to_52_weeks_and_over_52_weeks():
    report = compute_timeliness([plan(141), plan(364), plan(365), plan(700)], 2025)
    figures = report.including_exceptions
    assert (figures.within_20_weeks, figures.over_20_up_to_52_weeks, figures.over_52_weeks) == (0, 2, 2)


def test_population_is_plans_issued_in_the_calendar_year():
    records = [
        plan(100, issued=date(2025, 1, 1)), plan(100, issued=date(2025, 12, 31)),
        plan(100, issued=date(2024, 12, 31)), plan(100, issued=date(2026, 1, 1)),
        plan(100, outcome="N"), plan(100, outcome="A"), plan(100, outcome="H"), plan(100, outcome="W"),
    ]
    assert compute_timeliness(records, 2025).including_exceptions.plans == 2


def test_excluding_exceptions_drops_week20_from_numerator_and_denominator():
    records = [plan(100), plan(200), plan(100, week20=True), plan(300, week20=True)]
    report = compute_timeliness(records, 2025)
    assert (report.including_exceptions.plans, report.including_exceptions.within_20_weeks) == (4, 2)
    assert (report.excluding_exceptions.plans, report.excluding_exceptions.within_20_weeks) == (2, 1)
    assert report.exceptions == 2


def test_a_plan_without_usable_received_date_stays_in_the_denominator():
    records = [plan(100), plan(None), plan(-5)]  # missing, and received after the issue date
    figures = compute_timeliness(records, 2025).including_exceptions
    assert (figures.plans, figures.within_20_weeks, figures.no_usable_received_date) == (3, 1, 2)
    assert figures.percent_within_20_weeks == 33.3
    assert (figures.over_20_up_to_52_weeks, figures.over_52_weeks) == (0, 0)
    assert figures.mean_weeks_to_issue == round_half_up(Fraction(100, 7))


def test_plans_without_a_readable_issue_date_are_counted_apart():
    records = [plan(100), AssessmentRecord(date(2025, 1, 1), "Y", None, False)]
    report = compute_timeliness(records, 2025)
    assert report.including_exceptions.plans == 1 and report.unusable_issue_dates == 1


def test_mean_weeks_to_issue():
    figures = compute_timeliness([plan(70), plan(140), plan(210)], 2025).including_exceptions
    assert figures.mean_weeks_to_issue == 20.0
    assert compute_timeliness([plan(100), plan(101)], 2025).including_exceptions.mean_weeks_to_issue == 14.4


def test_no_plans_gives_no_percentages():
    report = compute_timeliness([], 2025)
    assert report.including_exceptions.percent_within_20_weeks is None
    assert report.including_exceptions.mean_weeks_to_issue is None
    assert report.to_dict()["excluding_exceptions"]["plans"] == 0


@pytest.mark.parametrize("fraction,expected", [
    (Fraction(1449 * 100, 2401), 60.3),  # Hertfordshire 2025 (FORMAT check figure)
    (Fraction(43997 * 100, 95411), 46.1),  # England 2025
    (Fraction(39407 * 100, 84866), 46.4),  # England 2024
    (Fraction(6035, 100), 60.4),  # half up, never banker's or float rounding
    (Fraction(1, 8), 0.1),
])
def test_rounding(fraction, expected):
    assert round_half_up(fraction) == expected


def test_hertfordshire_2025_check_figures():
    """FORMAT: 2,631 plans (2,401 without exception), 1,449 of those within 20 weeks = 60.3%."""
    records = ([plan(100)] * 1449 + [plan(200)] * (2401 - 1449)
               + [plan(100, week20=True)] * 100 + [plan(300, week20=True)] * (2631 - 2401 - 100))
    report = compute_timeliness(records, 2025)
    assert report.including_exceptions.plans == 2631
    assert report.excluding_exceptions.plans == 2401
    assert report.excluding_exceptions.within_20_weeks == 1449
    assert report.excluding_exceptions.percent_within_20_weeks == 60.3
    assert report.exceptions == 230
