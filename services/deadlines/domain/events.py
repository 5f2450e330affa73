"""The engine's input: one canonical case event (DESIGN §2), already validated and typed.

The engine never sees JSON. Entry points (Kafka, HTTP, the CLI) turn a CloudEvents envelope into a
:class:`CaseEventRecord`; ``data`` keeps the event's fields except ``occurred_on``, with date fields
as :class:`datetime.date` objects.

:data:`EVENT_FIELDS` lists, per event type, the data fields the engine understands (DESIGN §2 plus
the project additions: ``child_under_5``, the exception fields, ``sent_to_la_on``, ``order_type``,
...). It is the engine's own view, used by the CLI's interim validator; the pydantic contracts in
``shared/contracts`` are the authority on the wire.
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


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One data field of an event type: its name, kind and whether it must be present."""

    name: str
    kind: str  # "date" | "str" | "bool" | "str_list" | "choice"
    required: bool = True
    choices: frozenset[str] = frozenset()


def _choice(name: str, *values: str, required: bool = True) -> FieldSpec:
    return FieldSpec(name, "choice", required, frozenset(values))


def _date(name: str, required: bool = True) -> FieldSpec:
    return FieldSpec(name, "date", required)


def _str(name: str, required: bool = True) -> FieldSpec:
    return FieldSpec(name, "str", required)


def _bool(name: str, required: bool = True) -> FieldSpec:
    return FieldSpec(name, "bool", required)


PROVIDER_KINDS: Final = (
    "school", "post16", "early_years", "health", "social_care", "educational_psychology", "other",
)
ORDER_TYPES: Final = ("assess", "make_plan", "amend", "school_name", "continue", "recommendation")
EXCEPTION_CODES: Final = ("E1", "E2", "E3", "E4", "E5")

_ADVICE: Final = (
    _str("advice_id"),
    _choice("provider_kind", *PROVIDER_KINDS),
    _str("provider_id", required=False),
)
_NOTICE: Final = (_date("notice_sent_on"),)
_ORDER: Final = (_choice("order_type", *ORDER_TYPES),)

# DESIGN §2 "Canonical case events", with the project additions. Optional fields follow the
# defaults of shared/contracts/case_events.py so that swapping validators changes nothing.
EVENT_FIELDS: Final[Mapping[str, tuple[FieldSpec, ...]]] = {
    "ehc.request.received": (
        _choice("route", "request", "became_responsible", required=False),
        _choice(
            "requested_by", "parent", "young_person", "school", "health", "social_care", "other",
            required=False,
        ),
    ),
    "ehc.assessment.decided": (_choice("decision", "assess", "refuse"), *_NOTICE),
    "ehc.advice.requested": _ADVICE,
    "ehc.advice.received": _ADVICE,
    "ehc.plan.not_issued": _NOTICE,
    "ehc.draft_plan.issued": (_date("served_on"),),
    "ehc.consultation.sent": (_str("institution_id"),),
    "ehc.consultation.responded": (_str("institution_id"),),
    "ehc.plan.issued": (_str("plan_id"), _bool("child_under_5", required=False)),
    "ehc.review.meeting_scheduled": (_date("meeting_on"),),
    "ehc.review.meeting_held": (),
    "ehc.review.report_sent": (),
    "ehc.review.decision_issued": (
        _choice("outcome", "maintain", "amend", "cease"),
        _bool("child_under_5", required=False),
    ),
    "ehc.amendment.proposed": (),
    "ehc.plan.amended": (),
    "ehc.amendment.withdrawn": (),
    "ehc.phase_transfer.planned": (
        _date("transfer_on"),
        _choice("kind", "school", "post16", "post16_to_post16"),
    ),
    "ehc.reassessment.requested": (),
    "ehc.reassessment.decided": (
        _choice("decision", "reassess", "refuse"),
        _date("notice_sent_on", required=False),
    ),
    "ehc.plan.transfer_out": (_date("move_on"), _date("aware_on"), _str("to_la")),
    "ehc.plan.transferred_in": (
        _date("transfer_on"),
        _date("plan_made_on"),
        _date("last_reviewed_on", required=False),
        _str("from_la"),
    ),
    "ehc.cease.decided": _NOTICE,
    "ehc.plan.ceased": _NOTICE,
    "ehc.mediation.requested": (_bool("includes_health", required=False),),
    "ehc.mediation.declined": (),
    "ehc.mediation.concluded": (),
    "ehc.mediation.certificate_issued": (),
    "ehc.mediation.agreement": (_bool("appealable"),),
    "ehc.appeal.registered": (_date("sent_to_la_on", required=False),),
    "ehc.appeal.unopposed": _ORDER,
    "ehc.tribunal.order": _ORDER,
    EXCEPTION_RECORDED: (
        _choice("exception", *EXCEPTION_CODES),
        FieldSpec("rule_ids", "str_list", required=False),
        _str("reason", required=False),
    ),
    EXCEPTION_WITHDRAWN: (_str("exception_event_id"),),
    "ehc.case.assigned": (_str("caseworker_id"), _str("team_id"), _str("area_id", required=False)),
    CASE_CLOSED: (_str("reason"),),
    EVENT_RETRACTED: (_str("retracts"),),
}

CASE_EVENT_TYPES: Final[frozenset[str]] = frozenset(EVENT_FIELDS)
