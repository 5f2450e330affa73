"""The DfE 20-week timeliness figures, computed directly from an SEN2 return.

As the DfE publishes them (see the SEN2 FORMAT notes):

- population: assessments with AssessmentOutcome = Y (plan issued) whose AssessmentOutcomeDate
  falls in the calendar year;
- within 20 weeks: AssessmentOutcomeDate - ReceivedDate <= 140 days;
- excluding exceptions: plans with Week20 = 1 leave numerator and denominator;
- a plan with no usable ReceivedDate (missing, unreadable, or after the issue date) stays in the
  denominator and never counts as within 20 weeks, nor in a band or the mean;
- bands: over 20 weeks up to 52 weeks (141 to 364 days) and over 52 weeks (365 days or more);
- mean weeks to issue: mean of (issue date - ReceivedDate) / 7 over plans with a usable date.

Percentages and means are rounded half up to one decimal place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from services.intake.domain.sen2 import AssessmentRecord, Sen2Header, read_assessment_records

WITHIN_DAYS = 140  # 20 weeks
BAND_52_DAYS = 364  # 52 weeks


def round_half_up(value: Fraction, places: int = 1) -> float:
    """Exact rounding of a fraction (60.35 -> 60.4, never the float surprise)."""
    quantum = Decimal(1).scaleb(-places)
    decimal = Decimal(value.numerator) / Decimal(value.denominator)
    return float(decimal.quantize(quantum, rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class TimelinessFigures:
    """One population's figures (all plans, or plans without an exception)."""

    plans: int
    within_20_weeks: int
    over_20_up_to_52_weeks: int
    over_52_weeks: int
    no_usable_received_date: int
    total_days: int  # over plans with a usable ReceivedDate

    @property
    def percent_within_20_weeks(self) -> float | None:
        return round_half_up(Fraction(100 * self.within_20_weeks, self.plans)) if self.plans else None

    @property
    def mean_weeks_to_issue(self) -> float | None:
        timed = self.plans - self.no_usable_received_date
        return round_half_up(Fraction(self.total_days, 7 * timed)) if timed else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "plans": self.plans,
            "within_20_weeks": self.within_20_weeks,
            "percent_within_20_weeks": self.percent_within_20_weeks,
            "over_20_up_to_52_weeks": self.over_20_up_to_52_weeks,
            "over_52_weeks": self.over_52_weeks,
            "no_usable_received_date": self.no_usable_received_date,
            "mean_weeks_to_issue": self.mean_weeks_to_issue,
        }


@dataclass(frozen=True)
class TimelinessReport:
    year: int
    lea: str | None
    including_exceptions: TimelinessFigures
    excluding_exceptions: TimelinessFigures
    exceptions: int  # plans issued in the year with Week20 = 1
    unusable_issue_dates: int  # AssessmentOutcome Y without a readable AssessmentOutcomeDate

    def to_dict(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "lea": self.lea,
            "including_exceptions": self.including_exceptions.to_dict(),
            "excluding_exceptions": self.excluding_exceptions.to_dict(),
            "exceptions": self.exceptions,
            "plans_with_unusable_issue_date": self.unusable_issue_dates,
        }


class _Tally:
    def __init__(self) -> None:
        self.plans = self.within = self.band_52 = self.over_52 = self.untimed = self.days = 0

    def add(self, received: date | None, issued: date) -> None:
        self.plans += 1
        if received is None or received > issued:
            self.untimed += 1
            return
        days = (issued - received).days
        self.days += days
        if days <= WITHIN_DAYS:
            self.within += 1
        elif days <= BAND_52_DAYS:
            self.band_52 += 1
        else:
            self.over_52 += 1

    def figures(self) -> TimelinessFigures:
        return TimelinessFigures(self.plans, self.within, self.band_52, self.over_52, self.untimed, self.days)


def compute_timeliness(records: Iterable[AssessmentRecord], year: int, lea: str | None = None) -> TimelinessReport:
    """The 20-week figures for plans issued in calendar ``year``."""
    everyone, without_exceptions = _Tally(), _Tally()
    exceptions = unusable = 0
    for record in records:
        if record.outcome != "Y":
            continue
        if record.outcome_on is None:
            unusable += 1
            continue
        if record.outcome_on.year != year:
            continue
        everyone.add(record.received_on, record.outcome_on)
        if record.week20:
            exceptions += 1
        else:
            without_exceptions.add(record.received_on, record.outcome_on)
    return TimelinessReport(year, lea, everyone.figures(), without_exceptions.figures(), exceptions, unusable)


def timeliness_from_file(path: str | os.PathLike[str], year: int) -> TimelinessReport:
    """The figures from an SEN2 XML return or CSV export (folder or zip).

    Raises ``OSError`` when it cannot be read and ``Sen2FormatError`` when it is not a readable return.
    """
    header: Sen2Header | None
    header, records = read_assessment_records(path)
    return compute_timeliness(records, year, header.lea if header else None)
