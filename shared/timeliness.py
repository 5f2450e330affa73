"""The DfE 20-week timeliness measure, whatever the data comes from (an SEN2 return read by
intake, or the deadlines service's own records of requests and issued plans).

As the DfE publishes it (see the SEN2 FORMAT notes):

- population: plans issued (AssessmentOutcome = Y) whose issue date falls in the calendar year;
- within 20 weeks: issue date - request received date <= 140 days;
- excluding exceptions: plans with an exception (SEN2 Week20 = 1) leave numerator and denominator;
- a plan with no usable received date (missing, unreadable, or after the issue date) stays in the
  denominator and never counts as within 20 weeks, nor in a band or the mean;
- bands: over 20 weeks up to 52 weeks (141 to 364 days) and over 52 weeks (365 days or more);
- mean weeks to issue: mean of (issue date - received date) / 7 over plans with a usable date.

Percentages and means are rounded half up to one decimal place. Each figure keeps the cases
behind it (opaque case ids, never names), and a year with no plans says so, naming the years
that do hold plans (the SEN2 return called "2024" reports plans issued in 2023).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True)
class IssuedPlan:
    """One issued plan as the measure needs it."""

    case_ref: str | None  # an opaque case id (or a position in a file); never a name or a UPN
    received_on: date | None
    issued_on: date | None  # None: issued, but the date is unusable
    exception: bool


@dataclass(frozen=True)
class TimelinessFigures:
    """One population's figures (all plans, or plans without an exception)."""

    plans: int
    within_20_weeks: int
    over_20_up_to_52_weeks: int
    over_52_weeks: int
    no_usable_received_date: int
    total_days: int  # over plans with a usable received date
    cases: dict[str, list[str]] = field(default_factory=dict, compare=False)  # figure -> case refs

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
    exceptions: int  # plans issued in the year with an exception (Week20 = 1)
    unusable_issue_dates: int  # plans issued without a usable issue date (any year)
    exception_cases: list[str] = field(default_factory=list, compare=False)
    unusable_issue_date_cases: list[str] = field(default_factory=list, compare=False)
    plans_by_year: dict[int, int] = field(default_factory=dict, compare=False)

    @property
    def warnings(self) -> list[str]:
        if self.including_exceptions.plans:
            return []
        held = ", ".join(f"{y} ({n:,})" for y, n in sorted(self.plans_by_year.items()))
        hint = f"; the data holds plans issued in {held}" if held else "; the data holds no issued plans at all"
        return [f"no plans were issued in {self.year}{hint} (an SEN2 return reports the plans issued in the "
                f"calendar year before its collection year: the 2024 return holds plans issued in 2023)"]

    def cases(self) -> dict[str, Any]:
        """The cases behind each figure."""
        return {
            "including_exceptions": self.including_exceptions.cases,
            "excluding_exceptions": self.excluding_exceptions.cases,
            "exceptions": self.exception_cases,
            "plans_with_unusable_issue_date": self.unusable_issue_date_cases,
        }

    def to_dict(self, with_cases: bool = False) -> dict[str, Any]:
        out = {
            "year": self.year,
            "lea": self.lea,
            "including_exceptions": self.including_exceptions.to_dict(),
            "excluding_exceptions": self.excluding_exceptions.to_dict(),
            "exceptions": self.exceptions,
            "plans_with_unusable_issue_date": self.unusable_issue_dates,
        }
        if self.warnings:
            out["warnings"] = self.warnings
        if with_cases:
            out["cases"] = self.cases()
        return out


class _Tally:
    """One population's running figures; ``n`` identical plans count at once, and the cases behind
    each figure are kept only when ``keep_cases`` (a count of plans by date pair has no cases)."""

    def __init__(self, keep_cases: bool = True) -> None:
        self.plans = self.within = self.band_52 = self.over_52 = self.untimed = self.days = 0
        self.keep_cases = keep_cases
        self.cases: dict[str, list[str]] = {"plans": [], "within_20_weeks": [], "over_20_up_to_52_weeks": [],
                                            "over_52_weeks": [], "no_usable_received_date": []}

    def add(self, ref: str | None, received: date | None, issued: date, n: int = 1) -> None:
        self.plans += n
        refs = [ref or "?"] * n if self.keep_cases else None
        if refs:
            self.cases["plans"] += refs
        if received is None or received > issued:
            self.untimed += n
            if refs:
                self.cases["no_usable_received_date"] += refs
            return
        days = (issued - received).days
        self.days += days * n
        if days <= WITHIN_DAYS:
            self.within += n
            figure = "within_20_weeks"
        elif days <= BAND_52_DAYS:
            self.band_52 += n
            figure = "over_20_up_to_52_weeks"
        else:
            self.over_52 += n
            figure = "over_52_weeks"
        if refs:
            self.cases[figure] += refs

    def figures(self) -> TimelinessFigures:
        return TimelinessFigures(self.plans, self.within, self.band_52, self.over_52, self.untimed, self.days,
                                 self.cases)


Counted = tuple[str | None, date | None, date | None, bool, int]  # (case ref, received, issued, exception, n)


def _measure(groups: Iterable[Counted], year: int, lea: str | None, keep_cases: bool) -> TimelinessReport:
    everyone, without_exceptions = _Tally(keep_cases), _Tally(keep_cases)
    exceptions: list[str] = []
    unusable: list[str] = []
    n_exceptions = n_unusable = 0
    by_year: Counter[int] = Counter()
    for ref, received_on, issued_on, exception, n in groups:
        if issued_on is None:
            n_unusable += n
            if keep_cases:
                unusable += [ref or "?"] * n
            continue
        by_year[issued_on.year] += n
        if issued_on.year != year:
            continue
        everyone.add(ref, received_on, issued_on, n)
        if exception:
            n_exceptions += n
            if keep_cases:
                exceptions += [ref or "?"] * n
        else:
            without_exceptions.add(ref, received_on, issued_on, n)
    return TimelinessReport(year, lea, everyone.figures(), without_exceptions.figures(), n_exceptions,
                            n_unusable, exceptions, unusable, dict(by_year))


def timeliness(plans: Iterable[IssuedPlan], year: int, lea: str | None = None) -> TimelinessReport:
    """The 20-week figures for plans issued in calendar ``year``."""
    return _measure(((p.case_ref, p.received_on, p.issued_on, p.exception, 1) for p in plans), year, lea, True)


def timeliness_of(plans: Iterable[tuple[date | None, date | None, bool]], year: int,
                  lea: str | None = None) -> TimelinessReport:
    """``timeliness`` from (received on, issued on, under an exception) of each issued plan, when the
    cases behind the figures are not wanted; an issue date of None is an unusable issue date."""
    return timeliness_counted(((received, issued, exception, 1) for received, issued, exception in plans), year, lea)


def timeliness_counted(groups: Iterable[tuple[date | None, date | None, bool, int]], year: int,
                       lea: str | None = None) -> TimelinessReport:
    """``timeliness_of`` from (received on, issued on, under an exception, how many plans) of groups of
    identical plans (a database's count), counting each group once."""
    return _measure(((None, received, issued, exception, n) for received, issued, exception, n in groups), year, lea,
                    False)


def monthly_figures(plans: Iterable[tuple[date | None, date | None, bool]],
                    months: list[tuple[int, int]]) -> list[tuple[int, int, TimelinessFigures]]:
    """The figures (including exceptions) of the plans issued in each (year, month), in that order."""
    return monthly_counted(((received, issued, exception, 1) for received, issued, exception in plans), months)


def monthly_counted(groups: Iterable[tuple[date | None, date | None, bool, int]],
                    months: list[tuple[int, int]]) -> list[tuple[int, int, TimelinessFigures]]:
    """``monthly_figures`` of groups of identical plans (received on, issued on, exception, how many)."""
    tallies = {m: _Tally(keep_cases=False) for m in months}
    for received_on, issued_on, _, n in groups:
        if issued_on is not None and (tally := tallies.get((issued_on.year, issued_on.month))) is not None:
            tally.add(None, received_on, issued_on, n)
    return [(y, m, tallies[(y, m)].figures()) for y, m in months]


def last_months(today: date, n: int = 12) -> list[tuple[int, int]]:
    """The n calendar months up to and including today's, oldest first."""
    index = today.year * 12 + today.month - 1
    return [((i // 12), (i % 12) + 1) for i in range(index - n + 1, index + 1)]
