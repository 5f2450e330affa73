"""Canonical case events on ``ehc.case-events`` (DESIGN §2), one model per CloudEvents ``type``.

Each event is an :class:`~shared.contracts.envelope.Envelope` with a literal ``type`` and a typed
``data``; :data:`CaseEvent` is the discriminated union of all of them and
:func:`parse_case_event` the one way to read one from bytes or a dict. No personal data: names,
addresses and phone numbers travel only on ``ehc.contacts``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter

from shared.case_event_codes import ExceptionCode, OrderType, ProviderKind
from shared.contracts.envelope import Contract, Envelope, EventData, OpaqueId

NoticeDate = Field(description="The day the notice was sent to the family.", examples=["2026-02-10"])
Reason = Annotated[str, Field(max_length=500)]


# --- data payloads ---------------------------------------------------------------------------

class RequestReceivedData(EventData):
    route: Literal["request", "became_responsible"] = Field(
        default="request",
        description="A request for an EHC needs assessment, or the LA became responsible (CFA s.24).",
    )
    requested_by: Literal["parent", "young_person", "school", "health", "social_care", "other"] = Field(
        default="parent", description="Who asked for the assessment."
    )


class AssessmentDecidedData(EventData):
    decision: Literal["assess", "refuse"] = Field(description="Whether the LA will assess.")
    notice_sent_on: date = NoticeDate


class AdviceData(EventData):
    advice_id: OpaqueId = Field(description="Identifies one advice request.", examples=["adv-ep-1"])
    provider_kind: ProviderKind = Field(description="The kind of body asked for advice.")
    provider_id: OpaqueId | None = Field(
        default=None, description="The setting or body (URN, UKPRN or local code); selects its term calendar."
    )


class NoticeData(EventData):
    notice_sent_on: date = NoticeDate


class DraftPlanIssuedData(EventData):
    served_on: date = Field(description="The day the draft plan was served on the family.")


class ConsultationData(EventData):
    institution_id: OpaqueId = Field(description="The school or institution consulted (URN/UKPRN).")


class PlanIssuedData(EventData):
    plan_id: OpaqueId = Field(description="The council's plan identifier (opaque).")
    child_under_5: bool | None = Field(
        default=None, description="True when the child is under 5 (review.under5 guidance applies)."
    )


class EmptyData(EventData):
    pass


class MeetingScheduledData(EventData):
    meeting_on: date = Field(description="The date of the review meeting.")


class ReviewDecisionData(EventData):
    outcome: Literal["maintain", "amend", "cease"] = Field(description="The review decision.")
    child_under_5: bool | None = Field(default=None, description="True when the child is under 5.")
    notice_sent_on: date | None = Field(
        default=None,
        description="The day the LA notified the decision (an appealable notice: the appeal deadline, the "
        "mediation adviser window and, with cease, the cease window run from it). Absent: occurred_on.",
        examples=["2027-03-02"],
    )


class PhaseTransferData(EventData):
    transfer_on: date = Field(description="The date of the transfer between phases.")
    kind: Literal["school", "post16", "post16_to_post16"] = Field(
        description="school: between school phases (Regs 18(1)(b)); post16: secondary to post-16 "
        "(18(1)(a)); post16_to_post16: between post-16 institutions (18(2))."
    )


class ReassessmentDecidedData(EventData):
    decision: Literal["reassess", "refuse"] = Field(description="Whether the LA will re-assess (Regs 25).")
    notice_sent_on: date | None = Field(default=None, description="When the family was told.")


class TransferOutData(EventData):
    move_on: date = Field(description="The day of the move to the new LA.")
    aware_on: date = Field(description="The day the old LA became aware of the move.")
    to_la: Annotated[str, Field(pattern=r"^\d{3}$")] = Field(description="DfE number of the new LA.")


class TransferredInData(EventData):
    transfer_on: date = Field(description="The date the plan transferred to this LA.")
    plan_made_on: date = Field(description="When the plan was first made (it keeps that date, Regs 15(3)).")
    last_reviewed_on: date | None = Field(default=None, description="The last review decision, if any.")
    from_la: Annotated[str, Field(pattern=r"^\d{3}$")] = Field(description="DfE number of the old LA.")


class MediationRequestedData(EventData):
    includes_health: bool = Field(default=False, description="The issues include health provision.")


class MediationAgreementData(EventData):
    appealable: bool = Field(description="The agreement is on appealable matters (Regs 42(2)).")


class AppealRegisteredData(EventData):
    sent_to_la_on: date | None = Field(
        default=None, description="When the tribunal sent the appeal to the LA (starts appeal.la_response)."
    )


class OrderData(EventData):
    order_type: OrderType = Field(description="What the tribunal ordered (or the LA conceded).")
    amendment_agreed: bool | None = Field(
        default=None,
        description="Unopposed cease appeal (order_type continue): the LA also agreed to amend the plan "
        "(starts unopposed.cease_amend, 5 weeks).",
    )


# The duties that have no event of their own (DESIGN §2 ehc.duty.done); any other rule is refused.
DutyRuleId = Literal[
    "transfer.send_plan", "transfer.notify_family", "review.advice_circulation", "mediation.health_notice",
    "mediation.agreement", "appeal.la_response", "tribunal.continue", "tribunal.recommendation_response",
]
DUTY_DONE_RULE_IDS: tuple[str, ...] = DutyRuleId.__args__  # type: ignore[attr-defined]


class DutyDoneData(EventData):
    rule_id: DutyRuleId = Field(
        description="The duty done (only duties with no event of their own).", examples=["transfer.send_plan"]
    )
    instance: OpaqueId | None = Field(
        default=None,
        description="Which deadline of that rule, where the case has several: its instance (1, 2, ...) or "
        "its trigger date (e.g. the meeting_on date). Absent: the latest open one.",
        examples=["2027-03-15"],
    )


class FamilyMessageData(EventData):
    topic: Literal["question", "date_wrong", "not_received", "other"] = Field(
        description="What the family wrote about (the text stays with the contact data, never on this topic)."
    )
    message_id: OpaqueId = Field(description="Identifies the message in the council's system.", examples=["msg-81"])


class ExceptionRecordedData(EventData):
    exception: ExceptionCode = Field(description="E1-E5 of the law file, section B.")
    rule_ids: list[str] = Field(
        default_factory=list,
        description="The rules it applies to; empty: every open LA deadline the exception's source allows.",
    )
    reason: Reason = Field(default="", description="Free text, no health detail.")


class ExceptionWithdrawnData(EventData):
    exception_event_id: OpaqueId = Field(description="The id of the ehc.exception.recorded event withdrawn.")


class CaseAssignedData(EventData):
    caseworker_id: OpaqueId = Field(description="The council's staff id of the caseworker (not a name).")
    team_id: OpaqueId = Field(description="The SEND team the case belongs to.")
    area_id: OpaqueId | None = Field(default=None, description="For managers' area subscriptions.")


class CaseClosedData(EventData):
    reason: Literal["request_withdrawn", "moved_away", "plan_ceased", "duplicate", "other"] = Field(
        description="Why the case was closed.")


class RetractedData(EventData):
    retracts: OpaqueId = Field(description="The id of the event to be treated as never having happened.")


# --- envelopes -------------------------------------------------------------------------------

class _CaseEnvelope(Envelope):
    supersedes: OpaqueId | None = Field(
        default=None, description="Id of an earlier event of the same case that this one replaces."
    )


def _event(type_: str, data_model: type[EventData], doc: str) -> type[_CaseEnvelope]:
    name = "".join(part.capitalize() for part in type_.removeprefix("ehc.").replace("_", ".").split("."))
    model = type(
        name,
        (_CaseEnvelope,),
        {
            "__annotations__": {"type": Literal[type_], "data": data_model},  # type: ignore[valid-type]
            "__doc__": doc,
            "__module__": __name__,
        },
    )
    return model


# (type, data model, what it starts or completes): the catalogue of DESIGN §2.
CATALOGUE: list[tuple[str, type[EventData], str]] = [
    ("ehc.request.received", RequestReceivedData, "Starts assessment.decision, assessment.plan_decision, plan.final."),
    ("ehc.assessment.decided", AssessmentDecidedData, "Completes assessment.decision; a refusal cancels the rest."),
    ("ehc.advice.requested", AdviceData, "Starts assessment.advice for this advice_id."),
    ("ehc.advice.received", AdviceData, "Completes assessment.advice for this advice_id."),
    ("ehc.plan.not_issued", NoticeData, "Completes assessment.plan_decision; cancels plan.final."),
    ("ehc.draft_plan.issued", DraftPlanIssuedData, "Starts draft.representations."),
    ("ehc.consultation.sent", ConsultationData, "Starts draft.consultation_response (guidance)."),
    ("ehc.consultation.responded", ConsultationData, "Completes draft.consultation_response."),
    ("ehc.plan.issued", PlanIssuedData, "Completes plan.final; starts review.annual."),
    ("ehc.review.meeting_scheduled", MeetingScheduledData, "Starts review.meeting_notice and advice circulation."),
    ("ehc.review.meeting_held", EmptyData, "Starts review.report and review.decision."),
    ("ehc.review.report_sent", EmptyData, "Completes review.report."),
    ("ehc.review.decision_issued", ReviewDecisionData, "Completes review.decision; restarts review.annual."),
    ("ehc.amendment.proposed", EmptyData, "Starts amendment.representations and amendment.final."),
    ("ehc.plan.amended", EmptyData, "Completes amendment.final."),
    ("ehc.amendment.withdrawn", EmptyData, "Notice not to amend: completes amendment.final."),
    ("ehc.phase_transfer.planned", PhaseTransferData, "Starts phase_transfer.review."),
    ("ehc.reassessment.requested", EmptyData, "Starts reassessment.decision."),
    ("ehc.reassessment.decided", ReassessmentDecidedData, "Completes reassessment.decision."),
    ("ehc.plan.transfer_out", TransferOutData, "Starts transfer.send_plan."),
    ("ehc.plan.transferred_in", TransferredInData, "Starts transfer.notify_family and transfer.review."),
    ("ehc.cease.decided", NoticeData, "Starts cease.appeal_window and the appeal rules."),
    ("ehc.plan.ceased", NoticeData, "The plan stopped being maintained."),
    ("ehc.mediation.requested", MediationRequestedData, "Starts mediation.arrange."),
    ("ehc.mediation.declined", EmptyData, "Starts mediation.certificate_declined."),
    ("ehc.mediation.concluded", EmptyData, "Completes mediation.arrange; starts mediation.certificate."),
    ("ehc.mediation.certificate_issued", EmptyData, "Completes mediation certificates; moves appeal.deadline."),
    ("ehc.mediation.agreement", MediationAgreementData, "Starts mediation.agreement or tribunal rules."),
    ("ehc.appeal.registered", AppealRegisteredData, "Starts appeal.la_response."),
    ("ehc.appeal.unopposed", OrderData, "Starts the unopposed.* rules."),
    ("ehc.tribunal.order", OrderData, "Starts the tribunal.* rules."),
    ("ehc.exception.recorded", ExceptionRecordedData, "Sets the status of the named deadlines to exception."),
    ("ehc.exception.withdrawn", ExceptionWithdrawnData, "Withdraws a recorded exception."),
    ("ehc.case.assigned", CaseAssignedData, "Routes notifications to a caseworker and team."),
    ("ehc.case.closed", CaseClosedData, "Cancels every open deadline of the case."),
    ("ehc.event.retracted", RetractedData, "Recompute the case without the retracted event."),
    ("ehc.duty.done", DutyDoneData, "Completes a duty that has no event of its own (transfer.send_plan, ...)."),
    ("ehc.family.message", FamilyMessageData, "A family wrote to the council; starts nothing, shown on the case."),
]

EVENT_MODELS: dict[str, type[_CaseEnvelope]] = {t: _event(t, m, doc) for t, m, doc in CATALOGUE}
CASE_EVENT_TYPES: frozenset[str] = frozenset(EVENT_MODELS)

# Export each generated class under its own name (RequestReceived, AssessmentDecided, ...).
globals().update({model.__name__: model for model in EVENT_MODELS.values()})

CaseEvent = Annotated[
    # A Union over the generated classes, discriminated by the literal `type`.
    Union[tuple(EVENT_MODELS.values())],  # noqa: UP007
    Field(discriminator="type"),
]
case_event_adapter: TypeAdapter[Any] = TypeAdapter(CaseEvent)


def parse_case_event(raw: bytes | str | dict[str, Any]) -> _CaseEnvelope:
    """Validate one canonical case event; raises pydantic.ValidationError with a clear message."""
    if isinstance(raw, dict):
        return case_event_adapter.validate_python(raw)  # type: ignore[no-any-return]
    return case_event_adapter.validate_json(raw)  # type: ignore[no-any-return]


def build_case_event(
    type_: str, *, id: str, source: str, case_id: str, time: Any, supersedes: str | None = None, **data: Any
) -> _CaseEnvelope:
    """Build a validated case event from keyword data (used by mappings, importers and tests)."""
    return parse_case_event(
        {
            "id": id,
            "source": source,
            "type": type_,
            "subject": case_id,
            "time": time,
            "supersedes": supersedes,
            "data": data,
        }
    )


CaseEventEnvelope = _CaseEnvelope
__all__ = ["CATALOGUE", "CASE_EVENT_TYPES", "DUTY_DONE_RULE_IDS", "CaseEvent", "CaseEventEnvelope", "Contract",
           "EVENT_MODELS", "build_case_event", "parse_case_event"]
