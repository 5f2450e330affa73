"""Data-quality problems of a case: what makes its deadlines impossible to compute.

A case with a problem keeps the deadlines it had; the problem is recorded on the case and shown by
the read API (``/v1/problems``) instead of stopping the service."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from services.deadlines.domain.events import CaseEventRecord
from shared.working_days import ACCEPTED_YEARS, CALENDAR_YEARS


def date_problem(events: Iterable[CaseEventRecord]) -> str | None:
    """The first date of the history outside the years deadlines are computed for (ACCEPTED_YEARS,
    the same range intake accepts), as one line naming the event and the field; None when all fit."""
    for event in events:
        for name, value in (("occurred_on", event.occurred_on), *event.data.items()):
            if isinstance(value, date) and value.year not in ACCEPTED_YEARS:
                return (f"event {event.id}: {name} {value.isoformat()} is outside the years deadlines are computed "
                        f"for ({ACCEPTED_YEARS.start} to {ACCEPTED_YEARS.stop - 1}; the working-day calendar ends "
                        f"in {CALENDAR_YEARS.stop - 1})")
    return None
