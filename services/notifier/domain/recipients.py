"""Who is told what about a deadline event (pure).

DESIGN §6 and issue 6: caseworkers hear about their cases' council deadlines; families hear at
milestones, in plain English, only with recorded consent; managers get breach alerts through their
subscriptions.

Caseworkers and the flood: a caseworker with fifty cases would get several emails a day if every
new deadline, reminder and exception nudge were its own email. With ``caseworker_reminders =
"digest"`` (the default) those go into one daily digest per caseworker on working days (built
from the notifier's own projection of the deadlines, see ``digests``); a breach is an alert and
goes at once, to the caseworker, the managers subscribed to breach alerts and the family.
``"immediate"`` keeps one email per event (a council with few cases per caseworker may prefer it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from services.notifier.domain.messages import FAMILY_DUTIES

# Council duties: the rules whose `responsible` is the local authority (old or new LA).
COUNCIL = frozenset({"la", "old_la", "new_la", "la_or_commissioning_body", "school_head_or_la"})

# Family milestones: (event type, rule_id) -> template. Plain-English texts live in the templates.
FAMILY_MILESTONES: dict[tuple[str, str], str] = {
    ("deadline.opened", "assessment.decision"): "family_request_received",
    ("deadline.met", "assessment.decision"): "family_decision_made",
    ("deadline.opened", "draft.representations"): "family_draft_plan_issued",
    ("deadline.met", "plan.final"): "family_plan_issued",
    ("deadline.due_soon", "review.annual"): "family_review_due",
    ("deadline.met", "review.decision"): "family_review_decision",
}

#: Texts about a decision notice: what the notice decided, and the family's own deadlines it started
#: (appeal, mediation adviser), come from deadlines the same notice opens or cancels, which may
#: arrive a moment after the milestone; these texts are held a short while and completed meanwhile.
DECISION_TEMPLATES = frozenset({"family_decision_made", "family_review_decision", "family_plan_issued"})
#: The rules whose opening or cancelling completes a held decision text.
DECISION_FOLLOWERS = frozenset({"appeal.deadline", "mediation.adviser_contact", "plan.final", "cease.appeal_window"})

#: The family's own deadlines, of which they are reminded (at FAMILY_REMINDER_DAYS working days before).
FAMILY_REMINDER_RULES = frozenset({"draft.representations", "mediation.adviser_contact", "appeal.deadline"})
FAMILY_REMINDER_DAYS = (5, 1)
LIVE = frozenset({"open", "due_soon"})

#: Why a deadline's date moved, as the deadlines service says (``change_reason``), when it is news:
#: the case's records, the rule set or the working-day calendar changed. ``time`` (a status that
#: changed as time passed) never moves a date and is nobody's news.
DATE_CHANGE_REASONS = frozenset({"events", "ruleset", "calendar"})
#: A deadline that is done with: a moved date of it is nobody's news either.
ENDED = frozenset({"met", "met_late", "cancelled"})
#: The deadlines whose moved date a family is told of: the council's duties worded for families
#: (FAMILY_DUTIES) and the family's own deadlines they are reminded of.
FAMILY_DATE_CHANGE_RULES = frozenset(FAMILY_DUTIES) | FAMILY_REMINDER_RULES
NOTICE_WINDOW = timedelta(days=14)  # a deadline opened within this of a notice was started by it

CaseworkerReminders = Literal["digest", "immediate"]


@dataclass(frozen=True, slots=True)
class Recipient:
    kind: str  # caseworker | family | manager
    ref: str  # pseudonymous: caseworker_id, a keyed fingerprint of a family address, a manager reference
    channel: str  # email | sms
    address: str = field(repr=False)
    language: str = "en"
    scope_name: str | None = None  # managers: the team or area the alert is about


@dataclass(frozen=True, slots=True)
class PlannedNotification:
    kind: str  # e.g. caseworker_new_deadline, caseworker_reminder_3, breach_alert, family_missed
    recipient: Recipient
    template: str
    context: dict[str, Any] = field(default_factory=dict)

    def idempotency_key(self, subject_id: str) -> str:
        """(deadline or digest, kind, recipient): the same thing is never sent twice to one person."""
        return f"{subject_id}|{self.kind}|{self.recipient.ref}"


def is_council_duty(data: Any) -> bool:
    return data.responsible in COUNCIL and "guidance" not in (data.flags or [])


def may_tell_family(event: Any, reminder_days: Collection[int] = FAMILY_REMINDER_DAYS) -> bool:
    """Whether a deadline event calls for a message to the family at all."""
    d = event.data
    return ((event.type, d.rule_id) in FAMILY_MILESTONES or (event.type == "deadline.breached" and is_council_duty(d))
            or _family_reminder(event, reminder_days) or _family_date_change(event))


def date_moved(event: Any) -> bool:
    """A ``deadline.changed`` whose due date moved, for a reason that is news (DATE_CHANGE_REASONS), of a
    deadline not yet done with."""
    d = event.data
    previous = getattr(d, "previous_due_on", None)
    return (event.type == "deadline.changed" and previous is not None and previous != d.due_on
            and getattr(d, "change_reason", None) in DATE_CHANGE_REASONS and d.status not in ENDED)


def _family_date_change(event: Any) -> bool:
    return date_moved(event) and event.data.status in LIVE and event.data.rule_id in FAMILY_DATE_CHANGE_RULES


def _family_reminder(event: Any, reminder_days: Collection[int]) -> bool:
    d = event.data
    return (event.type == "deadline.due_soon" and d.rule_id in FAMILY_REMINDER_RULES
            and d.reminder_offset_days in reminder_days)


def decision_facts(rule_id: str, notice_on: date | None, case_views: Iterable[Any]) -> dict[str, Any]:
    """What a decision notice decided and the family's deadlines it started, from the case's deadlines
    (the notifier's projection: rows with rule_id, due_on, status, opened_on).

    * assessment.decision: ``decision`` = refuse when the notice started an appeal window or cancelled
      plan.final, assess when plan.final goes on (``final_due_on`` its due date), None when not known yet;
    * review.decision: ``outcome`` = cease (a cease.appeal_window started), maintain (an appeal window
      started: CFA s.51(2)), otherwise amend;
    * every decision: ``appeal_by`` and ``mediation_by``, the due dates of the appeal.deadline and
      mediation.adviser_contact the notice started.
    """
    views = list(case_views)

    def started(rule: str) -> Any:
        found = [v for v in views if v.rule_id == rule and v.status in LIVE and v.opened_on is not None
                 and (notice_on is None or abs(v.opened_on - notice_on) <= NOTICE_WINDOW)]
        return max(found, key=lambda v: v.opened_on, default=None)

    appeal, mediation = started("appeal.deadline"), started("mediation.adviser_contact")
    facts: dict[str, Any] = {"appeal_by": appeal.due_on.isoformat() if appeal else None,
                             "mediation_by": mediation.due_on.isoformat() if mediation else None}
    if rule_id == "assessment.decision":
        plan_final = next((v for v in views if v.rule_id == "plan.final"), None)
        if appeal or mediation or (plan_final is not None and plan_final.status == "cancelled"):
            facts["decision"] = "refuse"
        elif plan_final is not None and plan_final.status in LIVE:
            facts.update(decision="assess", final_due_on=plan_final.due_on.isoformat(), appeal_by=None,
                         mediation_by=None)
        else:
            facts["decision"] = None
    elif rule_id == "review.decision":
        facts["outcome"] = "cease" if started("cease.appeal_window") else "maintain" if appeal else "amend"
    return facts


def plan_for_deadline_event(event: Any, caseworker: Recipient | None, family: list[Recipient],
                            managers: list[Recipient], context: dict[str, Any],
                            caseworker_reminders: CaseworkerReminders = "digest",
                            family_reminder_days: Collection[int] = FAMILY_REMINDER_DAYS,
                            ) -> list[PlannedNotification]:
    """The notifications one deadline event calls for (sent as soon as the sender gets to them)."""
    data = event.data
    planned: list[PlannedNotification] = []
    council = is_council_duty(data)
    if caseworker is not None and council:
        if event.type == "deadline.breached":
            planned.append(PlannedNotification("breach_alert", caseworker, "caseworker_breach", context))
        elif caseworker_reminders == "immediate":
            planned.extend(_immediate_caseworker(event, caseworker, context))
    if event.type == "deadline.breached" and council:
        planned.extend(PlannedNotification("breach_alert", m, "manager_breach", {**context, "scope_name": m.scope_name})
                       for m in managers)
        if data.rule_id in FAMILY_DUTIES:  # only what a family can be told in plain words
            planned.extend(PlannedNotification("family_missed", f, "family_deadline_missed", context) for f in family)
    template = FAMILY_MILESTONES.get((event.type, data.rule_id))
    if template is not None:
        planned.extend(PlannedNotification(f"family_{template}", f, template, context) for f in family)
    if _family_reminder(event, family_reminder_days):
        offset = data.reminder_offset_days
        planned.extend(PlannedNotification(f"family_reminder_{offset}", f, "family_deadline_reminder", context)
                       for f in family)
    if date_moved(event):  # told at once, in either caseworker mode; keyed by the new date: once per move
        kind = f"date_changed:{data.due_on.isoformat()}"
        if caseworker is not None and council:
            planned.append(PlannedNotification(kind, caseworker, "caseworker_date_changed", context))
        if _family_date_change(event):
            planned.extend(PlannedNotification(kind, f, "family_date_changed", context) for f in family)
    return planned


def _immediate_caseworker(event: Any, caseworker: Recipient, context: dict[str, Any]) -> list[PlannedNotification]:
    if event.type == "deadline.opened":
        return [PlannedNotification("caseworker_new_deadline", caseworker, "caseworker_new_deadline", context)]
    if event.type == "deadline.due_soon":
        offset = event.data.reminder_offset_days
        return [PlannedNotification(f"caseworker_reminder_{offset}", caseworker, "caseworker_reminder", context)]
    if event.type == "deadline.exception":
        return [PlannedNotification(f"caseworker_exception_{event.id}", caseworker, "caseworker_exception_nudge",
                                    context)]
    return []


# --------------------------------------------------------------------------------------------
# Contacts that arrive after the deadline events
# --------------------------------------------------------------------------------------------

#: For a deadline's current status (the notifier's projection), the deadline events whose family
#: texts are still the news: contacts that reach the notifier after the events get these (planned
#: by plan_for_deadline_event, so under the same idempotency keys as the events plan them).
CURRENT_EVENTS: dict[str, tuple[str, ...]] = {
    "open": ("deadline.opened",),
    "due_soon": ("deadline.opened", "deadline.due_soon"),
    "met": ("deadline.met",),
    "met_late": ("deadline.met",),
    "breached": ("deadline.breached",),
}
