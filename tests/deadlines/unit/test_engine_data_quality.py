"""Data that cannot be true is flagged, not computed on silently (issue 11, item 5): one test per
warning of shared.data_quality, through the engine's data_quality(case_events)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from engine_testkit import Case

from services.deadlines.domain import data_quality
from shared.data_quality import DataQualityWarning, Fact, check_case, register_check


def codes(case: Case) -> list[str]:
    return [w.code for w in data_quality(case.events)]


def build(*events: tuple[str, str, dict[str, Any]]) -> Case:
    case = Case()
    for type_, on, data in events:
        case.add(type_, on, **data)
    return case


def e(type_: str, on: str, **data: Any) -> tuple[str, str, dict[str, Any]]:
    return (type_, on, data)


REQUEST = e("ehc.request.received", "2027-01-04")
PLAN = e("ehc.plan.issued", "2027-05-10", plan_id="p-1")

CASES = [
    pytest.param([REQUEST, e("ehc.plan.issued", "2027-05-10", plan_id="p-1"),
                  e("ehc.plan.ceased", "2027-05-14", notice_sent_on="2027-05-14")],
                 "plan_ceased_soon_after_issue", id="a plan ceased days after being issued"),
    pytest.param([PLAN, e("ehc.review.meeting_held", "2028-03-10"),
                  e("ehc.review.decision_issued", "2028-03-01", outcome="maintain")],
                 "review_decision_before_meeting", id="a review decision before its meeting"),
    pytest.param([e("ehc.assessment.decided", "2027-01-02", decision="assess", notice_sent_on="2027-01-02"),
                  REQUEST],
                 "decision_before_request", id="a decision before its request"),
    pytest.param([REQUEST, e("ehc.draft_plan.issued", "2027-06-01", served_on="2027-06-01"), PLAN],
                 "draft_after_final_plan", id="a draft after its final plan"),
    pytest.param([e("ehc.reassessment.decided", "2027-02-01", decision="reassess", notice_sent_on="2027-02-01"),
                  e("ehc.reassessment.requested", "2027-02-03")],
                 "reassessment_decision_before_request", id="a re-assessment decision before its request"),
    pytest.param([PLAN, e("ehc.review.meeting_held", "2028-03-10"), e("ehc.review.report_sent", "2028-03-01")],
                 "review_report_before_meeting", id="a review report before its meeting"),
    pytest.param([REQUEST, e("ehc.advice.received", "2027-01-10", advice_id="a-1", provider_kind="health"),
                  e("ehc.advice.requested", "2027-01-12", advice_id="a-1", provider_kind="health")],
                 "advice_received_before_requested", id="advice received before it was asked for"),
    pytest.param([e("ehc.consultation.responded", "2027-03-01", institution_id="117001"),
                  e("ehc.consultation.sent", "2027-03-05", institution_id="117001")],
                 "consultation_response_before_consultation", id="a school's reply before the consultation"),
    pytest.param([e("ehc.plan.ceased", "2027-01-04", notice_sent_on="2027-01-04"), PLAN],
                 "plan_ceased_before_issued", id="a plan ceased before it was issued"),
    pytest.param([e("ehc.tribunal.order", "2027-01-04", order_type="amend"), e("ehc.appeal.registered", "2027-02-01")],
                 "appeal_decided_before_registered", id="an order before its appeal"),
    pytest.param([REQUEST, e("ehc.assessment.decided", "2027-02-10", decision="assess", notice_sent_on="2027-02-08")],
                 "notice_before_decision", id="a notice sent before its decision"),
    pytest.param([PLAN, e("ehc.review.meeting_scheduled", "2028-03-10", meeting_on="2028-03-01")],
                 "meeting_invited_after_meeting", id="a review meeting scheduled after it took place"),
    pytest.param([e("ehc.plan.transferred_in", "2027-01-04", transfer_on="2027-01-04", plan_made_on="2027-02-01",
                    from_la="919")],
                 "plan_made_after_transfer", id="a plan made after its transfer"),
    pytest.param([e("ehc.plan.transferred_in", "2027-01-04", transfer_on="2027-01-04", plan_made_on="2026-02-01",
                    last_reviewed_on="2025-12-01", from_la="919")],
                 "review_before_plan_made", id="a last review before the plan was made"),
    pytest.param([e("ehc.plan.transferred_in", "2027-01-04", transfer_on="2027-01-04", plan_made_on="2026-02-01",
                    last_reviewed_on="2027-01-20", from_la="919")],
                 "review_after_transfer", id="the old LA's last review after the transfer"),
]


@pytest.mark.parametrize(("events", "code"), CASES)
def test_each_impossible_order_is_flagged(events: list[Any], code: str) -> None:
    warnings = data_quality(build(*events).events)
    assert [w.code for w in warnings] == [code]
    warning = warnings[0]
    assert warning.severity == "warning" and warning.message and warning.event_ids
    assert warning.to_dict()["code"] == code


def test_a_lawful_history_has_no_warning() -> None:
    case = build(
        REQUEST,
        e("ehc.assessment.decided", "2027-02-10", decision="assess", notice_sent_on="2027-02-11"),
        e("ehc.advice.requested", "2027-02-12", advice_id="a-1", provider_kind="health"),
        e("ehc.advice.received", "2027-03-20", advice_id="a-1", provider_kind="health"),
        e("ehc.draft_plan.issued", "2027-04-20", served_on="2027-04-20"),
        e("ehc.consultation.sent", "2027-04-21", institution_id="117001"),
        e("ehc.consultation.responded", "2027-04-30", institution_id="117001"),
        PLAN,
        e("ehc.review.meeting_scheduled", "2028-02-10", meeting_on="2028-03-01"),
        e("ehc.review.meeting_held", "2028-03-01"),
        e("ehc.review.report_sent", "2028-03-10"),
        e("ehc.review.decision_issued", "2028-03-20", outcome="cease", notice_sent_on="2028-03-20"),
        e("ehc.plan.ceased", "2028-06-01", notice_sent_on="2028-06-01"),
    )
    assert codes(case) == []


def test_a_reassessment_draft_after_the_first_plan_is_not_flagged() -> None:
    case = build(REQUEST, e("ehc.draft_plan.issued", "2027-04-20", served_on="2027-04-20"), PLAN,
                 e("ehc.reassessment.requested", "2028-01-10"),
                 e("ehc.draft_plan.issued", "2028-04-01", served_on="2028-04-01"))
    assert codes(case) == []


def test_a_decision_on_the_day_of_the_request_is_not_flagged() -> None:
    case = build(e("ehc.assessment.decided", "2027-01-04", decision="refuse", notice_sent_on="2027-01-04"), REQUEST)
    assert codes(case) == []


def test_a_review_decision_with_an_unrecorded_meeting_is_not_flagged() -> None:
    # Decisions in 2028 and 2029, one meeting before the second: the first may have had a meeting
    # that was never recorded; nothing impossible.
    case = build(PLAN, e("ehc.review.decision_issued", "2028-03-01", outcome="maintain"),
                 e("ehc.review.meeting_held", "2029-02-20"),
                 e("ehc.review.decision_issued", "2029-03-01", outcome="maintain"))
    assert codes(case) == []


def test_a_corrected_date_clears_the_warning() -> None:
    case = build(PLAN, e("ehc.review.meeting_held", "2028-03-10"))
    wrong = case.add("ehc.review.decision_issued", "2028-03-01", outcome="maintain")
    assert codes(case) == ["review_decision_before_meeting"]
    case.add("ehc.review.decision_issued", "2028-03-20", outcome="maintain", supersedes=wrong)
    assert codes(case) == []


def test_the_deadlines_are_still_computed_beside_the_warnings() -> None:
    case = build(REQUEST, e("ehc.plan.issued", "2027-05-10", plan_id="p-1"),
                 e("ehc.plan.ceased", "2027-05-14", notice_sent_on="2027-05-14"))
    assert codes(case) == ["plan_ceased_soon_after_issue"]
    assert case.deadlines("2027-05-20", "plan.final")[0].status == "met"


def test_another_check_plugs_in(monkeypatch: pytest.MonkeyPatch) -> None:
    # A check registered elsewhere (e.g. a date beyond the working-day calendar) runs with the others.
    from shared import data_quality as module

    monkeypatch.setattr(module, "DATA_QUALITY_CHECKS", list(module.DATA_QUALITY_CHECKS))

    @register_check
    def far_future(history: Any) -> Any:
        return [DataQualityWarning("date_beyond_calendar", "too far", (x.id,), "error")
                for x in history if x.occurred_on.year > 2100]

    got = check_case([Fact("x-1", "ehc.request.received", date(2200, 1, 1))])
    assert [(w.code, w.severity) for w in got] == [("date_beyond_calendar", "error")]


def test_compute_with_quality_is_compute_and_data_quality_of_one_resolved_history() -> None:
    """The CLI resolves each case once for both (issue 12): the same deadlines and warnings as the
    two calls, on synthetic cases with dates shaken into impossible orders, corrections and retractions."""
    import random
    from dataclasses import replace
    from datetime import timedelta

    from services.deadlines.domain import (
        TermCalendar,
        WorkingDayCalendar,
        compute,
        compute_with_quality,
        load_ruleset_history,
    )
    from services.deadlines.domain.synthetic import synthetic_case

    rng = random.Random(11)
    history, calendar, terms, as_of = load_ruleset_history("england"), WorkingDayCalendar(), TermCalendar.from_file(), \
        date(2026, 11, 2)
    warned = 0
    for n in range(300):
        events = [replace(ev, occurred_on=ev.occurred_on - timedelta(days=rng.randint(0, 90)))
                  if rng.random() < 0.2 else ev for ev in synthetic_case(n, rng)]
        if n % 3 == 0:
            events.append(replace(events[2], id=f"fix-{n}", supersedes=events[2].id,
                                  occurred_on=events[2].occurred_on + timedelta(days=200)))
        if n % 5 == 0:
            events.append(replace(events[0], id=f"retract-{n}", type="ehc.event.retracted",
                                  data={"retracts": events[1].id}))
        deadlines, warnings = compute_with_quality(events, history, calendar, as_of, terms=terms)
        assert deadlines == compute(events, history, calendar, as_of, terms=terms)
        assert warnings == data_quality(events)
        warned += bool(warnings)
    assert warned > 30
