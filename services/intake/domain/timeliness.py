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

from services.intake.domain.sen2 import AssessmentRecord, Sen2Header, read_assessment_records
from shared.timeliness import (  # noqa: F401 (re-exported for the report command and tests)
    BAND_52_DAYS,
    WITHIN_DAYS,
    TimelinessFigures,
    TimelinessReport,
    round_half_up,
    timeliness_of,
)


def compute_timeliness(records: Iterable[AssessmentRecord], year: int, lea: str | None = None) -> TimelinessReport:
    """The 20-week figures for plans issued in calendar ``year``."""
    return timeliness_of(((r.received_on, r.outcome_on, bool(r.week20)) for r in records if r.outcome == "Y"),
                         year, lea)


def timeliness_from_file(path: str | os.PathLike[str], year: int) -> TimelinessReport:
    """The figures from an SEN2 XML return or CSV export (folder or zip).

    Raises ``OSError`` when it cannot be read and ``Sen2FormatError`` when it is not a readable return.
    """
    header: Sen2Header | None
    header, records = read_assessment_records(path)
    return compute_timeliness(records, year, header.lea if header else None)
