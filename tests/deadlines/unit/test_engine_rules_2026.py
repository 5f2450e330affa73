"""Rule set england-2026.1: every rule corrected after the audit of issue 11, each row citing its
line of the law file (shared/law/england.md). Clocks starting from 1 December 2026 take this
version; the transition rows show that earlier clocks keep england-2014.1 (DESIGN §3)."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from engine_testkit import ROW_ARGS, Case, check_row, d, ev, row

from shared.contracts import build_case_event

CEASE_NOTICE = ev("ehc.cease.decided", "2027-10-27", notice_sent_on="2027-10-27")
PLAN = ev("ehc.plan.issued", "2027-01-04", plan_id="p-1")
HELD = ev("ehc.review.meeting_held", "2027-01-20")
# A review decision to cease, notified two days after it was made (notice 22 Jan: + 2 months = 22 Mar).
REVIEW_CEASE = ev("ehc.review.decision_issued", "2027-01-20", outcome="cease", notice_sent_on="2027-01-22")
SCHOOL_TRANSFER = ev("ehc.phase_transfer.planned", "2026-12-05", transfer_on="2027-09-01", kind="school")
POST16_TRANSFER = ev("ehc.phase_transfer.planned", "2026-12-05", transfer_on="2027-09-01", kind="post16")


def done(on: str, rule_id: str, **data: Any) -> Any:
    return ev("ehc.duty.done", on, rule_id=rule_id, **data)


ROWS = [
    # -- cease.appeal_window = the appeal deadline of the cease notice (england.md#L56) -----------------
    # 27 Oct 2027 + 2 months = 27 Dec, inside 25 Dec-1 Jan: first working day after 1 Jan (C9,
    # england.md#L146-L148) = Tue 4 Jan 2028 (Mon 3 Jan is the New Year bank holiday).
    row("cease.appeal_window england.md#L56 ceased 30 Dec 2027 after a notice of 27 Oct: breached",
        [PLAN, CEASE_NOTICE, ev("ehc.plan.ceased", "2027-12-30", notice_sent_on="2027-12-30")],
        "2028-01-10", "cease.appeal_window", "2028-01-04", "breached", flags=("ceased_before_window",)),
    row("cease.appeal_window england.md#L56 ceased the day after the rolled-over appeal deadline: met",
        [PLAN, CEASE_NOTICE, ev("ehc.plan.ceased", "2028-01-05", notice_sent_on="2028-01-05")],
        "2028-01-10", "cease.appeal_window", "2028-01-04", "met", no_flags=("ceased_before_window",)),
    # Notice 13 Jan 2027 + 2 months = Sat 13 Mar -> Mon 15 Mar; certificate 10 Mar + 1 month = Sat
    # 10 Apr -> Mon 12 Apr, the later date (england.md#L56, #L68).
    row("cease.appeal_window england.md#L56 extended by a mediation certificate as appeal.deadline is",
        [PLAN, ev("ehc.cease.decided", "2027-01-13", notice_sent_on="2027-01-13"),
         ev("ehc.mediation.requested", "2027-02-01"), ev("ehc.mediation.concluded", "2027-03-08"),
         ev("ehc.mediation.certificate_issued", "2027-03-10")],
        "2027-03-20", "cease.appeal_window", "2027-04-12", "open", flags=("mediation_certificate",)),
    row("cease.appeal_window england.md#L56 starts on a review decision to cease, from notice_sent_on",
        [PLAN, HELD, REVIEW_CEASE, ev("ehc.plan.ceased", "2027-03-22", notice_sent_on="2027-03-22")],
        "2027-03-25", "cease.appeal_window", "2027-03-22", "breached", flags=("ceased_before_window",)),
    row("cease.appeal_window england.md#L56 review decision to cease: ceasing after the window is lawful",
        [PLAN, HELD, REVIEW_CEASE, ev("ehc.plan.ceased", "2027-03-23", notice_sent_on="2027-03-23")],
        "2027-03-25", "cease.appeal_window", "2027-03-22", "met"),
    row("cease.appeal_window england.md#L56 an unopposed cease appeal keeps the plan: cancelled",
        [PLAN, CEASE_NOTICE, ev("ehc.appeal.registered", "2027-11-20"),
         ev("ehc.appeal.unopposed", "2027-12-10", order_type="continue")],
        "2028-02-01", "cease.appeal_window", "2028-01-04", "cancelled"),
    # (instance 1 of the appeal rules is the plan's own notice)
    # -- a review decision to cease is an appealable notice (DESIGN §2; england.md#L56, #L62, #L68) -------
    row("appeal.deadline england.md#L68 from a review decision to cease, on notice_sent_on",
        [PLAN, HELD, REVIEW_CEASE], "2027-01-25", "appeal.deadline", "2027-03-22", "open", instance="2"),
    row("mediation.adviser_contact england.md#L62 from a review decision to cease, on notice_sent_on",
        [PLAN, HELD, REVIEW_CEASE], "2027-01-25", "mediation.adviser_contact", "2027-03-22", "open", instance="2"),
    # -- mediation.adviser_contact rolls over with the appeal window: C4 + C9 (england.md#L62) ------------
    row("mediation.adviser_contact england.md#L62 Christmas roll-over (27 Dec 2027 -> 4 Jan 2028)",
        [PLAN, CEASE_NOTICE], "2027-11-01", "mediation.adviser_contact", "2028-01-04", "open", instance="2"),
    row("mediation.adviser_contact england.md#L62 August roll-over (15 Aug 2027 -> 1 Sep 2027)",
        [PLAN, ev("ehc.assessment.decided", "2027-06-15", decision="refuse", notice_sent_on="2027-06-15")],
        "2027-06-16", "mediation.adviser_contact", "2027-09-01", "open", instance="2"),
    # -- phase_transfer.review: a decision to amend does not complete it (england.md#L42-L43) -------------
    row("phase_transfer.review england.md#L42 a review decision to amend leaves it open: breached 15 Feb",
        [PLAN, SCHOOL_TRANSFER, HELD, ev("ehc.review.decision_issued", "2027-01-27", outcome="amend")],
        "2027-02-15", "phase_transfer.review", "2027-02-14", "breached"),
    row("phase_transfer.review england.md#L42 completed by the amended plan before 15 February",
        [PLAN, SCHOOL_TRANSFER, HELD, ev("ehc.review.decision_issued", "2027-01-27", outcome="amend"),
         ev("ehc.amendment.proposed", "2027-01-27"), ev("ehc.plan.amended", "2027-02-12")],
        "2027-02-15", "phase_transfer.review", "2027-02-14", "met", completed_on="2027-02-12"),
    row("phase_transfer.review england.md#L42 completed by a notice not to amend",
        [PLAN, SCHOOL_TRANSFER, ev("ehc.amendment.proposed", "2027-01-10"),
         ev("ehc.amendment.withdrawn", "2027-02-01")],
        "2027-02-15", "phase_transfer.review", "2027-02-14", "met", completed_on="2027-02-01"),
    row("phase_transfer.review england.md#L42 completed by a review decision to maintain (notified)",
        [PLAN, SCHOOL_TRANSFER, HELD,
         ev("ehc.review.decision_issued", "2027-02-10", outcome="maintain", notice_sent_on="2027-02-11")],
        "2027-02-15", "phase_transfer.review", "2027-02-14", "met", completed_on="2027-02-11"),
    row("phase_transfer.review england.md#L42 completed by a review decision to cease",
        [PLAN, SCHOOL_TRANSFER, HELD, ev("ehc.review.decision_issued", "2027-02-10", outcome="cease")],
        "2027-02-15", "phase_transfer.review", "2027-02-14", "met"),
    row("phase_transfer.review england.md#L43 post-16: a decision to amend leaves it open to 30 March",
        [PLAN, POST16_TRANSFER, HELD, ev("ehc.review.decision_issued", "2027-01-27", outcome="amend")],
        "2027-03-31", "phase_transfer.review", "2027-03-30", "breached"),
    # -- review decisions are dated by notice_sent_on (england.md#L35, #L39) ------------------------------
    row("review.annual england.md#L35 restarts from the day the LA notified its review decision",
        [PLAN, HELD, ev("ehc.review.decision_issued", "2027-01-25", outcome="maintain", notice_sent_on="2027-01-27")],
        "2027-02-01", "review.annual", "2028-01-26", "open", instance="2"),
    row("review.decision england.md#L39 met on the day the decision was notified, not decided",
        [PLAN, HELD, ev("ehc.review.decision_issued", "2027-02-17", outcome="maintain", notice_sent_on="2027-02-19")],
        "2027-03-01", "review.decision", "2027-02-17", "met_late", completed_on="2027-02-19"),
    # -- C3 corrected (england.md#L130-L135) ---------------------------------------------------------------
    row("review.annual england.md#L133 12 months starting with 1 March 2027 end on 29 February 2028",
        [ev("ehc.plan.issued", "2027-03-01", plan_id="p-1")], "2027-03-02", "review.annual", "2028-02-29", "open"),
    row("review.annual england.md#L133 12 months starting with 29 February 2028 end on 28 February 2029",
        [ev("ehc.plan.issued", "2028-02-29", plan_id="p-1")], "2028-03-02", "review.annual", "2029-02-28", "open"),
    row("review.under5 england.md#L45 + C3 6 months starting with 1 May 2027 end on 31 October 2027",
        [ev("ehc.plan.issued", "2027-05-01", plan_id="p-1", child_under_5=True)],
        "2027-05-02", "review.under5", "2027-10-31", "open"),
    row("transfer.review england.md#L55 + #L134 3 months starting with 1 May 2027 end on 31 July 2027",
        [ev("ehc.plan.transferred_in", "2027-05-01", transfer_on="2027-05-01", plan_made_on="2026-02-01",
            from_la="919")],
        "2027-05-02", "transfer.review", "2027-07-31", "open"),
    # -- ehc.duty.done completes the duties with no event of their own (DESIGN §2) ------------------------
    row("transfer.send_plan england.md#L53 ehc.plan.transfer_out only starts it: breached after the move",
        [PLAN, ev("ehc.plan.transfer_out", "2027-01-11", aware_on="2027-01-11", move_on="2027-03-01", to_la="919")],
        "2027-03-02", "transfer.send_plan", "2027-03-01", "breached"),
    row("transfer.send_plan england.md#L53 met by ehc.duty.done",
        [PLAN, ev("ehc.plan.transfer_out", "2027-01-11", aware_on="2027-01-11", move_on="2027-03-01", to_la="919"),
         done("2027-02-26", "transfer.send_plan")],
        "2027-03-02", "transfer.send_plan", "2027-03-01", "met", completed_on="2027-02-26"),
    row("transfer.notify_family england.md#L54 breached without ehc.duty.done",
        [ev("ehc.plan.transferred_in", "2027-01-04", transfer_on="2027-01-04", plan_made_on="2026-02-01",
            from_la="919")],
        "2027-02-16", "transfer.notify_family", "2027-02-15", "breached"),
    row("transfer.notify_family england.md#L54 met by ehc.duty.done",
        [ev("ehc.plan.transferred_in", "2027-01-04", transfer_on="2027-01-04", plan_made_on="2026-02-01",
            from_la="919"), done("2027-02-01", "transfer.notify_family")],
        "2027-02-16", "transfer.notify_family", "2027-02-15", "met"),
    row("review.advice_circulation england.md#L37 met by ehc.duty.done naming the meeting date",
        [PLAN, ev("ehc.review.meeting_scheduled", "2027-01-04", meeting_on="2027-01-25"),
         done("2027-01-08", "review.advice_circulation", instance="2027-01-25")],
        "2027-01-12", "review.advice_circulation", "2027-01-11", "met", completed_on="2027-01-08"),
    row("review.advice_circulation england.md#L37 ehc.duty.done naming another meeting leaves it",
        [PLAN, ev("ehc.review.meeting_scheduled", "2027-01-04", meeting_on="2027-01-25"),
         done("2027-01-08", "review.advice_circulation", instance="2027-02-25")],
        "2027-01-12", "review.advice_circulation", "2027-01-11", "breached"),
    row("mediation.health_notice england.md#L64 met by ehc.duty.done within 3 working days",
        [CEASE_NOTICE, ev("ehc.mediation.requested", "2027-11-01", includes_health=True),
         done("2027-11-03", "mediation.health_notice")],
        "2027-11-10", "mediation.health_notice", "2027-11-04", "met"),
    row("mediation.health_notice england.md#L64 breached without it",
        [CEASE_NOTICE, ev("ehc.mediation.requested", "2027-11-01", includes_health=True)],
        "2027-11-10", "mediation.health_notice", "2027-11-04", "breached"),
    row("mediation.agreement england.md#L67 breached without ehc.duty.done",
        [ev("ehc.mediation.agreement", "2027-01-04", appealable=False)],
        "2027-01-19", "mediation.agreement", "2027-01-18", "breached"),
    row("mediation.agreement england.md#L67 met by ehc.duty.done",
        [ev("ehc.mediation.agreement", "2027-01-04", appealable=False), done("2027-01-18", "mediation.agreement")],
        "2027-01-19", "mediation.agreement", "2027-01-18", "met"),
    # 30 working days from Mon 4 Jan 2027 (C7): Mon 15 Feb 2027.
    row("appeal.la_response england.md#L69 breached without a response",
        [ev("ehc.appeal.registered", "2027-01-04", sent_to_la_on="2027-01-04")],
        "2027-02-16", "appeal.la_response", "2027-02-15", "breached"),
    row("appeal.la_response england.md#L69 an opposing response recorded by ehc.duty.done",
        [ev("ehc.appeal.registered", "2027-01-04", sent_to_la_on="2027-01-04"),
         done("2027-02-10", "appeal.la_response")],
        "2027-02-16", "appeal.la_response", "2027-02-15", "met"),
    row("tribunal.continue england.md#L86 breached the day after the order without ehc.duty.done",
        [ev("ehc.tribunal.order", "2027-01-04", order_type="continue")],
        "2027-01-05", "tribunal.continue", "2027-01-04", "breached", flags=("unconfirmed",)),
    row("tribunal.continue england.md#L86 met by ehc.duty.done on the day",
        [ev("ehc.tribunal.order", "2027-01-04", order_type="continue"), done("2027-01-04", "tribunal.continue")],
        "2027-01-05", "tribunal.continue", "2027-01-04", "met"),
    row("tribunal.continue england.md#L86 ehc.duty.done names its instance (the second order open)",
        [ev("ehc.tribunal.order", "2027-01-04", order_type="continue"),
         ev("ehc.tribunal.order", "2027-01-11", order_type="continue"),
         done("2027-01-11", "tribunal.continue", instance="1")],
        "2027-01-12", "tribunal.continue", "2027-01-11", "breached", instance="2"),
    row("tribunal.recommendation_response england.md#L87 met by ehc.duty.done",
        [ev("ehc.tribunal.order", "2027-01-04", order_type="recommendation"),
         done("2027-02-01", "tribunal.recommendation_response")],
        "2027-02-09", "tribunal.recommendation_response", "2027-02-08", "met"),
    row("tribunal.recommendation_response england.md#L87 breached without it",
        [ev("ehc.tribunal.order", "2027-01-04", order_type="recommendation")],
        "2027-02-09", "tribunal.recommendation_response", "2027-02-08", "breached"),
    # -- unopposed appeals: three more limits of Regs 45 (england.md#L90-L92), unconfirmed ---------------
    row("unopposed.plan_draft england.md#L90 5 weeks",
        [ev("ehc.appeal.unopposed", "2027-01-04", order_type="make_plan")],
        "2027-01-05", "unopposed.plan_draft", "2027-02-08", "open", flags=("unconfirmed",)),
    row("unopposed.plan_draft england.md#L90 met by the draft plan",
        [ev("ehc.appeal.unopposed", "2027-01-04", order_type="make_plan"),
         ev("ehc.draft_plan.issued", "2027-02-05", served_on="2027-02-05")],
        "2027-02-10", "unopposed.plan_draft", "2027-02-08", "met"),
    row("unopposed.plan_final england.md#L90 11 weeks",
        [ev("ehc.appeal.unopposed", "2027-01-04", order_type="make_plan")],
        "2027-03-23", "unopposed.plan_final", "2027-03-22", "breached", flags=("unconfirmed",)),
    row("unopposed.school_name england.md#L91 2 weeks, met by the amended plan",
        [ev("ehc.appeal.unopposed", "2027-01-04", order_type="school_name"), ev("ehc.plan.amended", "2027-01-15")],
        "2027-01-19", "unopposed.school_name", "2027-01-18", "met", flags=("unconfirmed",)),
    row("unopposed.amend england.md#L89 5 weeks on the contents",
        [ev("ehc.appeal.unopposed", "2027-01-04", order_type="amend")],
        "2027-01-05", "unopposed.amend", "2027-02-08", "open"),
    row("unopposed.cease_amend england.md#L92 amend within 5 weeks when the LA agreed to",
        [PLAN, ev("ehc.cease.decided", "2027-01-04", notice_sent_on="2027-01-04"),
         ev("ehc.appeal.unopposed", "2027-02-01", order_type="continue", amendment_agreed=True)],
        "2027-03-09", "unopposed.cease_amend", "2027-03-08", "breached", flags=("unconfirmed",)),
    # -- B: an exception recorded after the due date keeps the breach (england.md#L101-L103) -------------
    row("assessment.decision england.md#L101 exception recorded after the due date keeps the breach",
        [ev("ehc.request.received", "2027-01-04"), ev("ehc.exception.recorded", "2027-02-20", exception="E3")],
        "2027-03-01", "assessment.decision", "2027-02-15", "exception",
        flags=("breached_before_exception", "breached_on:2027-02-16")),
    row("assessment.decision england.md#L96 exception recorded in time: no breach on record",
        [ev("ehc.request.received", "2027-01-04"), ev("ehc.exception.recorded", "2027-02-10", exception="E3")],
        "2027-03-01", "assessment.decision", "2027-02-15", "exception", no_flags=("breached_before_exception",)),
    row("assessment.decision england.md#L24 E2 on the 6-week decision is unconfirmed",
        [ev("ehc.request.received", "2027-01-04"),
         ev("ehc.exception.recorded", "2027-01-20", exception="E2", rule_ids=["assessment.decision"])],
        "2027-03-01", "assessment.decision", "2027-02-15", "exception", flags=("exception_unconfirmed:E2",)),
]


@pytest.mark.parametrize(ROW_ARGS, ROWS)
def test_rule(events: list[Any], as_of: str, rule_id: str, due: str, status: str, extra: dict[str, Any]) -> None:
    got = check_row(events, as_of, rule_id, due, status, **extra)
    assert got.ruleset_version == "england-2026.1"


def test_unopposed_school_name_no_longer_starts_the_5_week_amendment() -> None:
    # england.md#L91: school name only is 2 weeks (unopposed.school_name), not unopposed.amend.
    case = Case()
    case.add("ehc.appeal.unopposed", "2027-01-04", order_type="school_name")
    assert case.deadlines("2027-01-05", "unopposed.amend") == []


def test_unopposed_cease_appeal_without_agreed_amendment_starts_no_amendment() -> None:
    case = Case()
    case.add("ehc.appeal.unopposed", "2027-01-04", order_type="continue")
    assert case.deadlines("2027-01-05", "unopposed.cease_amend") == []


def test_duty_done_is_refused_for_a_rule_with_an_event_of_its_own() -> None:
    # DESIGN §2 ehc.duty.done: "refused (dead-lettered) for any other rule".
    common = {"id": "e-1", "source": "test", "case_id": "case-1", "time": "2027-01-05T10:00:00Z",
              "occurred_on": "2027-01-05"}
    assert build_case_event("ehc.duty.done", rule_id="transfer.send_plan", **common).data.rule_id
    with pytest.raises(pydantic.ValidationError):
        build_case_event("ehc.duty.done", rule_id="plan.final", **common)


def test_family_message_starts_nothing() -> None:
    case = Case()
    case.add("ehc.family.message", "2027-01-05", topic="date_wrong", message_id="msg-1")
    assert case.compute("2027-01-06") == []


# -- transition: clocks started before 1 December 2026 keep england-2014.1 (DESIGN §3) ---------------


def test_a_cease_window_started_before_the_new_version_keeps_the_2014_reading() -> None:
    # Notice 27 Oct 2026 (england-2014.1: C4 without C9): 27 Dec 2026, not rolled to 4 Jan 2027.
    case = Case()
    case.add("ehc.plan.issued", "2026-01-05", plan_id="p-1")
    case.add("ehc.cease.decided", "2026-10-27", notice_sent_on="2026-10-27")
    got = case.deadline("2026-11-01", "cease.appeal_window")
    assert (got.ruleset_version, got.due_on, got.convention) == ("england-2014.1", d("2026-12-27"), "C4")


def test_c3_before_the_new_version_keeps_the_earlier_formula() -> None:
    # england-2014.1 counted 6 months starting with 1 May as ending on 30 October (C3.2014); the
    # same plan a year later ends on 31 October (C3 corrected, england.md#L130-L135).
    old, new = Case(), Case()
    old.add("ehc.plan.issued", "2026-05-01", plan_id="p-1", child_under_5=True)
    new.add("ehc.plan.issued", "2027-05-01", plan_id="p-1", child_under_5=True)
    a, b = old.deadline("2026-05-02", "review.under5"), new.deadline("2027-05-02", "review.under5")
    assert (a.ruleset_version, a.due_on, a.convention) == ("england-2014.1", d("2026-10-30"), "C3.2014")
    assert (b.ruleset_version, b.due_on, b.convention) == ("england-2026.1", d("2027-10-31"), "C3")


def test_every_rule_of_the_new_version_cites_its_law_line() -> None:
    from engine_testkit import HISTORY

    for rule in HISTORY.latest.rules.values():
        assert rule.law_ref.startswith("england.md#L"), rule.rule_id
        assert rule.describe()["law_ref"] == rule.law_ref


def test_the_duties_done_by_ehc_duty_done_are_exactly_the_contract_list() -> None:
    # DESIGN §2: the contract refuses ehc.duty.done for any other rule; the rule set must agree.
    from engine_testkit import HISTORY

    from shared.contracts.case_events import DUTY_DONE_RULE_IDS

    completed = {r.rule_id for r in HISTORY.latest.rules.values()
                 if any(m.type == "ehc.duty.done" for m in r.completed_by)}
    assert completed == set(DUTY_DONE_RULE_IDS)
    for rule_id in completed:
        assert "completion_not_recorded" not in HISTORY.latest.rules[rule_id].flags
