"""Corrections (``supersedes``), retractions, duplicates and input order (DESIGN §2, §3)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from engine_testkit import CALENDAR, HISTORY, Case, d, event, request_case

from services.deadlines.domain import compute, compute_cases, resolve_history


def test_a_correction_moves_the_clock_and_keeps_the_deadline_id() -> None:
    case = request_case("2026-01-05")
    before = case.deadline("2026-01-13", "assessment.decision")
    case.add("ehc.request.received", "2026-01-12", supersedes="evt-1", route="request", requested_by="parent")
    after = case.deadline("2026-01-13", "assessment.decision")
    assert before.deadline_id == after.deadline_id == "case-1:assessment.decision:1"
    assert after.due_on.isoformat() == "2026-02-23" and after.trigger_event_id == "evt-2"
    assert len(case.compute("2026-01-13")) == 3  # the replaced request no longer counts


def test_a_chain_of_corrections_keeps_the_last() -> None:
    case = request_case("2026-01-05")
    case.add("ehc.request.received", "2026-01-12", supersedes="evt-1")
    case.add("ehc.request.received", "2026-01-19", supersedes="evt-2")
    got = case.deadline("2026-01-20", "assessment.decision")
    assert got.due_on.isoformat() == "2026-03-02" and got.trigger_event_id == "evt-3"


def test_two_corrections_of_one_event_the_one_recorded_last_wins() -> None:
    first = event("ehc.request.received", "2026-01-05", id="a")
    late = event("ehc.request.received", "2026-01-12", id="b", supersedes="a",
                 recorded=datetime(2026, 1, 20, tzinfo=UTC))
    early = event("ehc.request.received", "2026-01-19", id="c", supersedes="a",
                  recorded=datetime(2026, 1, 19, tzinfo=UTC))
    effective, alias = resolve_history([late, first, early])
    assert [e.id for e in effective] == ["b"] and alias == {"a": "b"}


def test_a_retracted_decision_reopens_the_clock() -> None:
    case = request_case("2026-01-05")
    decided = case.add("ehc.assessment.decided", "2026-02-12", decision="assess", notice_sent_on="2026-02-12")
    assert case.deadline("2026-03-01", "assessment.decision").status == "met"
    case.add("ehc.event.retracted", "2026-02-20", retracts=decided)
    assert case.deadline("2026-03-01", "assessment.decision").status == "breached"


def test_a_retracted_refusal_uncancels_the_plan_clock() -> None:
    case = request_case("2026-01-05")
    refusal = case.add("ehc.assessment.decided", "2026-02-10", decision="refuse", notice_sent_on="2026-02-10")
    assert case.deadline("2026-03-01", "plan.final").status == "cancelled"
    case.add("ehc.event.retracted", "2026-02-11", retracts=refusal)
    assert case.deadline("2026-03-01", "plan.final").status == "open"
    assert case.deadlines("2026-03-01", "appeal.deadline") == []


def test_a_retracted_closure_reopens_the_case() -> None:
    case = request_case("2026-01-05")
    closed = case.add("ehc.case.closed", "2026-01-20", reason="request_withdrawn")
    assert {x.status.value for x in case.compute("2026-01-21")} == {"cancelled"}
    case.add("ehc.event.retracted", "2026-01-22", retracts=closed)
    assert {x.status.value for x in case.compute("2026-01-21")} == {"open"}


def test_a_retracted_request_removes_its_deadlines() -> None:
    case = request_case("2026-01-05")
    case.add("ehc.event.retracted", "2026-01-06", retracts="evt-1")
    assert case.compute("2026-01-07") == []


def test_the_same_event_delivered_twice_counts_once() -> None:
    case = request_case("2026-01-05")
    once = case.compute("2026-01-06")
    twice = compute([*case.events, *case.events], HISTORY, CALENDAR, d("2026-01-06"))
    assert once == twice


def test_closing_cancels_then_a_re_request_starts_afresh() -> None:
    case = request_case("2026-01-05")
    case.add("ehc.case.closed", "2026-01-20", reason="request_withdrawn")
    case.add("ehc.request.received", "2026-03-02", route="request", requested_by="parent")
    got = {(x.rule_id, x.instance): x.status.value for x in case.compute("2026-03-03")}
    assert got[("plan.final", "1")] == "cancelled" and got[("plan.final", "2")] == "open"


@pytest.mark.parametrize("seed", range(5))
def test_any_input_order_gives_the_same_result(seed: int) -> None:
    case = request_case("2026-01-05")
    case.add("ehc.assessment.decided", "2026-02-12", decision="assess", notice_sent_on="2026-02-12")
    for i in range(4):
        case.add("ehc.advice.requested", "2026-02-13", advice_id=f"a{i}", provider_kind="health")
    case.add("ehc.advice.received", "2026-03-13", advice_id="a1", provider_kind="health")
    case.add("ehc.draft_plan.issued", "2026-04-20", served_on="2026-04-20")
    case.add("ehc.plan.issued", "2026-05-01", plan_id="p")
    case.add("ehc.request.received", "2026-01-06", supersedes="evt-1")
    case.add("ehc.event.retracted", "2026-03-20", retracts="evt-7")
    expected = case.compute("2026-06-01")
    shuffled = list(case.events)
    random.Random(seed).shuffle(shuffled)
    assert compute(shuffled, HISTORY, CALENDAR, d("2026-06-01"), terms=None) == compute(
        case.events, HISTORY, CALENDAR, d("2026-06-01"), terms=None
    )
    assert expected == case.compute("2026-06-01")


def test_compute_takes_one_case_compute_cases_takes_many() -> None:
    a = event("ehc.request.received", "2026-01-05", id="b-1", case_id="case-b")
    b = event("ehc.request.received", "2026-01-05", id="a-1", case_id="case-a")
    with pytest.raises(ValueError, match="one case"):
        compute([a, b], HISTORY, CALENDAR, d("2026-01-06"))
    got = compute_cases([a, b], HISTORY, CALENDAR, d("2026-01-06"))
    assert [x.case_id for x in got] == ["case-a"] * 3 + ["case-b"] * 3


def test_no_events_no_deadlines() -> None:
    assert compute([], HISTORY, CALENDAR, d("2026-01-06")) == []


def test_routing_events_start_nothing() -> None:
    case = Case()
    case.add("ehc.case.assigned", "2026-01-05", caseworker_id="cw-1", team_id="t-1")
    assert case.compute("2026-01-06") == []
