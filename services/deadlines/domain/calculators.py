"""Date arithmetic of the counting conventions (law file section C) and the named calculators.

Most rules are a period and a convention, applied by :func:`apply_convention`. A few need a little
logic beyond that; the rule set names them (``calculator: ...``) and they live here, small and pure.
Each calculator returns the due date and a short plain-English note saying which branch applied.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from shared.dates import add_months

from .calendar import WorkingDayCalendar

ONE_DAY = timedelta(days=1)
_MEMO_SIZE = 1 << 16  # distinct trigger dates per rule; bounded so a long-running service stays small


def months_starting_with(day: date, months: int) -> date:
    """Law file C3 (england.md#L130-L135): the last day of "a period of N months starting with X".

    The period ends the day before the day corresponding to X, N months later; where that month
    has no such day, the corresponding day is the 1st of the following month, so the period ends
    on the target month's last day (2027-03-01 + 12 gives 2028-02-29; 2028-02-29 + 12 gives
    2029-02-28; 3 months starting with 2027-05-01 gives 2027-07-31).
    """
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    d = day.day
    if d > 28:
        last = monthrange(year, month)[1]
        if d > last:  # no corresponding day: it is the 1st of the next month, so end on the last day
            return date(year, month, last)
    return date(year, month, d) - ONE_DAY


def months_starting_with_2014(day: date, months: int) -> date:
    """C3 as england-2014.1 computed it: add_months(X - 1 day, N). It ends a period starting with
    the 1st of a month after a shorter month one day early (law file C3, "Corrected"); kept only
    so that clocks started under that version keep their dates (convention ``C3.2014``)."""
    return add_months(day - ONE_DAY, months)


@dataclass(frozen=True, slots=True)
class Period:
    """A period as the law states it: ``amount`` of ``unit``.

    ``unit`` is ``days``, ``weeks``, ``months``, ``working_days`` or ``fixed_date`` (then ``month``
    and ``day`` name the date in the trigger's calendar year, e.g. 15 February for C5).
    ``beginning_with`` is C7's "beginning with X" (X counts as day 1).
    """

    amount: int
    unit: str
    beginning_with: bool = False
    month: int | None = None
    day: int | None = None

    def days(self) -> int:
        if self.unit == "days":
            return self.amount
        if self.unit == "weeks":
            return 7 * self.amount
        raise ValueError(f"a period in {self.unit} has no fixed number of days")


CONVENTIONS = ("C1", "C2", "C3", "C3.2014", "C4", "C5", "C6w", "C6m", "C7", "C4+C9")


def apply_convention(convention: str, period: Period, trigger: date, calendar: WorkingDayCalendar) -> date:
    """The due date (last lawful day) of ``period`` counted from ``trigger`` under ``convention``.

    C1 "within N weeks/days of X": X + 7N / X + N (X not counted).
    C2 "at least N days beginning with X": X + (N - 1).
    C3 "N months starting with X": the day before the corresponding day N months later
    (:func:`months_starting_with`); C3.2014 the earlier formula add_months(X - 1 day, N).
    C4 "N months after X": add_months(X, N). C4+C9 then rolls over as appeal deadlines do.
    C5 "before DATE": DATE - 1 day, DATE in the trigger's calendar year.
    C6w / C6m "at least 2 weeks / N months before T": T - 14 days / add_months(T, -N).
    C7 working days: the N-th working day after X, or beginning with X.
    """
    if convention == "C1":
        return trigger + timedelta(days=period.days())
    if convention == "C2":
        return trigger + timedelta(days=period.days() - 1)
    if convention == "C3":
        return months_starting_with(trigger, period.amount)
    if convention == "C3.2014":
        return months_starting_with_2014(trigger, period.amount)
    if convention == "C4":
        return add_months(trigger, period.amount)
    if convention == "C4+C9":
        return calendar.appeal_roll_over(add_months(trigger, period.amount))
    if convention == "C5":
        if period.month is None or period.day is None:
            raise ValueError("C5 needs a fixed_date period with month and day")
        return date(trigger.year, period.month, period.day) - ONE_DAY
    if convention == "C6w":
        return trigger - timedelta(days=period.days())
    if convention == "C6m":
        return add_months(trigger, -period.amount)
    if convention == "C7":
        if period.unit != "working_days":
            raise ValueError("C7 needs a period in working_days")
        return calendar.add_working_days(trigger, period.amount, period.beginning_with)
    raise ValueError(f"unknown counting convention {convention!r}")


def fixed_shift(convention: str, period: Period) -> timedelta | None:
    """The constant shift from trigger to due date for C1, C2 and C6w (None otherwise): the engine
    adds it inline, the cheapest due-date computation there is."""
    if convention not in ("C1", "C2", "C6w") or period.unit not in ("days", "weeks"):
        return None
    days = period.days()
    if convention == "C2":
        return timedelta(days=days - 1)
    if convention == "C6w":
        return timedelta(days=-days)
    return timedelta(days=days)


def calendar_free_due(convention: str, period: Period) -> Callable[[date], date] | None:
    """A fast due-date function for conventions that need no working-day calendar, or None.

    Same results as :func:`apply_convention`; built once per rule at load time because computing
    due dates is the engine's hot path.
    """
    if convention in ("C1", "C2", "C6w"):
        days = period.days()
        if convention == "C2":
            delta = timedelta(days=days - 1)
        elif convention == "C6w":
            delta = timedelta(days=-days)
        else:
            delta = timedelta(days=days)

        def shift(d: date) -> date:
            return d + delta

        return shift
    if convention == "C3":
        n = period.amount
        return lambda d: months_starting_with(d, n)
    if convention == "C3.2014":
        n = period.amount
        return lambda d: months_starting_with_2014(d, n)
    if convention in ("C4", "C6m"):
        months = -period.amount if convention == "C6m" else period.amount
        return lambda d: add_months(d, months)
    if convention == "C5" and period.month is not None and period.day is not None:
        month, day = period.month, period.day

        def before(d: date) -> date:
            return date(d.year, month, day) - ONE_DAY

        return before
    return None


# -- named calculators ------------------------------------------------------------------------

CalculatorFn = Callable[
    [date, Mapping[str, Any], Period, Mapping[str, Any], WorkingDayCalendar, Sequence[date]],
    tuple[date, str],
]


def transfer_send_plan(
    trigger: date,
    data: Mapping[str, Any],
    period: Period,
    params: Mapping[str, Any],
    calendar: WorkingDayCalendar,
    extra_dates: Sequence[date],
) -> tuple[date, str]:
    """transfer.send_plan, Regs 15(2): the old LA transfers the plan on the day of the move; if it
    became aware of the move less than 15 working days before it, within 15 working days beginning
    with the day it became aware (C7).

    ``trigger`` is ``aware_on``. "Aware less than 15 working days before the move" is read as: the
    15-working-day period beginning with ``aware_on`` does not end before ``move_on``.
    """
    move_on: date = data["move_on"]
    late_limit = calendar.add_working_days(trigger, period.amount, beginning_with=True)
    if late_limit < move_on:
        return move_on, "on the day of the move (aware at least 15 working days before it)"
    return late_limit, (
        f"aware less than {period.amount} working days before the move: "
        f"within {period.amount} working days beginning with the day the LA became aware"
    )


def transfer_review(
    trigger: date,
    data: Mapping[str, Any],
    period: Period,
    params: Mapping[str, Any],
    calendar: WorkingDayCalendar,
    extra_dates: Sequence[date],
) -> tuple[date, str]:
    """transfer.review, Regs 15(5): the later of 12 months starting with the date the plan was made
    or last reviewed, and 3 months starting with the transfer (both C3). ``trigger`` is
    ``transfer_on``; the plan keeps its original date (Regs 15(3)). ``params.c3: "2014"`` keeps
    england-2014.1's C3 formula (C3.2014) for its clocks."""
    review_months = int(params.get("review_months", 12))
    c3 = months_starting_with_2014 if str(params.get("c3", "")) == "2014" else months_starting_with
    last: date = data.get("last_reviewed_on") or data["plan_made_on"]
    by_review = c3(last, review_months)
    by_transfer = c3(trigger, period.amount)
    if by_review >= by_transfer:
        label = "last reviewed" if data.get("last_reviewed_on") else "made"
        return by_review, f"{review_months} months starting with the day the plan was {label} (the later date)"
    return by_transfer, f"{period.amount} months starting with the transfer (the later date)"


def appeal_deadline(
    trigger: date,
    data: Mapping[str, Any],
    period: Period,
    params: Mapping[str, Any],
    calendar: WorkingDayCalendar,
    extra_dates: Sequence[date],
) -> tuple[date, str]:
    """appeal.deadline, HESC Rules 20(1)(c) and 12(3): the later of 2 months after the decision
    notice and 1 month after a mediation certificate (C4), then rolled over by C9.

    ``trigger`` is the notice date; ``extra_dates`` are the dates of mediation certificates issued
    for this notice (the latest one counts)."""
    certificate = max(extra_dates) if extra_dates else None
    return _appeal_due(calendar, trigger, period.amount, certificate, int(params.get("certificate_months", 1)))


@lru_cache(maxsize=_MEMO_SIZE)
def _appeal_due(
    calendar: WorkingDayCalendar, notice: date, months: int, certificate: date | None, certificate_months: int
) -> tuple[date, str]:
    # Memoised: pure in its arguments (the calendar is hashed by identity and kept alive by the
    # cache, so an entry can never be read for another calendar).
    due = add_months(notice, months)
    note = f"{months} months after the decision notice"
    if certificate is not None:
        by_certificate = add_months(certificate, certificate_months)
        if by_certificate > due:
            due = by_certificate
            note = f"{certificate_months} month after the mediation certificate (later than the notice)"
    rolled = calendar.appeal_roll_over(due)
    if rolled != due:
        note += f"; moved from {due.isoformat()} to the next working day allowed by HESC Rules 12(3)"
    return rolled, note


# The data fields each calculator reads (besides the trigger date), so that callers can memoise
# a calculator's result on exactly its inputs.
CALCULATOR_INPUTS: Mapping[str, tuple[str, ...]] = {
    "transfer_send_plan": ("move_on",),
    "transfer_review": ("plan_made_on", "last_reviewed_on"),
    "appeal_deadline": (),
}

CALCULATORS: Mapping[str, CalculatorFn] = {
    "transfer_send_plan": transfer_send_plan,
    "transfer_review": transfer_review,
    "appeal_deadline": appeal_deadline,
}
