"""The DfE 20-week figures from the service's own deadlines (pure).

An issued plan is a ``plan.final`` deadline that was met (on time or late): its trigger date is
the request's received date, its completion date the issue date, and an exception recorded
against it (E1-E5; an SEN2 Week20 = 1 is imported as one) takes it out of the figures excluding
exceptions. The measure itself is ``shared.timeliness``, the same as for an SEN2 file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from shared.timeliness import IssuedPlan, TimelinessReport, timeliness

PLAN_FINAL = "plan.final"
ISSUED = frozenset({"met", "met_late"})


def _day(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def issued_plans(deadlines: Iterable[Mapping[str, Any]]) -> list[IssuedPlan]:
    """Issued plans from deadlines as plain values (``Deadline.to_dict()`` or a stored explanation)."""
    return [IssuedPlan(d["case_id"], _day(d.get("trigger_date")), _day(d.get("completed_on")),
                       d.get("exception") is not None)
            for d in deadlines if d.get("rule_id") == PLAN_FINAL and d.get("status") in ISSUED]


def timeliness_of(deadlines: Iterable[Mapping[str, Any]], year: int, lea: str | None = None) -> TimelinessReport:
    return timeliness(issued_plans(deadlines), year, lea)
