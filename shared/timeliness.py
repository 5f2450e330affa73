"""The DfE 20-week timeliness figures, as the DfE counts them, from any source of issued plans
(an SEN2 return in intake, the deadlines service's plan.final deadlines on the web dashboard).

- population: plans issued (AssessmentOutcome = Y) whose issue date falls in the calendar year;
- within 20 weeks: issue date - received date <= 140 days;
- excluding exceptions: plans under an exception (SEN2 Week20 = 1) leave numerator and denominator;
- a plan with no usable received date (missing, unreadable, or after the issue date) stays in the
  denominator and never counts as within 20 weeks, nor in a band or the mean;
- bands: over 20 weeks up to 52 weeks (141 to 364 days) and over 52 weeks (365 days or more);
- mean weeks to issue: mean of (issue date - received date) / 7 over plans with a usable date.

Percentages and means are rounded half up to one decimal place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

#: England's figure for plans issued in 2025 within 20 weeks, including exceptions (DfE, SEN2 2026).
NATIONAL_PERCENT_2025 = 46.1

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


def timeliness_of(plans: Iterable[tuple[date | None, date | None, bool]], year: int,
                  lea: str | None = None) -> TimelinessReport:
    """The figures for plans issued in calendar ``year``, from (received on, issued on, under an
    exception) of each issued plan; an issue date of None is an unusable issue date."""
    everyone, without_exceptions = _Tally(), _Tally()
    exceptions = unusable = 0
    for received_on, issued_on, exception in plans:
        if issued_on is None:
            unusable += 1
            continue
        if issued_on.year != year:
            continue
        everyone.add(received_on, issued_on)
        if exception:
            exceptions += 1
        else:
            without_exceptions.add(received_on, issued_on)
    return TimelinessReport(year, lea, everyone.figures(), without_exceptions.figures(), exceptions, unusable)


def monthly_figures(plans: Iterable[tuple[date | None, date | None, bool]],
                    months: list[tuple[int, int]]) -> list[tuple[int, int, TimelinessFigures]]:
    """The figures (including exceptions) of the plans issued in each (year, month), in that order."""
    tallies = {m: _Tally() for m in months}
    for received_on, issued_on, _ in plans:
        if issued_on is not None and (tally := tallies.get((issued_on.year, issued_on.month))) is not None:
            tally.add(received_on, issued_on)
    return [(y, m, tallies[(y, m)].figures()) for y, m in months]


def last_months(today: date, n: int = 12) -> list[tuple[int, int]]:
    """The n calendar months up to and including today's, oldest first."""
    index = today.year * 12 + today.month - 1
    return [((i // 12), (i % 12) + 1) for i in range(index - n + 1, index + 1)]
