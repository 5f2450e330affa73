"""Law file A1: needs assessment and first plan. Worked dates, one row per case of each rule.

Calendar notes for 2026: Good Friday 3 April, Easter Monday 6 April, bank holidays 4 and 25 May.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_testkit import REQUEST, ROW_ARGS, check_row, ev, request_case, row

ASSESS = ev("ehc.assessment.decided", "2026-02-12", decision="assess", notice_sent_on="2026-02-12")
REFUSE = ev("ehc.assessment.decided", "2026-02-10", decision="refuse", notice_sent_on="2026-02-10")
DRAFT = ev("ehc.draft_plan.issued", "2026-04-20", served_on="2026-04-20")

ROWS = [
    # -- assessment.decision: 6 weeks from the request (C1): Mon 5 Jan -> Mon 16 Feb -----------------
    row("assessment.decision Regs 5(1) open",
        [REQUEST], "2026-01-06", "assessment.decision", "2026-02-16", "open"),
    row("assessment.decision Regs 5(1) due soon 10 working days before",
        [REQUEST], "2026-02-02", "assessment.decision", "2026-02-16", "due_soon"),
    row("assessment.decision Regs 5(1) not due soon 11 working days before",
        [REQUEST], "2026-01-30", "assessment.decision", "2026-02-16", "open"),
    row("assessment.decision Regs 5(1) due today",
        [REQUEST], "2026-02-16", "assessment.decision", "2026-02-16", "due_soon"),
    row("assessment.decision Regs 5(1) breached the day after",
        [REQUEST], "2026-02-17", "assessment.decision", "2026-02-16", "breached"),
    row("assessment.decision Regs 5(1) met on the due day",
        [REQUEST, ev("ehc.assessment.decided", "2026-02-16", decision="assess", notice_sent_on="2026-02-16")],
        "2026-03-01", "assessment.decision", "2026-02-16", "met", completed_on="2026-02-16"),
    row("assessment.decision Regs 5(1) the notice date counts not the decision date",
        [REQUEST, ev("ehc.assessment.decided", "2026-02-13", decision="assess", notice_sent_on="2026-02-17")],
        "2026-03-01", "assessment.decision", "2026-02-16", "met_late", completed_on="2026-02-17"),
    row("assessment.decision Regs 4(1) LA became responsible CFA s.24",
        [ev("ehc.request.received", "2026-01-05", route="became_responsible")],
        "2026-01-06", "assessment.decision", "2026-02-16", "open"),
    # -- assessment.advice: 6 weeks from the advice request (C1), one per advice_id ---------------------
    row("assessment.advice Regs 8(1) due on Good Friday (C1 does not roll over)",
        [REQUEST, ASSESS, ev("ehc.advice.requested", "2026-02-20", advice_id="ep-1",
                             provider_kind="educational_psychology", provider_id="ep-svc")],
        "2026-03-01", "assessment.advice", "2026-04-03", "open", instance="ep-1"),
    row("assessment.advice Regs 8(1) met on the due day",
        [REQUEST, ASSESS, ev("ehc.advice.requested", "2026-02-20", advice_id="ep-1", provider_kind="health"),
         ev("ehc.advice.received", "2026-04-03", advice_id="ep-1", provider_kind="health")],
        "2026-05-01", "assessment.advice", "2026-04-03", "met", instance="ep-1"),
    row("assessment.advice Regs 8(1) another body's reply does not complete it",
        [REQUEST, ASSESS, ev("ehc.advice.requested", "2026-02-20", advice_id="ep-1", provider_kind="health"),
         ev("ehc.advice.requested", "2026-02-23", advice_id="sc-1", provider_kind="social_care"),
         ev("ehc.advice.received", "2026-03-20", advice_id="sc-1", provider_kind="social_care")],
        "2026-04-07", "assessment.advice", "2026-04-03", "breached", instance="ep-1"),
    row("assessment.advice Regs 8(1) asked again after a reply is a new instance",
        [REQUEST, ASSESS, ev("ehc.advice.requested", "2026-02-20", advice_id="ep-1", provider_kind="health"),
         ev("ehc.advice.received", "2026-03-01", advice_id="ep-1", provider_kind="health"),
         ev("ehc.advice.requested", "2026-03-05", advice_id="ep-1", provider_kind="health")],
        "2026-03-06", "assessment.advice", "2026-04-16", "open", instance="ep-1#2"),
    # -- assessment.plan_decision: 16 weeks (C1): 5 Jan -> 27 Apr ----------------------------------------
    row("assessment.plan_decision Regs 10(1) breached",
        [REQUEST, ASSESS], "2026-04-28", "assessment.plan_decision", "2026-04-27", "breached"),
    row("assessment.plan_decision Regs 10(1) met by a no-plan notice",
        [REQUEST, ASSESS, ev("ehc.plan.not_issued", "2026-04-20", notice_sent_on="2026-04-21")],
        "2026-05-01", "assessment.plan_decision", "2026-04-27", "met", completed_on="2026-04-21"),
    row("assessment.plan_decision Regs 10(1) met by a draft plan served (project reading)",
        [REQUEST, ASSESS, ev("ehc.draft_plan.issued", "2026-04-24", served_on="2026-04-27")],
        "2026-05-01", "assessment.plan_decision", "2026-04-27", "met", completed_on="2026-04-27"),
    row("assessment.plan_decision Regs 10(1) cancelled by a refusal to assess",
        [REQUEST, REFUSE], "2026-06-01", "assessment.plan_decision", "2026-04-27", "cancelled"),
    # -- plan.final: 20 weeks (C1): 5 Jan -> Mon 25 May (a bank holiday: C1 does not move it) -------------
    row("plan.final Regs 13(2) due soon",
        [REQUEST, ASSESS], "2026-05-11", "plan.final", "2026-05-25", "due_soon"),
    row("plan.final Regs 13(2) met on day 140",
        [REQUEST, ASSESS, ev("ehc.plan.issued", "2026-05-25", plan_id="p-1")],
        "2026-06-01", "plan.final", "2026-05-25", "met"),
    row("plan.final Regs 13(2) met late on day 141",
        [REQUEST, ASSESS, ev("ehc.plan.issued", "2026-05-26", plan_id="p-1")],
        "2026-06-01", "plan.final", "2026-05-25", "met_late"),
    row("plan.final Regs 13(2) breached",
        [REQUEST, ASSESS], "2026-05-26", "plan.final", "2026-05-25", "breached"),
    row("plan.final Regs 13(2) cancelled by a refusal",
        [REQUEST, REFUSE], "2026-06-01", "plan.final", "2026-05-25", "cancelled"),
    row("plan.final Regs 13(2) cancelled by a no-plan notice",
        [REQUEST, ASSESS, ev("ehc.plan.not_issued", "2026-04-20", notice_sent_on="2026-04-21")],
        "2026-06-01", "plan.final", "2026-05-25", "cancelled"),
    row("plan.final Regs 13(2) cancelled by a closed case",
        [REQUEST, ASSESS, ev("ehc.case.closed", "2026-03-02", reason="request_withdrawn")],
        "2026-06-01", "plan.final", "2026-05-25", "cancelled"),
    # -- draft.representations: at least 15 days beginning with service (C2): 20 Apr -> 4 May -------------
    row("draft.representations Regs 13(1) window open and closing soon",
        [REQUEST, ASSESS, DRAFT], "2026-04-21", "draft.representations", "2026-05-04", "due_soon"),
    row("draft.representations Regs 13(1) final plan on the window's last day is flagged",
        [REQUEST, ASSESS, DRAFT, ev("ehc.plan.issued", "2026-05-04", plan_id="p-1")],
        "2026-05-05", "draft.representations", "2026-05-04", "met", flags=("issued_before_window",)),
    row("draft.representations Regs 13(1) final plan after the window",
        [REQUEST, ASSESS, DRAFT, ev("ehc.plan.issued", "2026-05-05", plan_id="p-1")],
        "2026-05-06", "draft.representations", "2026-05-04", "met", no_flags=("issued_before_window",)),
    row("draft.representations CFA s.38 a window closes and is never breached",
        [REQUEST, ASSESS, DRAFT], "2026-05-05", "draft.representations", "2026-05-04", "met", flags=("elapsed",)),
    # -- draft.consultation_response: 15 days (C1), guidance: never breached -----------------------------
    row("draft.consultation_response Code 9.83 guidance past due stays open",
        [REQUEST, ASSESS, ev("ehc.consultation.sent", "2026-04-21", institution_id="urn-1")],
        "2026-05-20", "draft.consultation_response", "2026-05-06", "open",
        instance="urn-1", flags=("guidance", "past_due")),
    row("draft.consultation_response Code 9.83 met",
        [REQUEST, ASSESS, ev("ehc.consultation.sent", "2026-04-21", institution_id="urn-1"),
         ev("ehc.consultation.responded", "2026-05-06", institution_id="urn-1")],
        "2026-05-20", "draft.consultation_response", "2026-05-06", "met", instance="urn-1"),
]


@pytest.mark.parametrize(ROW_ARGS, ROWS)
def test_rule(events: Any, as_of: str, rule_id: str, due: str, status: str, extra: dict[str, Any]) -> None:
    check_row(events, as_of, rule_id, due, status, **extra)


def test_second_request_while_open_is_ignored_regs_5_1() -> None:
    case = request_case("2026-01-05")
    case.add("ehc.request.received", "2026-01-20", route="request", requested_by="school")
    decisions = case.deadlines("2026-01-21", "assessment.decision")
    assert [x.instance for x in decisions] == ["1"]
    assert decisions[0].due_on.isoformat() == "2026-02-16"


def test_re_request_after_refusal_starts_new_instances_regs_5_1() -> None:
    case = request_case("2026-01-05")
    case.add("ehc.assessment.decided", "2026-02-10", decision="refuse", notice_sent_on="2026-02-10")
    case.add("ehc.request.received", "2026-09-01", route="request", requested_by="parent")
    got = {(x.rule_id, x.instance): x for x in case.compute("2026-09-02")}
    assert got[("assessment.decision", "1")].status == "met"
    assert got[("plan.final", "1")].status == "cancelled"
    # Tue 1 Sep 2026 + 6 weeks = Tue 13 Oct; + 20 weeks = Tue 19 Jan 2027
    assert got[("assessment.decision", "2")].due_on.isoformat() == "2026-10-13"
    assert got[("plan.final", "2")].due_on.isoformat() == "2027-01-19"
    assert got[("plan.final", "2")].status == "open"


def test_closed_case_keeps_a_breach_that_already_happened() -> None:
    case = request_case("2026-01-05")
    case.add("ehc.case.closed", "2026-03-02", reason="request_withdrawn")
    got = {x.rule_id: x for x in case.compute("2026-06-01")}
    assert got["assessment.decision"].status == "breached"  # due 16 Feb, closed 2 Mar
    assert "stopped_after_due" in got["assessment.decision"].flags
    assert got["assessment.plan_decision"].status == "cancelled"
    assert got["plan.final"].cancelled_on is not None


def test_request_starts_the_three_a1_clocks_with_explanations() -> None:
    got = request_case("2026-01-05").compute("2026-01-05")
    assert [x.rule_id for x in got] == ["assessment.decision", "assessment.plan_decision", "plan.final"]
    final = got[2]
    assert final.period_text == "20 weeks from the day the request was received (Regs 13(2))"
    assert final.trigger_event_id == "evt-1" and final.trigger_date.isoformat() == "2026-01-05"
    assert (final.kind, final.responsible, final.convention) == ("duty", "la", "C1")
    assert final.ruleset_version == "england-2014.1"
