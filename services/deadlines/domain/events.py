"""The engine's input: one canonical case event (DESIGN §2), already validated and typed.

The engine never sees JSON. Entry points (Kafka, HTTP, the CLI) turn a CloudEvents envelope into a
:class:`CaseEventRecord`; ``data`` keeps the event's fields except ``occurred_on``, with date fields
as :class:`datetime.date` objects.

The pydantic contracts in ``shared/contracts`` validate every field before an event becomes a
record (services/deadlines/adapters/records.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from operator import attrgetter
from typing import Any, Final

# Event types with a special meaning for the engine itself (not for one rule).
REQUEST_RECEIVED: Final = "ehc.request.received"
ADVICE_REQUESTED: Final = "ehc.advice.requested"
EXCEPTION_RECORDED: Final = "ehc.exception.recorded"
EXCEPTION_WITHDRAWN: Final = "ehc.exception.withdrawn"
EVENT_RETRACTED: Final = "ehc.event.retracted"
CASE_CLOSED: Final = "ehc.case.closed"
AMENDMENT_PROPOSED: Final = "ehc.amendment.proposed"


@dataclass(frozen=True, slots=True)
class CaseEventRecord:
    """One case event as the engine consumes it.

    Identity is ``id`` alone: producers use globally unique ids. Events are ordered by
    ``occurred_on``, then ``recorded_at``, then ``id`` (see :func:`order_key`).
    """

    id: str
    case_id: str
    type: str
    occurred_on: date
    recorded_at: datetime
    data: Mapping[str, Any]
    supersedes: str | None = None


# The canonical order of a case's history: legal date, then recording time, then id. An
# attrgetter rather than a def: it is the sort key of every case, and runs at C speed.
order_key: Callable[[CaseEventRecord], tuple[date, datetime, str]] = attrgetter("occurred_on", "recorded_at", "id")


EXCEPTION_CODES: Final = ("E1", "E2", "E3", "E4", "E5")

# The canonical case-event types (DESIGN §2) the engine knows; the shared contracts validate
# their fields before an event becomes a CaseEventRecord.
CASE_EVENT_TYPES: Final[frozenset[str]] = frozenset({
    "ehc.request.received", "ehc.assessment.decided", "ehc.advice.requested", "ehc.advice.received",
    "ehc.plan.not_issued", "ehc.draft_plan.issued", "ehc.consultation.sent", "ehc.consultation.responded",
    "ehc.plan.issued", "ehc.review.meeting_scheduled", "ehc.review.meeting_held", "ehc.review.report_sent",
    "ehc.review.decision_issued", "ehc.amendment.proposed", "ehc.plan.amended", "ehc.amendment.withdrawn",
    "ehc.phase_transfer.planned", "ehc.reassessment.requested", "ehc.reassessment.decided",
    "ehc.plan.transfer_out", "ehc.plan.transferred_in", "ehc.cease.decided", "ehc.plan.ceased",
    "ehc.mediation.requested", "ehc.mediation.declined", "ehc.mediation.concluded",
    "ehc.mediation.certificate_issued", "ehc.mediation.agreement", "ehc.appeal.registered",
    "ehc.appeal.unopposed", "ehc.tribunal.order", EXCEPTION_RECORDED, EXCEPTION_WITHDRAWN, "ehc.case.assigned",
    CASE_CLOSED, EVENT_RETRACTED, "ehc.family.message",
})

