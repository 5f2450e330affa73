"""Reading dates, times and booleans written by councils' systems.

Every parser raises ``ValueError`` with a message that describes what was expected and never
quotes the value (callers put the message in rejection reasons).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

from shared.working_days import ACCEPTED_YEARS

LONDON = ZoneInfo("Europe/London")

_MONTHS = {name: i for i, name in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
# 2023-11-30, 2023-11-30T00:00:00, 2023-11-30 00:00:00.000, 2023-11-30Z
_TIME = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})" + _TIME + r"(?:Z|[+-]\d{2}:?\d{2})?$", re.ASCII)
# The COLLECT "Blade" export: 2022-Sep-28 00:00:00
_BLADE = re.compile(r"^(\d{4})-([A-Za-z]{3})-(\d{1,2})" + _TIME + "$", re.ASCII)
# Some hand-made files: 28/09/2022
_UK = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$", re.ASCII)

# Dates outside these years are typing errors (0202, 9999) that would break date arithmetic downstream:
# the years the deadlines engine can compute for (shared.working_days).
PLAUSIBLE_YEARS = ACCEPTED_YEARS
TRUE_TEXT = frozenset({"1", "true", "t", "y", "yes"})
FALSE_TEXT = frozenset({"0", "false", "f", "n", "no"})


def parse_sen2_date(text: str) -> date:
    """A date as SEN2 files write it: ``2023-11-30`` (optionally with a time, ignored),
    ``2022-Sep-28 00:00:00`` (COLLECT CSV export) or ``28/09/2022``."""
    value = text.strip()
    match = _ISO.match(value)
    if match:
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    elif match := _BLADE.match(value):
        month_number = _MONTHS.get(match[2].lower())
        if month_number is None:
            raise ValueError("is not a date (unknown month name)")
        year, month, day = int(match[1]), month_number, int(match[3])
    elif match := _UK.match(value):
        year, month, day = int(match[3]), int(match[2]), int(match[1])
    else:
        raise ValueError("is not a date (expected YYYY-MM-DD)")
    try:
        return plausible(date(year, month, day))
    except ValueError as exc:
        raise ValueError(str(exc) if "plausible" in str(exc) else "is not a valid calendar date") from None


def plausible(day: date) -> date:
    """The date itself when its year is in PLAUSIBLE_YEARS; otherwise ValueError."""
    if day.year not in PLAUSIBLE_YEARS:
        raise ValueError(f"is not a plausible date (years {PLAUSIBLE_YEARS.start} to {PLAUSIBLE_YEARS.stop - 1})")
    return day


def parse_sen2_datetime(text: str, tz: tzinfo = LONDON) -> datetime:
    """``2022-05-23T11:14:05`` or ``2022-May-23 11:14:05``; a time without offset is local (``tz``)."""
    value = text.strip()
    match = _BLADE.match(value)
    if match and match[2].lower() in _MONTHS:
        value = f"{match[1]}-{_MONTHS[match[2].lower()]:02d}-{int(match[3]):02d}" + value[match.end(3):]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a date and time (expected ISO 8601)") from None
    plausible(moment.date())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def parse_date_with_formats(text: str, formats: Iterable[str], tz: tzinfo = LONDON) -> date:
    """A date in one of ``formats`` (``strptime`` patterns, or ``"iso"`` for ISO 8601 dates and
    date-times; an ISO date-time with an offset is read as the date in ``tz``)."""
    value = text.strip()
    tried = []
    for fmt in formats:
        tried.append(fmt)
        if fmt == "iso":
            try:
                return plausible(date.fromisoformat(value))
            except ValueError as exc:
                if "plausible" in str(exc):
                    raise
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                continue
            return plausible(moment.astimezone(tz).date() if moment.tzinfo is not None else moment.date())
        try:
            found = datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        return plausible(found)
    raise ValueError("is not a valid date (expected " + " or ".join(tried) + ")")


def parse_datetime_with_formats(text: str, formats: Iterable[str], tz: tzinfo = LONDON) -> datetime:
    """A date and time in one of ``formats`` (``"iso"`` = ISO 8601); without offset it is local (``tz``)."""
    value = text.strip()
    tried = []
    for fmt in formats:
        tried.append(fmt)
        try:
            moment = datetime.fromisoformat(value) if fmt == "iso" else datetime.strptime(value, fmt)
        except ValueError:
            continue
        plausible(moment.date())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return moment
    raise ValueError("is not a valid date and time (expected " + " or ".join(tried) + ")")


def parse_flag(text: str, true_text: Iterable[str] = TRUE_TEXT, false_text: Iterable[str] = FALSE_TEXT) -> bool:
    """A boolean written as 1/0, true/false, Y/N (case-insensitive)."""
    value = text.strip().casefold()
    if value in {t.casefold() for t in true_text}:
        return True
    if value in {f.casefold() for f in false_text}:
        return False
    raise ValueError("is not a yes/no value (expected 1/0, true/false or Y/N)")


def add_years(day: date, years: int) -> date:
    """The same day ``years`` later; 29 February falls back to 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def add_months(day: date, months: int) -> date:
    """The same day of month ``months`` later, falling back to the month's last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError("cannot add months")  # pragma: no cover - 28 always exists
