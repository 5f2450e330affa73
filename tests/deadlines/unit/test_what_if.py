"""The what-if calculator (issue 11, item 3): forwards, backwards and at-risk, through the engine."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from engine_testkit import CALENDAR, HISTORY
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from services.deadlines.domain import CaseEventRecord, WorkingDayCalendar
from services.deadlines.domain.what_if import (
    Hypothesis,
    WhatIfError,
    at_risk,
    backward,
    dependents,
    forward,
    latest_trigger,
    parse_hypothesis,
)
from services.deadlines.entrypoints.cli import deadlines_app


def due(deadlines, rule_id: str) -> date:  # type: ignore[no-untyped-def]
    return next(d.due_on for d in deadlines if d.rule_id == rule_id)


def test_forward_a_request_gives_each_deadline_explained() -> None:
    """Regs 5(1): 6 weeks; Regs 10(1): 16 weeks; Regs 13(2): 20 weeks from the request."""
    found = forward([Hypothesis("ehc.request.received", date(2026, 3, 2))], HISTORY, CALENDAR)
    assert {d.rule_id: d.due_on for d in found} == {
        "assessment.decision": date(2026, 4, 13), "assessment.plan_decision": date(2026, 6, 22),
        "plan.final": date(2026, 7, 20)}
    final = next(d for d in found if d.rule_id == "plan.final")
    assert final.legal_source == "Regs 13(2)" and final.period_text.startswith("20 weeks")
    assert final.status == "open"


def test_forward_follows_the_calendar() -> None:
    """A working-day period (Regs 35-36, 3 working days) moves with a new bank holiday."""
    request = [Hypothesis("ehc.mediation.requested", date(2026, 3, 16), {"includes_health": True})]
    assert due(forward(request, HISTORY, CALENDAR), "mediation.health_notice") == date(2026, 3, 19)
    extra = WorkingDayCalendar(extra_holidays=[date(2026, 3, 17)])
    assert due(forward(request, HISTORY, extra), "mediation.health_notice") == date(2026, 3, 20)


def test_backward_to_name_a_school_by_15_february() -> None:
    """Amendments proposed by 21 December 2027 (8 weeks, Regs 22(3)); the review meeting by 23
    November 2027 (decision within 4 weeks of the meeting, Regs 20)."""
    meeting, amendments = backward([("ehc.review.meeting_held", "review.decision"),
                                    ("ehc.amendment.proposed", "amendment.final")],
                                   date(2028, 2, 15), HISTORY, CALENDAR)
    assert amendments.latest == date(2027, 12, 21)
    assert amendments.deadline is not None and amendments.deadline.due_on == date(2028, 2, 15)
    assert amendments.one_day_later is not None and amendments.one_day_later.due_on > date(2028, 2, 15)
    assert meeting.latest == date(2027, 11, 23) and meeting.target == date(2027, 12, 21)
    assert meeting.deadline is not None and meeting.deadline.legal_source.startswith("Regs 20")


@settings(max_examples=40, deadline=None)
@given(target=st.dates(date(2025, 1, 1), date(2030, 12, 31)),
       step=st.sampled_from([("ehc.request.received", "plan.final"), ("ehc.request.received", "assessment.decision"),
                             ("ehc.review.meeting_held", "review.report"),
                             ("ehc.mediation.requested", "mediation.health_notice"),
                             ("ehc.plan.issued", "review.annual")]))
def test_backward_finds_the_latest_day_that_still_meets_the_target(target: date, step: tuple[str, str]) -> None:
    answer = latest_trigger(*step, target, HISTORY, CALENDAR)
    assert answer.latest is not None and answer.deadline is not None
    assert answer.deadline.due_on <= target
    data = {"includes_health": True} if step[0] == "ehc.mediation.requested" else {}
    later = forward([Hypothesis(step[0], answer.latest + timedelta(days=1), data)], HISTORY, CALENDAR)
    assert due(later, step[1]) > target


def test_backward_names_a_rule_its_trigger_does_not_start() -> None:
    with pytest.raises(WhatIfError, match="not started by"):
        latest_trigger("ehc.plan.issued", "plan.final", date(2027, 1, 1), HISTORY, CALENDAR)


def test_dependents_are_the_rules_the_completing_event_starts() -> None:
    found = {(d.completing_event, d.rule.rule_id) for d in dependents("review.decision", HISTORY.latest)}
    assert ("ehc.review.decision_issued", "review.annual") in found
    assert all(event == "ehc.review.decision_issued" for event, _ in found)
    assert dependents("plan.final", HISTORY.latest)  # a plan issued starts the annual review


def history() -> list[CaseEventRecord]:
    return [CaseEventRecord("e1", "c1", "ehc.plan.issued", date(2025, 1, 10), datetime(2025, 1, 10, tzinfo=UTC),
                            {"plan_id": "p"}),
            CaseEventRecord("e2", "c1", "ehc.review.meeting_held", date(2026, 1, 5), datetime(2026, 1, 5, tzinfo=UTC),
                            {})]


def test_at_risk_a_missed_review_decision_pushes_the_next_review_back() -> None:
    """Review decision due 4 weeks after the 5 January 2026 meeting (2 February); still not made
    on 20 March: the next annual review (12 months starting with the decision, CFA s.44(1)) would
    fall 46 days later than had it been on time."""
    answer = at_risk(history(), "c1:review.decision:1", HISTORY, CALENDAR, date(2026, 3, 20))
    assert answer.deadline.status == "breached" and answer.deadline.due_on == date(2026, 2, 2)
    annual = next((dep, on_time, late) for dep, on_time, late in answer.dependents
                  if dep.rule.rule_id == "review.annual")
    assert annual[1] is not None and annual[2] is not None
    assert (annual[1].due_on, annual[2].due_on) == (date(2027, 2, 1), date(2027, 3, 19))
    assert answer.to_dict()["dependents"][0]["days_later"] == 46


def test_parse_hypothesis() -> None:
    h = parse_hypothesis("ehc.review.decision_issued@2027-06-01,outcome=amend,child_under_5=false")
    assert (h.type, h.on, dict(h.data)) == ("ehc.review.decision_issued", date(2027, 6, 1),
                                            {"outcome": "amend", "child_under_5": False})
    for bad in ("ehc.request.received", "request@2026-01-01", "ehc.x@2026-13-01", "ehc.x@2026-01-01,a"):
        with pytest.raises(WhatIfError):
            parse_hypothesis(bad)


runner = CliRunner()


def test_cli_forward_backward_and_at_risk(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = runner.invoke(deadlines_app, ["what-if", "forward", "--event", "ehc.request.received@2026-03-02", "--json"])
    assert out.exit_code == 0, out.output
    assert {d["rule_id"]: d["due_on"] for d in json.loads(out.output)}["plan.final"] == "2026-07-20"

    out = runner.invoke(deadlines_app, ["what-if", "backward", "--by", "2028-02-15",
                                        "--step", "ehc.review.meeting_held:review.decision",
                                        "--step", "ehc.amendment.proposed:amendment.final"])
    assert out.exit_code == 0, out.output
    assert "ehc.review.meeting_held by 2027-11-23" in out.output
    assert "ehc.amendment.proposed by 2027-12-21" in out.output and "Regs 22(3)" in out.output

    out = runner.invoke(deadlines_app, ["what-if", "at-risk", "--rule", "review.decision"])
    assert out.exit_code == 0 and "review.annual" in out.output

    case = tmp_path / "case.jsonl"
    case.write_text("\n".join(json.dumps({
        "specversion": "1.0", "id": e.id, "source": "cms/test", "type": e.type, "subject": e.case_id,
        "time": e.recorded_at.isoformat(), "data": {"occurred_on": e.occurred_on.isoformat(), **e.data}})
        for e in history()))
    out = runner.invoke(deadlines_app, ["what-if", "at-risk", "--history", str(case), "--deadline-id",
                                        "c1:review.decision:1", "--as-of", "2026-03-20", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["dependents"][0]["days_later"] == 46

    out = runner.invoke(deadlines_app, ["what-if", "backward", "--by", "2028-02-15", "--step", "plan.final"])
    assert out.exit_code == 2 and "EVENT_TYPE:RULE_ID" in out.output
