"""Calendar-month arithmetic shared by the deadlines engine and the data-quality check."""

from __future__ import annotations

from calendar import monthrange
from datetime import date


def add_months(day: date, months: int) -> date:
    """Calendar months, keeping the day of month; a day the target month lacks becomes its last
    day (law file C3/C4: 2028-02-29 plus 12 months gives 2029-02-28)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    d = day.day
    if d > 28:  # only then can the target month be too short; monthrange is the slow part
        d = min(d, monthrange(year, month)[1])
    return date(year, month, d)
