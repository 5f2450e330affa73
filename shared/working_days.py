"""Working days in England (law file C7), shared by the deadlines engine and the notifier's
digests: Saturdays, Sundays, Christmas Day, Good Friday and the bank holidays of England and Wales
from the maintained ``holidays`` library, with an override file for newly announced ones.

The library's dates for every year the calendar knows are shipped as a table written from it
(shared/bank_holidays_england.py; ``python -m shared.working_days`` rewrites it, and a test fails
when it differs from the pinned library), because loading the library costs a fifth of a second of
CPU (it imports every country it knows) for a command that otherwise starts in less.

Precomputed as a sorted array of date ordinals, so adding N working days is one ``bisect`` and one
index, whatever N is. Pure: nothing here reads a clock.
"""

from __future__ import annotations

import json
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import yaml

# The table is built for these years up front and widened on demand for dates outside it.
_DEFAULT_FIRST_YEAR = 2000
_DEFAULT_LAST_YEAR = 2060
# The years the calendar knows: the holidays library has Good Friday up to 2100.
CALENDAR_YEARS = range(1900, 2101)
# The furthest a deadline or its reminders fall after the dates that start it (12 months for an annual
# review, then working days and reminders): events must leave this much of the calendar after them.
DEADLINE_HORIZON_YEARS = 2
# The years an event's dates may have: intake refuses others as typing errors, the deadlines service
# records them as a data-quality problem on the case. One range for both, so what intake accepts the
# engine can compute.
ACCEPTED_YEARS = range(CALENDAR_YEARS.start, CALENDAR_YEARS.stop - DEADLINE_HORIZON_YEARS)


class CalendarError(ValueError):
    """A calendar cannot be built (bad override file, a library without Good Friday, ...)."""


class DateOutOfRange(CalendarError):
    """A date beyond the years the calendar knows (CALENDAR_YEARS): a data problem, not a crash."""

    safe_to_show = True  # names a date, never a person


def parse_date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise CalendarError(f"{where}: {value!r} is not an ISO date") from exc
    raise CalendarError(f"{where}: {value!r} is not a date")


# libyaml's safe loader when PyYAML was built with it (the same documents, about 10x faster to read:
# rule sets and the term calendar are read at every start of `ehc deadlines compute`), else the pure-Python one.
YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_structured(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    return yaml.load(text, Loader=YAML_LOADER)  # noqa: S506 (a safe loader)


class WorkingDayCalendar:
    """Working days in England (law file C7): every day except Saturday, Sunday, Christmas Day,
    Good Friday and the bank holidays of England and Wales.

    Bank holidays come from the maintained ``holidays`` library (``GB``, subdivision ``ENG``);
    ``extra_holidays`` and ``removed_holidays`` override it (a newly announced bank holiday before
    the library knows it, or a library mistake). Christmas Day is added whatever the library says,
    because C7 names it on its own; a year without a Good Friday in the library is an error.
    """

    __slots__ = ("_extra", "_removed", "_first_year", "_last_year", "_base", "_is_working", "_ordinals")

    def __init__(
        self,
        extra_holidays: Iterable[date] = (),
        removed_holidays: Iterable[date] = (),
        first_year: int = _DEFAULT_FIRST_YEAR,
        last_year: int = _DEFAULT_LAST_YEAR,
    ) -> None:
        self._extra = frozenset(extra_holidays)
        self._removed = frozenset(removed_holidays)
        self._build(first_year, last_year)

    @classmethod
    def from_override_file(cls, path: str | Path | None) -> WorkingDayCalendar:
        """Build the calendar with an override file (YAML or JSON).

        Accepted shapes: a list of extra non-working dates, or a mapping with ``extra`` and/or
        ``removed`` lists. ``None`` gives the library's calendar alone.
        """
        if path is None:
            return cls()
        p = Path(path)
        raw = read_structured(p)
        if raw is None:
            return cls()
        extra: list[Any]
        removed: list[Any]
        if isinstance(raw, list):
            extra, removed = raw, []
        elif isinstance(raw, dict):
            unknown = set(raw) - {"extra", "removed", "note", "notes"}
            if unknown:
                raise CalendarError(f"{p}: unknown keys {sorted(unknown)} (expected extra, removed)")
            extra, removed = raw.get("extra") or [], raw.get("removed") or []
        else:
            raise CalendarError(f"{p}: expected a list of dates or a mapping with extra/removed")
        return cls(
            extra_holidays=[parse_date(v, f"{p}: extra") for v in extra],
            removed_holidays=[parse_date(v, f"{p}: removed") for v in removed],
        )

    # -- table --------------------------------------------------------------------------------

    def _build(self, first_year: int, last_year: int) -> None:
        closed: set[date] = set()
        for year in range(first_year, last_year + 1):
            closed.update(_bank_holidays(year))
            closed.add(date(year, 12, 25))  # C7 names Christmas Day whether or not a bank holiday
        closed |= self._extra
        closed -= self._removed
        start = date(first_year, 1, 1)
        end = date(last_year, 12, 31)
        base = start.toordinal()
        flags = bytearray(end.toordinal() - base + 1)
        ordinals = array("l")
        closed_ordinals = {d.toordinal() for d in closed}
        weekday = start.weekday()
        for i in range(len(flags)):
            o = base + i
            if (weekday + i) % 7 < 5 and o not in closed_ordinals:
                flags[i] = 1
                ordinals.append(o)
        self._first_year, self._last_year = first_year, last_year
        self._base, self._is_working, self._ordinals = base, flags, ordinals

    def _cover(self, day: date, margin_years: int = 1) -> None:
        # Widening is idempotent and only ever adds years, so the calendar stays a pure function
        # of its configuration: results never depend on which dates were asked first.
        if self._first_year < day.year < self._last_year:
            return
        if day.year not in CALENDAR_YEARS:
            raise DateOutOfRange(f"{day} is beyond the working-day calendar (years {CALENDAR_YEARS.start} to "
                                 f"{CALENDAR_YEARS.stop - 1})")
        first = max(min(self._first_year, day.year - margin_years), CALENDAR_YEARS.start)
        last = min(max(self._last_year, day.year + margin_years), CALENDAR_YEARS.stop - 1)
        if (first, last) != (self._first_year, self._last_year):
            self._build(first, last)

    # -- queries ------------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        i = day.toordinal() - self._base
        if not 0 <= i < len(self._is_working):
            self._cover(day)
            i = day.toordinal() - self._base
        return self._is_working[i] == 1

    def add_working_days(self, start: date, n: int, beginning_with: bool = False) -> date:
        """The n-th working day counted from ``start`` (law file C7).

        ``beginning_with=False`` ("within n working days of X"): the n-th working day after X.
        ``beginning_with=True`` ("within n working days beginning with X"): X is day 1 when it is
        a working day, otherwise day 1 is the next working day. ``n=0`` gives ``start`` itself.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        if n == 0:
            return start
        self._cover(start, margin_years=2 + n // 200)
        o = start.toordinal()
        i = bisect_left(self._ordinals, o) if beginning_with else bisect_right(self._ordinals, o)
        j = i + n - 1
        if j >= len(self._ordinals):  # past the table: widen it, up to the calendar's last year
            if self._last_year >= CALENDAR_YEARS.stop - 1:
                raise DateOutOfRange(f"{n} working days from {start} fall beyond the working-day calendar "
                                     f"(years {CALENDAR_YEARS.start} to {CALENDAR_YEARS.stop - 1})")
            self._build(self._first_year, min(self._last_year + 2 + n // 200, CALENDAR_YEARS.stop - 1))
            return self.add_working_days(start, n, beginning_with)
        return date.fromordinal(self._ordinals[j])

    def next_working_day(self, day: date, inclusive: bool = False) -> date:
        """The first working day after ``day`` (or ``day`` itself when ``inclusive`` and working)."""
        return self.add_working_days(day, 1, beginning_with=inclusive)

    def appeal_roll_over(self, due: date) -> date:
        """C9 (HESC Rules 12(3)): a due day from 25 December to 1 January moves to the first working
        day after 1 January; a due day in August to the first working day after 31 August; any
        other non-working day to the next working day."""
        month = due.month
        if month not in (1, 8, 12) and self.is_working_day(due):
            return due  # the usual case, answered by one table lookup
        if due.month == 12 and due.day >= 25:
            return self.next_working_day(date(due.year + 1, 1, 1))
        if due.month == 1 and due.day == 1:
            return self.next_working_day(due)
        if due.month == 8:
            return self.next_working_day(date(due.year, 8, 31))
        return self.next_working_day(due, inclusive=True)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days ``d`` with ``start < d <= end`` (0 when ``end <= start``)."""
        if end <= start:
            return 0
        self._cover(start)
        self._cover(end)
        return bisect_right(self._ordinals, end.toordinal()) - bisect_right(self._ordinals, start.toordinal())


# -- the bank holidays of England and Wales, from the holidays library --------------------------------


def library_bank_holidays(years: range) -> dict[int, list[date]]:
    """The holidays library's bank holidays of England and Wales (``GB``, subdivision ``ENG``), year by
    year, sorted; a year without a Good Friday is an error."""
    import holidays

    lib = holidays.country_holidays("GB", subdiv="ENG", years=years)
    out: dict[int, list[date]] = {year: [] for year in years}
    for day in sorted(lib.keys()):
        out.setdefault(day.year, []).append(day)
    for year in years:
        if not any(d.year == year and "Good Friday" in name for d, name in lib.items()):
            raise CalendarError(f"the holidays library has no Good Friday in {year}")
    return out


def render_bank_holiday_table() -> str:
    """The source of shared/bank_holidays_england.py from the installed holidays library."""
    import holidays

    rows = "".join(f"    {year}: {' '.join(d.strftime('%m%d') for d in days)!r},\n"
                   for year, days in library_bank_holidays(CALENDAR_YEARS).items())
    return (
        '"""GENERATED by `python -m shared.working_days` from the holidays library (GB, subdivision ENG):\n'
        "do not edit. The bank holidays of England and Wales of each year the working-day calendar knows,\n"
        'as MMDD (shared/working_days.py reads it; a test fails when it differs from the library)."""\n\n'
        f"HOLIDAYS_VERSION = {holidays.__version__!r}\n\n"
        f"BANK_HOLIDAYS: dict[int, str] = {{\n{rows}}}\n"
    )


def _bank_holidays(year: int) -> list[date]:
    from shared.bank_holidays_england import BANK_HOLIDAYS

    table = BANK_HOLIDAYS.get(year)
    if table is None:  # not a year the calendar knows (_cover refuses those first)
        return library_bank_holidays(range(year, year + 1))[year]
    return [date(year, int(mmdd[:2]), int(mmdd[2:])) for mmdd in table.split()]


if __name__ == "__main__":
    Path(__file__).with_name("bank_holidays_england.py").write_text(render_bank_holiday_table())
