"""Property-based tests (hypothesis) of the engine over random case histories."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from engine_testkit import CALENDAR, HISTORY, RULESET, TERMS
from hypothesis import given, settings
from hypothesis import strategies as st

from services.deadlines.domain import CaseEventRecord, DeadlineStatus, compute

DATES = st.dates(date(2024, 1, 1), date(2027, 12, 31))
AS_OF = st.dates(date(2024, 1, 1), date(2028, 12, 31))
RULE_IDS = sorted(RULESET.rules)


def _data(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(fields)


ADVICE = _data(
    advice_id=st.sampled_from(["a1", "a2", "a3"]),
    provider_kind=st.sampled_from(["school", "post16", "early_years", "health", "educational_psychology"]),
    provider_id=st.sampled_from(["p-1", "EXAMPLE-URN-100001", "EXAMPLE-EY-0001"]),
)
ORDER = _data(order_type=st.sampled_from(["assess", "make_plan", "amend", "school_name", "continue",
                                          "recommendation"]))
EVENTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "ehc.request.received": _data(route=st.sampled_from(["request", "became_responsible"])),
    "ehc.assessment.decided": _data(decision=st.sampled_from(["assess", "refuse"]), notice_sent_on=DATES),
    "ehc.advice.requested": ADVICE,
    "ehc.advice.received": ADVICE,
    "ehc.plan.not_issued": _data(notice_sent_on=DATES),
    "ehc.draft_plan.issued": _data(served_on=DATES),
    "ehc.consultation.sent": _data(institution_id=st.sampled_from(["u1", "u2"])),
    "ehc.consultation.responded": _data(institution_id=st.sampled_from(["u1", "u2"])),
    "ehc.plan.issued": _data(plan_id=st.just("p"), child_under_5=st.booleans()),
    "ehc.review.meeting_scheduled": _data(meeting_on=DATES),
    "ehc.review.meeting_held": _data(),
    "ehc.review.report_sent": _data(),
    "ehc.review.decision_issued": _data(outcome=st.sampled_from(["maintain", "amend", "cease"]),
                                        child_under_5=st.booleans()),
    "ehc.amendment.proposed": _data(),
    "ehc.plan.amended": _data(),
    "ehc.amendment.withdrawn": _data(),
    "ehc.phase_transfer.planned": _data(transfer_on=DATES, kind=st.sampled_from(["school", "post16",
                                                                                "post16_to_post16"])),
    "ehc.reassessment.requested": _data(),
    "ehc.reassessment.decided": _data(decision=st.sampled_from(["reassess", "refuse"]),
                                      notice_sent_on=st.none() | DATES),
    "ehc.plan.transfer_out": _data(move_on=DATES, aware_on=DATES, to_la=st.just("919")),
    "ehc.plan.transferred_in": _data(transfer_on=DATES, plan_made_on=DATES, last_reviewed_on=st.none() | DATES,
                                     from_la=st.just("919")),
    "ehc.cease.decided": _data(notice_sent_on=DATES),
    "ehc.plan.ceased": _data(notice_sent_on=DATES),
    "ehc.mediation.requested": _data(includes_health=st.booleans()),
    "ehc.mediation.declined": _data(),
    "ehc.mediation.concluded": _data(),
    "ehc.mediation.certificate_issued": _data(),
    "ehc.mediation.agreement": _data(appealable=st.booleans()),
    "ehc.appeal.registered": _data(sent_to_la_on=st.none() | DATES),
    "ehc.appeal.unopposed": ORDER,
    "ehc.tribunal.order": ORDER,
    "ehc.exception.recorded": _data(exception=st.sampled_from(["E1", "E2", "E3", "E4", "E5"]),
                                    rule_ids=st.lists(st.sampled_from(RULE_IDS), max_size=2), reason=st.just("r")),
    "ehc.case.closed": _data(reason=st.just("other")),
}


@st.composite
def histories(draw: st.DrawFn, max_size: int = 30) -> list[CaseEventRecord]:
    """A random history of one case: any mix of event types and dates, some corrections and
    retractions, some same-day events."""
    n = draw(st.integers(1, max_size))
    events: list[CaseEventRecord] = []
    for i in range(n):
        type_ = draw(st.sampled_from(sorted(EVENTS)))
        data = draw(EVENTS[type_])
        occurred = draw(DATES)
        recorded = datetime(occurred.year, occurred.month, occurred.day, tzinfo=UTC) + timedelta(
            minutes=draw(st.integers(0, 3 * 24 * 60))
        )
        supersedes = f"e{draw(st.integers(0, i - 1))}" if i and draw(st.integers(0, 9)) == 0 else None
        events.append(CaseEventRecord(f"e{i}", "case-p", type_, occurred, recorded, data, supersedes))
    if len(events) > 2 and draw(st.booleans()):
        target = draw(st.sampled_from([e.id for e in events]))
        events.append(CaseEventRecord("retraction", "case-p", "ehc.event.retracted", events[0].occurred_on,
                                      events[0].recorded_at, {"retracts": target}))
    return events


def run(events: list[CaseEventRecord], as_of: date) -> list[Any]:
    return compute(events, HISTORY, CALENDAR, as_of, terms=TERMS)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), as_of=AS_OF)
def test_any_order_of_the_same_events_gives_the_same_result(data: st.DataObject, as_of: date) -> None:
    events = data.draw(histories())
    shuffled = data.draw(st.permutations(events))
    assert run(events, as_of) == run(shuffled, as_of)


@settings(max_examples=200, deadline=None)
@given(events=histories(), as_of=AS_OF)
def test_computing_twice_gives_identical_output(events: list[CaseEventRecord], as_of: date) -> None:
    first = run(events, as_of)
    assert first == run(events, as_of)
    assert [d.to_dict() for d in first] == [d.to_dict() for d in run(list(events), as_of)]


@settings(max_examples=300, deadline=None)
@given(events=histories(), as_of=AS_OF)
def test_working_day_rules_only_give_working_days(events: list[CaseEventRecord], as_of: date) -> None:
    moves = {e.data.get("move_on") for e in events if e.type == "ehc.plan.transfer_out"}
    for d in run(events, as_of):
        if d.convention == "C7" or d.convention == "C4+C9":
            if d.rule_id == "transfer.send_plan" and d.due_on in moves:
                continue  # Regs 15(2): "on the day of the move", whatever day that is
            assert CALENDAR.is_working_day(d.due_on), (d.rule_id, d.due_on)


@settings(max_examples=300, deadline=None)
@given(events=histories(), as_of=AS_OF)
def test_met_only_when_completed_on_or_before_the_due_date(events: list[CaseEventRecord], as_of: date) -> None:
    for d in run(events, as_of):
        assert d.status in DeadlineStatus
        if d.kind in ("duty", "guidance"):
            if d.status == "met":
                assert d.completed_on is not None and d.completed_on <= d.due_on, d
            if d.status == "met_late":
                assert d.completed_on is not None and d.completed_on > d.due_on, d
        if d.status == "breached" and d.kind == "duty":
            assert d.completed_on is None and as_of > d.due_on, d
        if d.status == "breached":
            assert "guidance" not in d.flags and "completion_not_recorded" not in d.flags, d
        if d.status in ("open", "due_soon") and d.kind == "duty" and "completion_not_recorded" not in d.flags:
            assert as_of <= d.due_on or d.exception is not None, d


@settings(max_examples=200, deadline=None)
@given(events=histories(), as_of=AS_OF)
def test_exceptions_never_move_a_date(events: list[CaseEventRecord], as_of: date) -> None:
    # Each exception replaced by a routing event with the same id and supersedes: the history is
    # otherwise identical (a correction chain through it stays a chain).
    without = [
        CaseEventRecord(e.id, e.case_id, "ehc.case.assigned", e.occurred_on, e.recorded_at,
                        {"caseworker_id": "cw", "team_id": "t"}, e.supersedes)
        if e.type == "ehc.exception.recorded" else e
        for e in events
    ]
    dates = {d.deadline_id: d.due_on for d in run(without, as_of)}
    for d in run(events, as_of):
        assert dates[d.deadline_id] == d.due_on


@settings(max_examples=200, deadline=None)
@given(events=histories(), as_of=AS_OF)
def test_deadline_ids_are_unique_and_stable(events: list[CaseEventRecord], as_of: date) -> None:
    got = run(events, as_of)
    ids = [d.deadline_id for d in got]
    assert len(ids) == len(set(ids))
    assert all(d.deadline_id == f"{d.case_id}:{d.rule_id}:{d.instance}" for d in got)


@settings(max_examples=200, deadline=None)
@given(start=DATES, n=st.integers(1, 60), beginning_with=st.booleans())
def test_add_working_days_counts_working_days(start: date, n: int, beginning_with: bool) -> None:
    due = CALENDAR.add_working_days(start, n, beginning_with)
    assert CALENDAR.is_working_day(due)
    first = start - timedelta(days=1) if beginning_with else start
    assert CALENDAR.working_days_between(first, due) == n
