"""Law file A2: reviews, amendments, phase transfers. Worked dates per rule."""

from __future__ import annotations

from typing import Any

import pytest
from engine_testkit import ROW_ARGS, Case, check_row, ev, row

PLAN = ev("ehc.plan.issued", "2026-03-10", plan_id="p-1")
PLAN_UNDER5 = ev("ehc.plan.issued", "2026-03-10", plan_id="p-1", child_under_5=True)
SCHEDULED = ev("ehc.review.meeting_scheduled", "2027-01-05", meeting_on="2027-01-20")
HELD = ev("ehc.review.meeting_held", "2027-01-20")
PROPOSED = ev("ehc.amendment.proposed", "2027-02-10")

ROWS = [
    # -- review.annual: 12 months starting with the plan date (C3): 10 Mar 2026 -> 9 Mar 2027 ---------
    row("review.annual CFA s.44(1) first cycle from the plan",
        [PLAN], "2026-03-11", "review.annual", "2027-03-09", "open"),
    row("review.annual CFA s.44(1) breached",
        [PLAN], "2027-03-10", "review.annual", "2027-03-09", "breached"),
    row("review.annual CFA s.44(1) met by the review decision",
        [PLAN, ev("ehc.review.decision_issued", "2027-03-01", outcome="maintain")],
        "2027-03-10", "review.annual", "2027-03-09", "met", completed_on="2027-03-01"),
    # Law file C3 corrected (england.md#L130-L135, example at #L133): 12 months starting with
    # 1 March 2027 end on 29 February 2028 (england-2026.1; england-2014.1 ended them on the 28th).
    row("review.annual CFA s.44(1) restarts from the review decision (1 Mar 2027 -> 29 Feb 2028, england.md#L133)",
        [PLAN, ev("ehc.review.decision_issued", "2027-03-01", outcome="maintain")],
        "2027-03-10", "review.annual", "2028-02-29", "open", instance="2"),
    row("review.annual CFA s.44(1) restarts after a late review (1 Mar 2028 -> 28 Feb 2029, C3)",
        [PLAN, ev("ehc.review.decision_issued", "2027-03-01", outcome="maintain"),
         ev("ehc.review.decision_issued", "2028-03-01", outcome="amend")],
        "2028-03-02", "review.annual", "2029-02-28", "open", instance="3"),
    row("review.annual CFA s.44(1) late review decision is met late",
        [PLAN, ev("ehc.review.decision_issued", "2027-03-01", outcome="maintain"),
         ev("ehc.review.decision_issued", "2028-03-01", outcome="amend")],
        "2028-03-02", "review.annual", "2028-02-29", "met_late", instance="2"),  # england.md#L133
    row("review.annual CFA s.44(1) an amended plan after a tribunal does not restart it",
        [PLAN, ev("ehc.tribunal.order", "2026-06-01", order_type="amend"), ev("ehc.plan.amended", "2026-07-01")],
        "2026-07-02", "review.annual", "2027-03-09", "open"),
    row("review.annual CFA s.44(1) cancelled when the plan ceases",
        [PLAN, ev("ehc.plan.ceased", "2026-09-01", notice_sent_on="2026-09-01")],
        "2026-09-02", "review.annual", "2027-03-09", "cancelled"),
    # -- review.meeting_notice / advice_circulation: at least 2 weeks before the meeting (C6w) -----------
    row("review.meeting_notice Regs 20(3) met: invited 15 days before",
        [PLAN, SCHEDULED], "2027-01-06", "review.meeting_notice", "2027-01-06", "met", completed_on="2027-01-05"),
    row("review.meeting_notice Regs 21(3) met late: invited 10 days before",
        [PLAN, ev("ehc.review.meeting_scheduled", "2027-01-10", meeting_on="2027-01-20")],
        "2027-01-11", "review.meeting_notice", "2027-01-06", "met_late"),
    # england.md#L37 and DESIGN §2 ehc.duty.done (england-2026.1): now completed by ehc.duty.done, so
    # breached without it (under england-2014.1 it was shown, never breached).
    row("review.advice_circulation Regs 20(4) breached without ehc.duty.done (england.md#L37)",
        [PLAN, SCHEDULED], "2027-01-10", "review.advice_circulation", "2027-01-06", "breached",
        no_flags=("completion_not_recorded", "past_due")),
    row("review.advice_circulation Regs 21(4) a rescheduled meeting replaces it",
        [PLAN, SCHEDULED, ev("ehc.review.meeting_scheduled", "2027-01-06", meeting_on="2027-02-03")],
        "2027-01-07", "review.advice_circulation", "2027-01-06", "cancelled", flags=("replaced",)),
    row("review.advice_circulation Regs 21(4) the rescheduled meeting's date",
        [PLAN, SCHEDULED, ev("ehc.review.meeting_scheduled", "2027-01-06", meeting_on="2027-02-03")],
        "2027-01-07", "review.advice_circulation", "2027-01-20", "due_soon", instance="2"),
    # -- review.report: 2 weeks from the meeting (C1); review.decision: 4 weeks (C1) --------------------
    row("review.report Regs 20; 21(7) met",
        [PLAN, HELD, ev("ehc.review.report_sent", "2027-02-03")],
        "2027-02-04", "review.report", "2027-02-03", "met"),
    row("review.report Regs 21(7) breached",
        [PLAN, HELD], "2027-02-04", "review.report", "2027-02-03", "breached"),
    row("review.decision Regs 20; Code 9.176 met with the proposed amendments (Devon)",
        [PLAN, HELD, PROPOSED, ev("ehc.review.decision_issued", "2027-02-10", outcome="amend")],
        "2027-02-11", "review.decision", "2027-02-17", "met", no_flags=("amendments_not_sent_with_decision",)),
    row("review.decision Devon a decision to amend without the proposed amendments is flagged",
        [PLAN, HELD, ev("ehc.review.decision_issued", "2027-02-10", outcome="amend")],
        "2027-02-11", "review.decision", "2027-02-17", "met", flags=("amendments_not_sent_with_decision",)),
    row("review.decision Regs 20 breached",
        [PLAN, HELD], "2027-02-18", "review.decision", "2027-02-17", "breached"),
    # -- amendment.representations: at least 15 days beginning with service (C2): 10 -> 24 Feb ------------
    row("amendment.representations Regs 22(2) window open",
        [PLAN, PROPOSED], "2027-02-11", "amendment.representations", "2027-02-24", "due_soon"),
    row("amendment.representations Regs 22(2) amended plan inside the window is flagged",
        [PLAN, PROPOSED, ev("ehc.plan.amended", "2027-02-20")],
        "2027-03-01", "amendment.representations", "2027-02-24", "met", flags=("issued_before_window",)),
    row("amendment.representations Regs 22(2) withdrawn proposals cancel the window",
        [PLAN, PROPOSED, ev("ehc.amendment.withdrawn", "2027-02-15")],
        "2027-03-01", "amendment.representations", "2027-02-24", "cancelled"),
    # -- amendment.final: 8 weeks (C1): 10 Feb -> 7 Apr 2027 ----------------------------------------------
    row("amendment.final Regs 22(3) met by the amended plan",
        [PLAN, PROPOSED, ev("ehc.plan.amended", "2027-04-07")],
        "2027-04-08", "amendment.final", "2027-04-07", "met"),
    row("amendment.final Regs 22(4) met by a notice not to amend",
        [PLAN, PROPOSED, ev("ehc.amendment.withdrawn", "2027-03-01")],
        "2027-04-08", "amendment.final", "2027-04-07", "met"),
    row("amendment.final Regs 22(3) breached",
        [PLAN, PROPOSED], "2027-04-08", "amendment.final", "2027-04-07", "breached"),
    # -- phase_transfer.review by kind --------------------------------------------------------------------
    row("phase_transfer.review Regs 18(1)(b) school: before 15 February (C5)",
        [PLAN, ev("ehc.phase_transfer.planned", "2026-10-01", transfer_on="2027-09-01", kind="school")],
        "2026-10-02", "phase_transfer.review", "2027-02-14", "open"),
    row("phase_transfer.review Regs 18(1)(b) school: met by the review decision",
        [PLAN, ev("ehc.phase_transfer.planned", "2026-10-01", transfer_on="2027-09-01", kind="school"),
         ev("ehc.review.decision_issued", "2027-02-01", outcome="amend")],
        "2027-02-15", "phase_transfer.review", "2027-02-14", "met"),
    row("phase_transfer.review Regs 18(1)(b) school: breached on 15 February",
        [PLAN, ev("ehc.phase_transfer.planned", "2026-10-01", transfer_on="2027-09-01", kind="school")],
        "2027-02-15", "phase_transfer.review", "2027-02-14", "breached"),
    row("phase_transfer.review Regs 18(1)(a) post16: before 31 March (C5)",
        [PLAN, ev("ehc.phase_transfer.planned", "2026-10-01", transfer_on="2027-09-01", kind="post16")],
        "2026-10-02", "phase_transfer.review", "2027-03-30", "open"),
    row("phase_transfer.review Regs 18(2) post16_to_post16: at least 5 months before (C6m)",
        [PLAN, ev("ehc.phase_transfer.planned", "2026-04-01", transfer_on="2027-01-10", kind="post16_to_post16")],
        "2026-04-02", "phase_transfer.review", "2026-08-10", "open"),
    row("phase_transfer.review Regs 18(2) post16_to_post16: met by the amended plan",
        [PLAN, ev("ehc.phase_transfer.planned", "2026-04-01", transfer_on="2027-01-10", kind="post16_to_post16"),
         ev("ehc.plan.amended", "2026-08-11")],
        "2026-09-01", "phase_transfer.review", "2026-08-10", "met_late"),
    # -- review.under5: consider a review within 6 months (C3), guidance ---------------------------------
    row("review.under5 Code 9.178 guidance from a plan for a child under 5",
        [PLAN_UNDER5], "2026-03-11", "review.under5", "2026-09-09", "open", flags=("guidance",)),
    row("review.under5 Code 9.178 guidance is never breached",
        [PLAN_UNDER5], "2026-10-01", "review.under5", "2026-09-09", "open", flags=("guidance", "past_due")),
    row("review.under5 Code 9.178 restarts from a review decision",
        [PLAN_UNDER5, ev("ehc.review.decision_issued", "2026-09-01", outcome="maintain", child_under_5=True)],
        "2026-09-02", "review.under5", "2027-02-28", "open", instance="2"),
]


@pytest.mark.parametrize(ROW_ARGS, ROWS)
def test_rule(events: Any, as_of: str, rule_id: str, due: str, status: str, extra: dict[str, Any]) -> None:
    check_row(events, as_of, rule_id, due, status, **extra)


def test_review_under5_only_when_the_child_is_under_5_code_9_178() -> None:
    case = Case()
    case.add("ehc.plan.issued", "2026-03-10", plan_id="p-1", child_under_5=False)
    case.add("ehc.review.decision_issued", "2026-09-01", outcome="maintain")
    assert case.deadlines("2026-09-02", "review.under5") == []


def test_annual_review_cycles_chain_cfa_s44() -> None:
    case = Case()
    case.add("ehc.plan.issued", "2026-03-10", plan_id="p-1")
    # "12 months starting with" X ends the day before X's anniversary (C3): each review is one
    # day earlier than the last to stay on time.
    for decided in ("2027-02-10", "2028-02-09", "2029-02-08"):
        case.add("ehc.review.meeting_held", decided[:4] + "-01-20")
        case.add("ehc.review.decision_issued", decided, outcome="maintain")
    cycles = case.deadlines("2029-03-01", "review.annual")
    assert [(c.instance, c.due_on.isoformat(), c.status.value) for c in cycles] == [
        ("1", "2027-03-09", "met"),
        ("2", "2028-02-09", "met"),
        ("3", "2029-02-08", "met"),
        ("4", "2030-02-07", "open"),
    ]
    assert [c.trigger_date.isoformat() for c in cycles] == ["2026-03-10", "2027-02-10", "2028-02-09", "2029-02-08"]


def test_a_review_on_the_anniversary_is_one_day_late_c3() -> None:
    case = Case()
    case.add("ehc.plan.issued", "2026-03-10", plan_id="p-1")
    case.add("ehc.review.decision_issued", "2027-03-10", outcome="maintain")
    first = case.deadline("2027-03-11", "review.annual", "1")
    assert (first.due_on.isoformat(), first.status.value) == ("2027-03-09", "met_late")
