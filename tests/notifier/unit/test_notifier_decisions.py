"""Issue 9: a decision text names the decision and the family's own deadlines; families are reminded
of their own deadlines (draft plan comments, mediation adviser, appeal)."""

from __future__ import annotations

from datetime import date

import pytest

from services.notifier.domain.digests import DeadlineView
from services.notifier.domain.messages import render
from services.notifier.domain.recipients import Recipient, decision_facts, plan_for_deadline_event
from tests.notifier.helpers import deadline_event

NOTICE = date(2026, 3, 20)
FAMILY = [Recipient("family", "f-1", "sms", "07700900111")]


def view(rule_id: str, status: str = "open", due_on: date = date(2026, 5, 20), opened_on: date = NOTICE
         ) -> DeadlineView:
    return DeadlineView(deadline_id=f"c:{rule_id}:1", case_id="c", rule_id=rule_id, due_on=due_on, status=status,
                        responsible="family", opened_on=opened_on)


def test_a_refusal_carries_the_appeal_and_mediation_deadlines() -> None:
    views = [view("plan.final", "cancelled", date(2026, 7, 3), date(2026, 2, 13)), view("appeal.deadline"),
             view("mediation.adviser_contact", due_on=date(2026, 5, 19))]
    assert decision_facts("assessment.decision", NOTICE, views) == {
        "decision": "refuse", "appeal_by": "2026-05-20", "mediation_by": "2026-05-19"}


def test_an_agreed_assessment_gives_the_plan_date_and_no_appeal() -> None:
    views = [view("plan.final", "open", date(2026, 7, 3), date(2026, 2, 13)),
             view("appeal.deadline", opened_on=date(2025, 3, 1))]  # an old notice's window: not this one
    assert decision_facts("assessment.decision", NOTICE, views) == {
        "decision": "assess", "final_due_on": "2026-07-03", "appeal_by": None, "mediation_by": None}


def test_a_decision_whose_deadlines_are_not_known_yet_says_so() -> None:
    assert decision_facts("assessment.decision", NOTICE, [])["decision"] is None


@pytest.mark.parametrize(("views", "outcome"), [
    ([view("appeal.deadline"), view("cease.appeal_window")], "cease"),
    ([view("appeal.deadline")], "maintain"),
    ([], "amend"),
])
def test_a_review_decision_names_its_outcome(views: list[DeadlineView], outcome: str) -> None:
    assert decision_facts("review.decision", NOTICE, views)["outcome"] == outcome


def test_the_texts_say_what_was_decided() -> None:
    base = {"council_name": "Hertfordshire County Council", "link": "https://herts.gov.uk/ehc"}
    refused = render("family_decision_made", "en", "sms", {**base, **decision_facts(
        "assessment.decision", NOTICE, [view("appeal.deadline"), view("mediation.adviser_contact")])}).body
    assert "decided not to carry out an EHC needs assessment" in refused
    assert "contact a mediation adviser, then you can appeal to the tribunal by 20 May 2026" in refused
    agreed = render("family_decision_made", "en", "sms", {**base, **decision_facts(
        "assessment.decision", NOTICE, [view("plan.final", due_on=date(2026, 7, 3))])}).body
    assert "will carry out an EHC needs assessment" in agreed and "3 July 2026" in agreed
    assert "appeal" not in agreed


@pytest.mark.parametrize("rule_id", ["draft.representations", "mediation.adviser_contact", "appeal.deadline"])
def test_families_are_reminded_of_their_own_deadlines_at_5_and_1_working_days(rule_id: str) -> None:
    planned = []
    for offset in (10, 5, 3, 1, 0):
        event = deadline_event("deadline.due_soon", "c", rule_id, due_on=date(2026, 5, 20), responsible="family",
                               reminder_offset_days=offset)
        planned += [(p.kind, p.template) for p in plan_for_deadline_event(event, None, FAMILY, [], {})]
    assert planned == [("family_reminder_5", "family_deadline_reminder"),
                       ("family_reminder_1", "family_deadline_reminder")]


def test_the_reminder_days_are_a_setting() -> None:
    event = deadline_event("deadline.due_soon", "c", "appeal.deadline", due_on=date(2026, 5, 20),
                           responsible="family", reminder_offset_days=10)
    assert plan_for_deadline_event(event, None, FAMILY, [], {}, family_reminder_days=(10,))
