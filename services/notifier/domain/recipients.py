"""Who is told what about a deadline event (pure).

DESIGN §6 and issue 6: caseworkers hear about their cases' council deadlines (a new deadline, a
reminder before it, an alert at a breach); families hear at milestones, in plain English, only
with recorded consent; managers get breach alerts through their subscriptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Council duties: the rules whose `responsible` is the local authority (old or new LA).
COUNCIL = frozenset({"la", "old_la", "new_la", "la_or_commissioning_body", "school_head_or_la"})

# Family milestones: (event type, rule_id) -> template. Plain-English texts live in the templates.
FAMILY_MILESTONES: dict[tuple[str, str], str] = {
    ("deadline.opened", "assessment.decision"): "family_request_received",
    ("deadline.met", "assessment.decision"): "family_decision_made",
    ("deadline.opened", "draft.representations"): "family_draft_plan_issued",
    ("deadline.met", "plan.final"): "family_plan_issued",
    ("deadline.due_soon", "review.annual"): "family_review_due",
}


@dataclass(frozen=True, slots=True)
class Recipient:
    kind: str  # caseworker | family | manager
    ref: str  # pseudonymous: caseworker_id, "family:<case_id>:<n>", subscription id
    channel: str  # email | sms
    address: str
    language: str = "en"


@dataclass(frozen=True, slots=True)
class PlannedNotification:
    kind: str  # e.g. caseworker_new_deadline, caseworker_reminder, breach_alert, family_milestone
    recipient: Recipient
    template: str
    context: dict[str, Any] = field(default_factory=dict)

    def idempotency_key(self, subject_id: str) -> str:
        return f"{subject_id}|{self.kind}|{self.recipient.ref}"


def is_council_duty(data: Any) -> bool:
    return data.responsible in COUNCIL and "guidance" not in (data.flags or [])


def plan_for_deadline_event(event: Any, caseworker: Recipient | None, family: list[Recipient],
                            managers: list[Recipient], context: dict[str, Any]) -> list[PlannedNotification]:
    """The notifications one deadline event calls for."""
    data = event.data
    planned: list[PlannedNotification] = []
    council = is_council_duty(data)
    offset = data.reminder_offset_days
    if caseworker is not None and council:
        if event.type == "deadline.opened":
            planned.append(PlannedNotification("caseworker_new_deadline", caseworker, "caseworker_new_deadline",
                                               context))
        elif event.type == "deadline.due_soon":
            planned.append(PlannedNotification(f"caseworker_reminder_{offset}", caseworker, "caseworker_reminder",
                                               context))
        elif event.type == "deadline.breached":
            planned.append(PlannedNotification("breach_alert", caseworker, "caseworker_breach", context))
        elif event.type == "deadline.exception":
            planned.append(PlannedNotification(f"caseworker_exception_{event.id}", caseworker,
                                               "caseworker_exception_nudge", context))
    if event.type == "deadline.breached" and council:
        planned.extend(PlannedNotification("breach_alert", m, "manager_breach", context) for m in managers)
        planned.extend(PlannedNotification("family_missed", f, "family_deadline_missed", context) for f in family)
    template = FAMILY_MILESTONES.get((event.type, data.rule_id))
    if template is not None:
        planned.extend(PlannedNotification(f"family_{template}", f, template, context) for f in family)
    return planned
