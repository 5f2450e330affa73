"""Calendars the engine is given as configuration: working days (C7, C9) and term dates (C8, E1/E2).

Both are plain immutable-looking objects built once and passed to ``compute``; nothing here reads a
clock. Working days are precomputed as a sorted array of date ordinals, so adding N working days
is one ``bisect`` and one index, whatever N is.
"""

from __future__ import annotations

import json
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import holidays
import yaml

_CALENDARS_DIR = Path(__file__).parent / "calendars"
DEFAULT_TERMS_PATH = _CALENDARS_DIR / "default_terms.yaml"

# The table is built for these years up front and widened on demand for dates outside it.
_DEFAULT_FIRST_YEAR = 2000
_DEFAULT_LAST_YEAR = 2060


class CalendarError(ValueError):
    """A calendar cannot be built (bad override file, a library without Good Friday, ...)."""


def _parse_date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise CalendarError(f"{where}: {value!r} is not an ISO date") from exc
    raise CalendarError(f"{where}: {value!r} is not a date")


def _read_structured(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    return yaml.safe_load(text)


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
        raw = _read_structured(p)
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
            extra_holidays=[_parse_date(v, f"{p}: extra") for v in extra],
            removed_holidays=[_parse_date(v, f"{p}: removed") for v in removed],
        )

    # -- table --------------------------------------------------------------------------------

    def _build(self, first_year: int, last_year: int) -> None:
        lib = holidays.country_holidays("GB", subdiv="ENG", years=range(first_year, last_year + 1))
        closed: set[date] = set(lib.keys())
        for year in range(first_year, last_year + 1):
            if not any(d.year == year and "Good Friday" in name for d, name in lib.items()):
                raise CalendarError(f"the holidays library has no Good Friday in {year}")
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
        first = min(self._first_year, day.year - margin_years)
        last = max(self._last_year, day.year + margin_years)
        self._build(max(first, 1), min(last, 9998))

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
        if j >= len(self._ordinals):  # pragma: no cover - _cover's margin makes this unreachable
            self._build(self._first_year, self._last_year + 2 + n // 200)
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


@dataclass(frozen=True, slots=True)
class Closure:
    """A setting closed from ``first_day`` to ``last_day`` inclusive (it re-opens the day after)."""

    first_day: date
    last_day: date
    name: str = ""

    @property
    def length_days(self) -> int:
        return (self.last_day - self.first_day).days + 1


class TermCalendar:
    """Term closures of settings (law file C8): a default LA calendar plus per-setting overrides.

    E1/E2 (Regs 10(4)(a)-(b), 5(4)(a)): advice asked of a setting "in the window from one week
    before the first day of a closure of at least 4 continuous weeks to one week before it
    re-opens". A setting with an override uses only its own closures (an academy or an early
    years provider keeps its own dates).
    """

    __slots__ = ("_windows", "_default", "name")

    MIN_CLOSURE_DAYS = 28  # "at least 4 continuous weeks"
    LEAD_DAYS = 7  # "one week before"

    def __init__(
        self,
        default_closures: Sequence[Closure],
        setting_closures: Mapping[str, Sequence[Closure]] | None = None,
        name: str = "",
    ) -> None:
        self.name = name
        self._default = self._windows_of(default_closures)
        self._windows = {k: self._windows_of(v) for k, v in (setting_closures or {}).items()}

    @classmethod
    def _windows_of(cls, closures: Sequence[Closure]) -> tuple[tuple[int, int, Closure], ...]:
        windows = []
        for c in closures:
            if c.last_day < c.first_day:
                raise CalendarError(f"closure {c.name or c.first_day}: last_day before first_day")
            if c.length_days >= cls.MIN_CLOSURE_DAYS:
                reopens = c.last_day + timedelta(days=1)
                start = c.first_day - timedelta(days=cls.LEAD_DAYS)
                end = reopens - timedelta(days=cls.LEAD_DAYS)
                windows.append((start.toordinal(), end.toordinal(), c))
        windows.sort(key=lambda w: (w[0], w[1]))
        return tuple(windows)

    def closure_window_for(self, provider_id: str | None, day: date) -> Closure | None:
        """The long closure whose E1/E2 window contains ``day`` for that setting, if any."""
        windows = self._windows.get(provider_id, self._default) if provider_id else self._default
        o = day.toordinal()
        for start, end, closure in windows:
            if start > o:
                break
            if o <= end:
                return closure
        return None

    def closure_window_contains(self, provider_id: str | None, day: date) -> bool:
        """True when advice asked of that setting on ``day`` falls in an E1/E2 window."""
        return self.closure_window_for(provider_id, day) is not None

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> TermCalendar:
        """Load a term calendar (YAML or JSON); ``None`` loads the shipped example calendar."""
        p = Path(path) if path is not None else DEFAULT_TERMS_PATH
        raw = _read_structured(p)
        if not isinstance(raw, dict):
            raise CalendarError(f"{p}: expected a mapping with 'closures' and optional 'settings'")
        default = _closures(raw.get("closures") or [], f"{p}: closures")
        settings_raw = raw.get("settings") or {}
        if not isinstance(settings_raw, dict):
            raise CalendarError(f"{p}: 'settings' must map provider ids to closures")
        settings: dict[str, list[Closure]] = {}
        for provider_id, entry in settings_raw.items():
            items = entry.get("closures") if isinstance(entry, dict) else entry
            settings[str(provider_id)] = _closures(items or [], f"{p}: settings.{provider_id}")
        return cls(default, settings, name=str(raw.get("name", "")))


def _closures(items: Any, where: str) -> list[Closure]:
    if not isinstance(items, list):
        raise CalendarError(f"{where}: expected a list")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "first_day" not in item or "last_day" not in item:
            raise CalendarError(f"{where}[{i}]: expected first_day and last_day")
        out.append(
            Closure(
                _parse_date(item["first_day"], f"{where}[{i}].first_day"),
                _parse_date(item["last_day"], f"{where}[{i}].last_day"),
                str(item.get("name", "")),
            )
        )
    return out
