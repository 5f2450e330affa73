"""The DfE 20-week timeliness figures, computed directly from an SEN2 return.

The measure itself (population, 140 days, bands, exceptions, rounding) is ``shared.timeliness``:
the deadlines service computes the same figures from its own records. Here an SEN2 assessment
counts as an issued plan when AssessmentOutcome = Y; its dates are AssessmentOutcomeDate (issue)
and the request's ReceivedDate, its exception the Week20 flag.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from services.intake.domain.sen2 import AssessmentRecord, Sen2Header, read_assessment_records
from shared.timeliness import (
    BAND_52_DAYS,
    WITHIN_DAYS,
    IssuedPlan,
    TimelinessFigures,
    TimelinessReport,
    round_half_up,
    timeliness,
)

__all__ = ["BAND_52_DAYS", "WITHIN_DAYS", "TimelinessFigures", "TimelinessReport", "compute_timeliness",
           "round_half_up", "timeliness_from_file"]


def compute_timeliness(records: Iterable[AssessmentRecord], year: int, lea: str | None = None) -> TimelinessReport:
    """The 20-week figures for plans issued in calendar ``year``."""
    return timeliness((IssuedPlan(r.case_ref, r.received_on, r.outcome_on, r.week20)
                       for r in records if r.outcome == "Y"), year, lea)


def timeliness_from_file(path: str | os.PathLike[str], year: int, case_id_key: bytes | None = None
                         ) -> TimelinessReport:
    """The figures from an SEN2 XML return or CSV export (folder or zip).

    Raises ``OSError`` when it cannot be read and ``Sen2FormatError`` when it is not a readable return.
    """
    header: Sen2Header | None
    header, records = read_assessment_records(path, case_id_key)
    return compute_timeliness(records, year, header.lea if header else None)
