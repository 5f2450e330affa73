"""Law file A4 (mediation and appeal) and A5 (tribunal orders, unopposed appeals). Worked dates.

Calendar notes: Good Friday 3 April 2026, Easter Monday 6 April 2026; bank holidays 4 May and
31 August 2026; Christmas Day 2026 is a Friday, Boxing Day's substitute Monday 28 December;
New Year's Day 2027 is a Friday.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_testkit import REQUEST, ROW_ARGS, Case, check_row, ev, row


def refused(on: str) -> list[Any]:
    """A request refused with a notice sent on ``on``: an appealable decision."""
    return [REQUEST, ev("ehc.assessment.decided", on, decision="refuse", notice_sent_on=on)]


PLAN = ev("ehc.plan.issued", "2025-03-10", plan_id="p-1")


def order(on: str, order_type: str) -> Any:
    return ev("ehc.tribunal.order", on, order_type=order_type)


def unopposed(on: str, order_type: str) -> Any:
    return ev("ehc.appeal.unopposed", on, order_type=order_type)


ROWS = [
    # -- appeal.deadline: 2 months after the notice (C4), rolled over by C9 -----------------------------
    row("appeal.deadline HESC Rules 20(1)(c) a working day stays",
        refused("2026-01-10"), "2026-01-11", "appeal.deadline", "2026-03-10", "open"),
    row("appeal.deadline HESC Rules 12(3) Easter: Good Friday moves past Easter Monday",
        refused("2026-02-03"), "2026-02-04", "appeal.deadline", "2026-04-07", "open"),
    row("appeal.deadline HESC Rules 12(3) August moves to the first working day after 31 August",
        refused("2026-06-15"), "2026-06-16", "appeal.deadline", "2026-09-01", "open"),
    row("appeal.deadline HESC Rules 12(3) Christmas moves to the first working day after 1 January",
        refused("2026-10-27"), "2026-10-28", "appeal.deadline", "2027-01-04", "open"),
    row("appeal.deadline HESC Rules 12(3) New Year's Day moves too",
        refused("2026-11-01"), "2026-11-02", "appeal.deadline", "2027-01-04", "open"),
    row("appeal.deadline HESC Rules 12(3) 24 December is not rolled",
        refused("2026-10-24"), "2026-10-25", "appeal.deadline", "2026-12-24", "open"),
    row("appeal.deadline HESC Rules 20(1)(c) 1 month after a later mediation certificate",
        [*refused("2026-03-02"), ev("ehc.mediation.requested", "2026-03-20"),
         ev("ehc.mediation.concluded", "2026-04-15"), ev("ehc.mediation.certificate_issued", "2026-04-20")],
        "2026-04-21", "appeal.deadline", "2026-05-20", "open", flags=("mediation_certificate",)),
    row("appeal.deadline HESC Rules 20(1)(c) an earlier certificate does not shorten it",
        [*refused("2026-03-02"), ev("ehc.mediation.declined", "2026-03-05"),
         ev("ehc.mediation.certificate_issued", "2026-03-09")],
        "2026-03-10", "appeal.deadline", "2026-05-05", "open"),
    row("appeal.deadline HESC Rules 20(1)(c) met by the appeal",
        [*refused("2026-01-10"), ev("ehc.appeal.registered", "2026-03-01", sent_to_la_on="2026-03-03")],
        "2026-03-20", "appeal.deadline", "2026-03-10", "met"),
    row("appeal.deadline HESC Rules 20(1)(c) a family window closes, never breached",
        refused("2026-01-10"), "2026-03-11", "appeal.deadline", "2026-03-10", "met", flags=("elapsed",)),
    row("appeal.deadline CFA s.51(2) the final plan is appealable",
        [PLAN], "2025-03-11", "appeal.deadline", "2025-05-12", "open"),
    # -- mediation -------------------------------------------------------------------------------------
    row("mediation.adviser_contact Regs 33 2 months after the notice (C4, no roll-over)",
        refused("2026-06-30"), "2026-07-01", "mediation.adviser_contact", "2026-08-30", "open"),
    row("mediation.adviser_contact Regs 33 met when the family asks for mediation",
        [*refused("2026-06-30"), ev("ehc.mediation.requested", "2026-07-20")],
        "2026-07-21", "mediation.adviser_contact", "2026-08-30", "met"),
    row("mediation.certificate_declined Regs 34 3 working days over Christmas",
        [*refused("2026-12-01"), ev("ehc.mediation.declined", "2026-12-23")],
        "2026-12-24", "mediation.certificate_declined", "2026-12-30", "due_soon", flags=("unconfirmed",)),
    row("mediation.certificate_declined Regs 34 met",
        [*refused("2026-12-01"), ev("ehc.mediation.declined", "2026-12-23"),
         ev("ehc.mediation.certificate_issued", "2026-12-29")],
        "2027-01-05", "mediation.certificate_declined", "2026-12-30", "met"),
    row("mediation.health_notice Regs 35-36 3 working days over Easter",
        [*refused("2026-03-02"), ev("ehc.mediation.requested", "2026-04-02", includes_health=True)],
        "2026-04-03", "mediation.health_notice", "2026-04-09", "due_soon", flags=("unconfirmed",)),
    row("mediation.arrange Regs 35-37 30 days, met when mediation concludes",
        [*refused("2026-03-02"), ev("ehc.mediation.requested", "2026-04-02"),
         ev("ehc.mediation.concluded", "2026-04-30")],
        "2026-05-05", "mediation.arrange", "2026-05-02", "met", flags=("unconfirmed",)),
    row("mediation.arrange Regs 35-37 breached",
        [*refused("2026-03-02"), ev("ehc.mediation.requested", "2026-04-02")],
        "2026-05-03", "mediation.arrange", "2026-05-02", "breached"),
    row("mediation.certificate Regs 39-40 3 working days over the May bank holiday",
        [*refused("2026-03-02"), ev("ehc.mediation.requested", "2026-04-02"),
         ev("ehc.mediation.concluded", "2026-04-30")],
        "2026-05-01", "mediation.certificate", "2026-05-06", "due_soon"),
    row("mediation.agreement Regs 42(3) 2 weeks, not appealable",
        [*refused("2026-03-02"), ev("ehc.mediation.agreement", "2026-05-10", appealable=False)],
        "2026-05-11", "mediation.agreement", "2026-05-24", "due_soon", flags=("completion_not_recorded",)),
    row("appeal.la_response HESC Rules 30 working days over the August bank holiday",
        [*refused("2026-06-01"), ev("ehc.appeal.registered", "2026-07-15", sent_to_la_on="2026-07-20")],
        "2026-07-21", "appeal.la_response", "2026-09-01", "open", flags=("unconfirmed",)),
    row("appeal.la_response HESC Rules met by an unopposed appeal",
        [*refused("2026-06-01"), ev("ehc.appeal.registered", "2026-07-15", sent_to_la_on="2026-07-20"),
         unopposed("2026-08-10", "assess")],
        "2026-08-11", "appeal.la_response", "2026-09-01", "met"),
    row("appeal.la_response HESC Rules a response with no event is never breached",
        [*refused("2026-06-01"), ev("ehc.appeal.registered", "2026-07-15", sent_to_la_on="2026-07-20")],
        "2026-09-02", "appeal.la_response", "2026-09-01", "open", flags=("completion_not_recorded", "past_due")),
    # -- A5 tribunal orders: from the date of the order, Wed 1 July 2026 (C1) ----------------------------
    row("tribunal.assess_notify Regs 44(2)(b) 2 weeks",
        [order("2026-07-01", "assess")], "2026-07-02", "tribunal.assess_notify", "2026-07-15", "due_soon"),
    row("tribunal.assess_notify Regs 44(2)(b) met by the notice that the LA will assess",
        [order("2026-07-01", "assess"),
         ev("ehc.assessment.decided", "2026-07-09", decision="assess", notice_sent_on="2026-07-10")],
        "2026-07-16", "tribunal.assess_notify", "2026-07-15", "met", completed_on="2026-07-10"),
    row("tribunal.assess_no_plan Regs 44(2)(b)(i) 10 weeks",
        [order("2026-07-01", "assess")], "2026-07-02", "tribunal.assess_no_plan", "2026-09-09", "open"),
    row("tribunal.assess_no_plan Regs 44(2)(b)(i) met by the no-plan notice",
        [order("2026-07-01", "assess"), ev("ehc.plan.not_issued", "2026-08-20", notice_sent_on="2026-08-20")],
        "2026-09-10", "tribunal.assess_no_plan", "2026-09-09", "met"),
    row("tribunal.assess_final Regs 44(2)(b)(ii) 14 weeks",
        [order("2026-07-01", "assess")], "2026-07-02", "tribunal.assess_final", "2026-10-07", "open"),
    row("tribunal.assess_final Regs 44(2)(b)(ii) cancelled when no plan will be made",
        [order("2026-07-01", "assess"), ev("ehc.plan.not_issued", "2026-08-20", notice_sent_on="2026-08-20")],
        "2026-09-10", "tribunal.assess_final", "2026-10-07", "cancelled"),
    row("tribunal.plan_draft Regs 44(2)(c)(i) 5 weeks",
        [order("2026-07-01", "make_plan")], "2026-07-02", "tribunal.plan_draft", "2026-08-05", "open"),
    row("tribunal.plan_final Regs 44(2)(c)(ii) 11 weeks, met",
        [order("2026-07-01", "make_plan"), ev("ehc.draft_plan.issued", "2026-07-29", served_on="2026-07-29"),
         ev("ehc.plan.issued", "2026-09-16", plan_id="p-2")],
        "2026-09-17", "tribunal.plan_final", "2026-09-16", "met"),
    row("tribunal.amend Regs 44(2)(e) 5 weeks",
        [PLAN, order("2026-07-01", "amend")], "2026-07-02", "tribunal.amend", "2026-08-05", "open"),
    row("tribunal.amend Regs 44(2)(e) in August: no C9 roll-over (law file D)",
        [PLAN, order("2026-07-10", "amend")], "2026-07-11", "tribunal.amend", "2026-08-14", "open"),
    row("tribunal.amend Regs 44(2)(e) met by the amended plan",
        [PLAN, order("2026-07-01", "amend"), ev("ehc.plan.amended", "2026-08-05")],
        "2026-08-06", "tribunal.amend", "2026-08-05", "met"),
    row("tribunal.school_name Regs 44(2)(f) 2 weeks, breached",
        [PLAN, order("2026-07-01", "school_name")], "2026-07-16", "tribunal.school_name", "2026-07-15", "breached"),
    row("tribunal.continue Regs 44(2)(a) due on the day of the order",
        [PLAN, order("2026-07-01", "continue")], "2026-07-01", "tribunal.continue", "2026-07-01", "due_soon"),
    row("tribunal.recommendation_response Recommendations Power Regs 2017 regs 6-7 5 weeks",
        [PLAN, order("2026-07-01", "recommendation")],
        "2026-07-02", "tribunal.recommendation_response", "2026-08-05", "open"),
    row("unopposed.assess_notify Regs 45(3) 2 weeks from the LA's notice to the tribunal",
        [unopposed("2026-07-01", "assess")], "2026-07-02", "unopposed.assess_notify", "2026-07-15", "due_soon"),
    row("unopposed.assess_no_plan Regs 45(3A) 10 weeks",
        [unopposed("2026-07-01", "assess")], "2026-07-02", "unopposed.assess_no_plan", "2026-09-09", "open"),
    row("unopposed.assess_final Regs 45(3A) 14 weeks",
        [unopposed("2026-07-01", "assess")], "2026-07-02", "unopposed.assess_final", "2026-10-07", "open"),
    row("unopposed.amend Regs 45(4) 5 weeks, met late",
        [PLAN, unopposed("2026-07-01", "amend"), ev("ehc.plan.amended", "2026-08-06")],
        "2026-08-07", "unopposed.amend", "2026-08-05", "met_late"),
]


@pytest.mark.parametrize(ROW_ARGS, ROWS)
def test_rule(events: Any, as_of: str, rule_id: str, due: str, status: str, extra: dict[str, Any]) -> None:
    check_row(events, as_of, rule_id, due, status, **extra)


def test_an_order_starts_only_the_rules_of_its_type_regs_44() -> None:
    case = Case()
    case.add("ehc.tribunal.order", "2026-07-01", order_type="make_plan")
    assert sorted(x.rule_id for x in case.compute("2026-07-02")) == ["tribunal.plan_draft", "tribunal.plan_final"]


def test_appeal_deadline_explains_the_roll_over_hesc_12_3() -> None:
    case = Case()
    case.add("ehc.request.received", "2026-01-05")
    case.add("ehc.assessment.decided", "2026-06-15", decision="refuse", notice_sent_on="2026-06-15")
    got = case.deadline("2026-06-16", "appeal.deadline")
    assert "moved from 2026-08-15" in got.period_text
    assert got.convention == "C4+C9" and got.kind == "window" and got.responsible == "family"


def test_a_certificate_answers_the_latest_notice_only() -> None:
    case = Case()
    case.add("ehc.request.received", "2025-01-06")
    case.add("ehc.assessment.decided", "2025-02-10", decision="refuse", notice_sent_on="2025-02-10")
    case.add("ehc.request.received", "2026-01-05")
    case.add("ehc.assessment.decided", "2026-02-10", decision="refuse", notice_sent_on="2026-02-10")
    case.add("ehc.mediation.certificate_issued", "2026-03-30")
    first, second = case.deadlines("2026-03-31", "appeal.deadline")
    assert first.due_on.isoformat() == "2025-04-10" and "mediation_certificate" not in first.flags
    assert second.due_on.isoformat() == "2026-04-30" and "mediation_certificate" in second.flags
