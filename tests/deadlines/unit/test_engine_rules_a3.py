"""Law file A3: re-assessment, transfer between authorities, ceasing. Worked dates per rule.

Calendar notes for 2026: Good Friday 3 April, Easter Monday 6 April.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_testkit import ROW_ARGS, Case, check_row, ev, row

PLAN = ev("ehc.plan.issued", "2025-03-10", plan_id="p-1")
REASSESS = ev("ehc.reassessment.decided", "2026-06-09", decision="reassess", notice_sent_on="2026-06-10")
CEASE = ev("ehc.cease.decided", "2026-09-30", notice_sent_on="2026-10-01")
TRANSFERRED_IN = ev("ehc.plan.transferred_in", "2026-05-01", transfer_on="2026-05-01", plan_made_on="2024-06-10",
                    last_reviewed_on="2025-06-20", from_la="919")

ROWS = [
    # -- reassessment.decision: 15 days (C1), unconfirmed --------------------------------------------------
    row("reassessment.decision Regs 25(1) open and flagged unconfirmed",
        [PLAN, ev("ehc.reassessment.requested", "2026-06-01")],
        "2026-06-02", "reassessment.decision", "2026-06-16", "due_soon", flags=("unconfirmed",)),
    row("reassessment.decision Regs 25(1) met",
        [PLAN, ev("ehc.reassessment.requested", "2026-06-01"), REASSESS],
        "2026-06-20", "reassessment.decision", "2026-06-16", "met", completed_on="2026-06-10"),
    # -- reassessment.final: 14 weeks from the notice that the LA will re-assess (C1) ----------------------
    row("reassessment.final Regs 27(2) open",
        [PLAN, ev("ehc.reassessment.requested", "2026-06-01"), REASSESS],
        "2026-06-20", "reassessment.final", "2026-09-16", "open"),
    row("reassessment.final Regs 27(2) met by the amended plan",
        [PLAN, ev("ehc.reassessment.requested", "2026-06-01"), REASSESS, ev("ehc.plan.amended", "2026-09-10")],
        "2026-09-20", "reassessment.final", "2026-09-16", "met"),
    row("reassessment.final Regs 27(2) breached",
        [PLAN, ev("ehc.reassessment.requested", "2026-06-01"), REASSESS],
        "2026-09-17", "reassessment.final", "2026-09-16", "breached"),
    # -- transfer.send_plan (C7), both branches of Regs 15(2) ----------------------------------------------
    row("transfer.send_plan Regs 15(2) aware 15+ working days before: on the day of the move",
        [PLAN, ev("ehc.plan.transfer_out", "2026-04-20", move_on="2026-04-20", aware_on="2026-03-02", to_la="919")],
        "2026-04-21", "transfer.send_plan", "2026-04-20", "met"),
    row("transfer.send_plan Regs 15(2) aware late: 15 working days beginning with awareness, over Easter",
        [PLAN, ev("ehc.plan.transfer_out", "2026-04-22", move_on="2026-04-08", aware_on="2026-03-30", to_la="919")],
        "2026-04-23", "transfer.send_plan", "2026-04-21", "met_late"),
    row("transfer.send_plan Regs 15(2) exactly 15 working days' notice is the day of the move",
        [PLAN, ev("ehc.plan.transfer_out", "2026-03-23", move_on="2026-03-23", aware_on="2026-03-02", to_la="919")],
        "2026-03-24", "transfer.send_plan", "2026-03-23", "met"),
    row("transfer.send_plan Regs 15(2) 14 working days' notice takes the late branch",
        [PLAN, ev("ehc.plan.transfer_out", "2026-03-20", move_on="2026-03-20", aware_on="2026-03-02", to_la="919")],
        "2026-03-24", "transfer.send_plan", "2026-03-20", "met"),
    # -- transfer.notify_family: 6 weeks from the transfer (C1), no completing event ----------------------
    row("transfer.notify_family Regs 15(4) shown but never breached",
        [TRANSFERRED_IN], "2026-06-20", "transfer.notify_family", "2026-06-12", "open",
        flags=("completion_not_recorded", "past_due")),
    # -- transfer.review: the later of 12 months from the last review and 3 months from the transfer -------
    row("transfer.review Regs 15(5) 3 months from the transfer is later",
        [TRANSFERRED_IN], "2026-05-02", "transfer.review", "2026-07-30", "open"),
    row("transfer.review Regs 15(5) 12 months from the last review is later",
        [ev("ehc.plan.transferred_in", "2026-05-01", transfer_on="2026-05-01", plan_made_on="2024-06-10",
            last_reviewed_on="2025-11-20", from_la="919")],
        "2026-05-02", "transfer.review", "2026-11-19", "open"),
    row("transfer.review Regs 15(3) never reviewed: 12 months from the plan's original date",
        [ev("ehc.plan.transferred_in", "2026-05-01", transfer_on="2026-05-01", plan_made_on="2025-12-01",
            from_la="919")],
        "2026-05-02", "transfer.review", "2026-11-30", "open"),
    row("transfer.review Regs 15(5) met by the new LA's review decision",
        [TRANSFERRED_IN, ev("ehc.review.decision_issued", "2026-07-15", outcome="maintain")],
        "2026-07-16", "transfer.review", "2026-07-30", "met"),
    row("review.annual CFA s.44(1) restarts from the review after a transfer",
        [TRANSFERRED_IN, ev("ehc.review.decision_issued", "2026-07-15", outcome="maintain")],
        "2026-07-16", "review.annual", "2027-07-14", "open"),
    # -- cease.appeal_window: not before 2 months after the cease notice (C4) -----------------------------
    row("cease.appeal_window CFA s.45 open until the appeal deadline",
        [PLAN, CEASE], "2026-10-02", "cease.appeal_window", "2026-12-01", "open"),
    row("cease.appeal_window CFA s.45 ceasing inside the window is flagged",
        [PLAN, CEASE, ev("ehc.plan.ceased", "2026-11-15", notice_sent_on="2026-11-15")],
        "2026-11-16", "cease.appeal_window", "2026-12-01", "breached", flags=("ceased_before_window",)),
    row("cease.appeal_window CFA s.45 ceasing after the window",
        [PLAN, CEASE, ev("ehc.plan.ceased", "2026-12-02", notice_sent_on="2026-12-02")],
        "2026-12-03", "cease.appeal_window", "2026-12-01", "met", no_flags=("ceased_before_window",)),
    row("cease.appeal_window CFA s.45 window passed with no appeal",
        [PLAN, CEASE], "2026-12-05", "cease.appeal_window", "2026-12-01", "met", flags=("elapsed",)),
    row("cease.appeal_window CFA s.45 an appeal holds the window open",
        [PLAN, CEASE, ev("ehc.appeal.registered", "2026-11-01", sent_to_la_on="2026-11-03")],
        "2027-01-10", "cease.appeal_window", "2026-12-01", "open", flags=("appeal_pending",)),
    row("cease.appeal_window CFA s.45 ceasing before the appeal is decided is flagged",
        [PLAN, CEASE, ev("ehc.appeal.registered", "2026-11-01", sent_to_la_on="2026-11-03"),
         ev("ehc.plan.ceased", "2026-12-15", notice_sent_on="2026-12-15")],
        "2027-01-10", "cease.appeal_window", "2026-12-01", "breached", flags=("ceased_before_appeal_decided",)),
    row("cease.appeal_window CFA s.45 ceasing after the tribunal decided",
        [PLAN, CEASE, ev("ehc.appeal.registered", "2026-11-01", sent_to_la_on="2026-11-03"),
         ev("ehc.tribunal.order", "2027-02-01", order_type="amend"),
         ev("ehc.plan.ceased", "2027-02-10", notice_sent_on="2027-02-10")],
        "2027-02-11", "cease.appeal_window", "2026-12-01", "met", flags=("appeal_decided",)),
    row("cease.appeal_window CFA s.45 an order to continue cancels the cease",
        [PLAN, CEASE, ev("ehc.appeal.registered", "2026-11-01", sent_to_la_on="2026-11-03"),
         ev("ehc.tribunal.order", "2027-02-01", order_type="continue")],
        "2027-02-11", "cease.appeal_window", "2026-12-01", "cancelled"),
]


@pytest.mark.parametrize(ROW_ARGS, ROWS)
def test_rule(events: Any, as_of: str, rule_id: str, due: str, status: str, extra: dict[str, Any]) -> None:
    check_row(events, as_of, rule_id, due, status, **extra)


def test_transfer_send_plan_explains_its_branch_regs_15_2() -> None:
    case = Case()
    case.add("ehc.plan.transfer_out", "2026-04-22", move_on="2026-04-08", aware_on="2026-03-30", to_la="919")
    late = case.deadline("2026-04-23", "transfer.send_plan")
    assert "aware less than 15 working days before the move" in late.period_text
    assert late.trigger_date.isoformat() == "2026-03-30" and late.responsible == "old_la"
    case = Case()
    case.add("ehc.plan.transfer_out", "2026-04-20", move_on="2026-04-20", aware_on="2026-03-02", to_la="919")
    assert "on the day of the move" in case.deadline("2026-04-23", "transfer.send_plan").period_text


def test_transfer_in_replaces_the_open_annual_review_regs_15_5() -> None:
    case = Case()
    case.add("ehc.plan.issued", "2025-09-01", plan_id="p-1")
    case.add("ehc.plan.transferred_in", "2026-05-01", transfer_on="2026-05-01", plan_made_on="2025-09-01",
             from_la="919")
    annual = case.deadline("2026-05-02", "review.annual")
    assert annual.status == "cancelled" and annual.cancelled_by_event_id == "evt-2"
    review = case.deadline("2026-05-02", "transfer.review")
    assert review.due_on.isoformat() == "2026-08-31"  # 12 months from 1 Sep 2025; 3 months -> 31 Jul 2026
    assert review.responsible == "new_la"


def test_reassessment_refusal_opens_the_appeal_window_cfa_s51() -> None:
    case = Case()
    case.add("ehc.plan.issued", "2025-03-10", plan_id="p-1")
    case.add("ehc.reassessment.requested", "2026-06-01")
    case.add("ehc.reassessment.decided", "2026-06-12", decision="refuse", notice_sent_on="2026-06-12")
    appeal = [x for x in case.deadlines("2026-06-13", "appeal.deadline") if x.trigger_event_id == "evt-3"]
    assert appeal and appeal[0].due_on.isoformat() == "2026-09-01"  # 12 Aug falls in August (C9)
    assert case.deadlines("2026-06-13", "reassessment.final") == []


@pytest.mark.parametrize(
    ("move_on", "branch"),
    [
        pytest.param("2026-03-23", "on the day of the move", id="transfer.send_plan Regs 15(2) 15 working days"),
        pytest.param("2026-03-20", "aware less than", id="transfer.send_plan Regs 15(2) 14 working days"),
    ],
)
def test_transfer_send_plan_boundary_regs_15_2(move_on: str, branch: str) -> None:
    # 2 to 20 March 2026 are exactly 15 working days (Mon 2 Mar counted as day 1).
    case = Case()
    case.add("ehc.plan.transfer_out", move_on, move_on=move_on, aware_on="2026-03-02", to_la="919")
    got = case.deadline("2026-03-24", "transfer.send_plan")
    assert branch in got.period_text
