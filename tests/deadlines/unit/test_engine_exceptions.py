"""Law file B: exceptions E1-E5 change a deadline's status, never its date; E1/E2 "may apply"."""

from __future__ import annotations

import pytest
from engine_testkit import CALENDAR, HISTORY, Case, request_case

from services.deadlines.domain import compute


def assessed(on: str = "2026-01-05") -> Case:
    case = request_case(on)
    case.add("ehc.assessment.decided", "2026-02-12", decision="assess", notice_sent_on="2026-02-12")
    return case


@pytest.mark.parametrize(
    ("code", "rule_id"),
    [
        pytest.param("E3", "plan.final", id="plan.final Regs 13(3) E3 exceptional personal circumstances"),
        pytest.param("E4", "plan.final", id="plan.final Regs 10(4)(d) E4 absence from the area"),
        pytest.param("E1", "assessment.plan_decision", id="assessment.plan_decision Regs 10(4)(a) E1 closure"),
        pytest.param("E2", "assessment.plan_decision", id="assessment.plan_decision Regs 10(4)(b) E2 early years"),
    ],
)
def test_exception_changes_status_not_date(code: str, rule_id: str) -> None:
    case = assessed()
    before = case.deadline("2026-06-01", rule_id)
    assert before.status == "breached"
    exc = case.add("ehc.exception.recorded", "2026-03-01", exception=code, rule_ids=[rule_id], reason="Family abroad")
    after = case.deadline("2026-06-01", rule_id)
    assert after.status == "exception"
    assert after.due_on == before.due_on
    assert (after.exception, after.exception_reason, after.exception_event_id) == (code, "Family abroad", exc)


def test_exception_advice_e5_regs_8_2_c() -> None:
    case = assessed()
    case.add("ehc.advice.requested", "2026-02-20", advice_id="ep-1", provider_kind="educational_psychology")
    case.add("ehc.exception.recorded", "2026-03-10", exception="E5", rule_ids=[], reason="Missed appointment")
    advice = case.deadline("2026-05-01", "assessment.advice", "ep-1")
    assert advice.status == "exception" and advice.exception == "E5"
    # E5 is an advice-only exception: the LA's own deadlines are untouched
    assert case.deadline("2026-06-01", "plan.final").status == "breached"


def test_empty_rule_ids_apply_to_every_running_deadline_that_allows_the_exception() -> None:
    case = assessed()
    case.add("ehc.exception.recorded", "2026-03-01", exception="E3", rule_ids=[], reason="x")
    got = {x.rule_id: x for x in case.compute("2026-06-01")}
    assert got["plan.final"].status == "exception"
    assert got["assessment.plan_decision"].status == "exception"
    # completed before the exception's date: untouched
    assert got["assessment.decision"].status == "met" and got["assessment.decision"].exception is None


def test_an_exception_its_source_does_not_allow_is_flagged_not_applied_regs_8_2() -> None:
    case = assessed()
    case.add("ehc.exception.recorded", "2026-03-01", exception="E5", rule_ids=["plan.final"], reason="x")
    final = case.deadline("2026-06-01", "plan.final")
    assert final.status == "breached" and "exception_not_allowed:E5" in final.flags


def test_completed_deadline_stays_met_late_but_keeps_the_exception() -> None:
    case = assessed()
    case.add("ehc.exception.recorded", "2026-03-01", exception="E4", rule_ids=["plan.final"], reason="x")
    case.add("ehc.plan.issued", "2026-06-10", plan_id="p-1")
    final = case.deadline("2026-06-11", "plan.final")
    assert final.status == "met_late" and final.exception == "E4"


def test_withdrawn_exception_restores_the_breach() -> None:
    case = assessed()
    exc = case.add("ehc.exception.recorded", "2026-03-01", exception="E3", rule_ids=["plan.final"], reason="x")
    case.add("ehc.exception.withdrawn", "2026-04-01", exception_event_id=exc)
    assert case.deadline("2026-06-01", "plan.final").status == "breached"


def test_withdrawal_naming_the_original_finds_its_correction() -> None:
    case = assessed()
    exc = case.add("ehc.exception.recorded", "2026-03-01", exception="E3", rule_ids=["plan.final"], reason="x")
    case.add("ehc.exception.recorded", "2026-03-01", supersedes=exc, exception="E4", rule_ids=["plan.final"],
             reason="y")
    assert case.deadline("2026-06-01", "plan.final").exception == "E4"
    case.add("ehc.exception.withdrawn", "2026-04-01", exception_event_id=exc)
    assert case.deadline("2026-06-01", "plan.final").status == "breached"


def test_tribunal_orders_allow_only_e3_and_e4_regs_44_3() -> None:
    case = Case()
    case.add("ehc.tribunal.order", "2026-07-01", order_type="amend")
    case.add("ehc.exception.recorded", "2026-07-10", exception="E1", rule_ids=[], reason="x")
    assert case.deadline("2026-08-10", "tribunal.amend").status == "breached"
    case.add("ehc.exception.recorded", "2026-07-11", exception="E4", rule_ids=[], reason="abroad 3 weeks")
    assert case.deadline("2026-08-10", "tribunal.amend").status == "exception"


# -- E1/E2 may apply (law file B and C8) -----------------------------------------------------------


def test_e1_may_apply_when_a_school_is_asked_in_its_summer_window() -> None:
    # Request Mon 1 Jun 2026: decision due 13 Jul, plan decision due 21 Sep, plan due 19 Oct.
    case = request_case("2026-06-01")
    case.add("ehc.assessment.decided", "2026-07-10", decision="assess", notice_sent_on="2026-07-10")
    # Example calendar: summer closure 22 Jul - 2 Sep 2026, so the E1 window is 15 Jul - 27 Aug.
    case.add("ehc.advice.requested", "2026-07-20", advice_id="school-1", provider_kind="school",
             provider_id="urn-123")
    got = {x.rule_id: x for x in case.compute("2026-07-21")}
    assert "exception_may_apply:E1" in got["plan.final"].flags
    assert "exception_may_apply:E1" in got["assessment.plan_decision"].flags
    assert "exception_may_apply:E1" not in got["assessment.decision"].flags  # already decided
    assert not any(f.startswith("exception_may_apply") for f in got["assessment.advice"].flags)
    # a hint only: the status is unchanged until the LA records the exception
    assert got["plan.final"].status == "open"


def test_e1_not_flagged_outside_the_window() -> None:
    case = request_case("2026-06-01")
    case.add("ehc.advice.requested", "2026-07-14", advice_id="school-1", provider_kind="school",
             provider_id="urn-123")
    assert "exception_may_apply:E1" not in case.deadline("2026-07-21", "plan.final").flags


def test_e1_uses_the_settings_own_term_calendar() -> None:
    # EXAMPLE-URN-100001 closes from 17 Jul 2026: its window opens on 10 Jul.
    case = request_case("2026-06-01")
    case.add("ehc.advice.requested", "2026-07-12", advice_id="a-1", provider_kind="post16",
             provider_id="EXAMPLE-URN-100001")
    assert "exception_may_apply:E1" in case.deadline("2026-07-21", "plan.final").flags


def test_e2_may_apply_for_an_early_years_setting() -> None:
    case = request_case("2026-06-01")
    case.add("ehc.advice.requested", "2026-07-20", advice_id="ey-1", provider_kind="early_years",
             provider_id="nursery-9")
    flags = case.deadline("2026-07-21", "plan.final").flags
    assert "exception_may_apply:E2" in flags and "exception_may_apply:E1" not in flags


def test_no_term_calendar_no_hint() -> None:
    case = request_case("2026-06-01")
    case.add("ehc.advice.requested", "2026-07-20", advice_id="school-1", provider_kind="school")
    got = compute(case.events, HISTORY, CALENDAR, case.events[0].occurred_on)
    assert not any("exception_may_apply:E1" in x.flags for x in got)
