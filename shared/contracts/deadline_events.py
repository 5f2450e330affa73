"""Deadline events on ``ehc.deadline-events``, published by the deadlines service (DESIGN §2).

Besides the deadline events (:class:`DeadlineEvent`), the topic carries ``case.data_quality``
(:class:`CaseDataQualityEvent`): a case's data-quality warnings changed (issue 11 item 5). A
consumer of the topic reads both with :func:`parse_deadline_topic_event`; ``parse_deadline_event``
still reads deadline events only."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter

from shared.contracts.envelope import Contract, Envelope, OpaqueId

DEADLINE_EVENT_TYPES = (
    "deadline.opened",
    "deadline.changed",
    "deadline.due_soon",
    "deadline.breached",
    "deadline.met",
    "deadline.exception",
    "deadline.cancelled",
)
DeadlineEventType = Literal[
    "deadline.opened",
    "deadline.changed",
    "deadline.due_soon",
    "deadline.breached",
    "deadline.met",
    "deadline.exception",
    "deadline.cancelled",
]
Status = Literal["open", "due_soon", "met", "met_late", "breached", "exception", "cancelled"]


class DeadlineData(Contract):
    """One deadline as the engine explains it."""

    case_id: OpaqueId
    deadline_id: Annotated[str, Field(max_length=400)] = Field(
        description="Stable: case + rule_id + instance.", examples=["case-7f3a9c:assessment.decision:1"]
    )
    rule_id: str = Field(examples=["assessment.decision"])
    due_on: date = Field(description="The last lawful day (Europe/London).")
    status: Status
    responsible: str = Field(description="Who must act: la, body_asked, institution, family, ...")
    trigger_event_id: str
    trigger_date: date | None = None
    legal_source: str = Field(examples=["Regs 5(1); 4(1)"])
    period_text: str = Field(default="", description="The period in plain words.")
    ruleset_version: str = Field(examples=["england-2014.1"])
    team_id: str | None = None
    caseworker_id: str | None = None
    area_id: str | None = None
    kind: str = Field(default="duty", description="duty | window | not_before | guidance")
    flags: list[str] = Field(default_factory=list, description="guidance, unconfirmed, issued_before_window, ...")
    exception: str | None = Field(default=None, description="E1..E5 when an exception applies.")
    completed_on: date | None = None
    previous_due_on: date | None = Field(default=None, description="deadline.changed: the date before.")
    previous_status: Status | None = Field(default=None, description="deadline.changed: the status before.")
    change_reason: Literal["events", "ruleset", "calendar", "time"] | None = Field(
        default=None,
        description="Why a recomputation changed this deadline: the case's events changed, the rule-set version "
                    "changed, the working-day calendar changed (a bank holiday), or time passed.",
        examples=["calendar"])
    change_detail: str | None = Field(default=None, max_length=200,
                                      description="The reason in plain words (no personal data).",
                                      examples=["the rule set changed: england-2014.1 -> england-2014.2"])
    reminder_offset_days: int | None = Field(
        default=None, description="deadline.due_soon: working days before the due date (0 = due today)."
    )


class DeadlineEvent(Envelope):
    """A change in one deadline; `subject` is the case_id, the key too."""

    type: DeadlineEventType
    data: DeadlineData


deadline_event_adapter: TypeAdapter[DeadlineEvent] = TypeAdapter(DeadlineEvent)


def parse_deadline_event(raw: bytes | str | dict[str, Any]) -> DeadlineEvent:
    if isinstance(raw, dict):
        return DeadlineEvent.model_validate(raw)
    return DeadlineEvent.model_validate_json(raw)


# -- case.data_quality -------------------------------------------------------------------------

DATA_QUALITY_EVENT_TYPE: Literal["case.data_quality"] = "case.data_quality"


class DataQualityWarningData(Contract):
    """One data-quality warning of a case: dates that cannot all be true (no personal data)."""

    code: Annotated[str, Field(max_length=100)] = Field(
        description="Stable code of the check; deadlines_not_computed when the case's deadlines cannot be "
        "computed at all.", examples=["review_decision_before_meeting"])
    severity: Literal["warning", "error"] = Field(
        description="warning: the deadlines are computed but rest on dates to check; error: they cannot be "
        "computed until the data is corrected.")
    message: Annotated[str, Field(max_length=1000)] = Field(
        description="What cannot be true, in plain English.",
        examples=["the review decision is dated before the review meeting it follows (2028-03-01 before 2028-03-10)"])
    event_ids: list[OpaqueId] = Field(default_factory=list, description="The case events whose dates disagree.")


class CaseDataQualityData(Contract):
    """Every data-quality warning of one case, as it stands now (an empty list: all clear)."""

    case_id: OpaqueId
    warnings: list[DataQualityWarningData] = Field(
        default_factory=list, description="The whole current set; replaces the one published before.")
    team_id: str | None = None
    caseworker_id: str | None = None
    area_id: str | None = None


class CaseDataQualityEvent(Envelope):
    """A case's data-quality warnings changed (published only on a change); `subject` is the case_id."""

    type: Literal["case.data_quality"]
    data: CaseDataQualityData


DeadlineTopicEvent = Annotated[Union[DeadlineEvent, CaseDataQualityEvent], Field(discriminator="type")]  # noqa: UP007
deadline_topic_event_adapter: TypeAdapter[DeadlineEvent | CaseDataQualityEvent] = TypeAdapter(DeadlineTopicEvent)


def parse_deadline_topic_event(raw: bytes | str | dict[str, Any]) -> DeadlineEvent | CaseDataQualityEvent:
    """Any event of ``ehc.deadline-events``: a deadline event or a case's data-quality warnings."""
    if isinstance(raw, dict):
        return deadline_topic_event_adapter.validate_python(raw)
    return deadline_topic_event_adapter.validate_json(raw)
