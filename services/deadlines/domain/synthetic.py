"""Synthetic EHC case histories for benchmarks and tests (no real person in them).

Cases have realistic histories of 5 to 40 events: request, decision, 3-6 advice requests and
replies, draft, consultations, final plan, annual review cycles, some amendments, some appeals
with mediation and a tribunal order, some phase transfers, exceptions and closures.
``synthetic_case`` makes a whole history (``bench/bench_engine.py``); ``case_in_progress`` cuts one
at a given day, as a case still open on that day looks (the fault tests).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.deadlines.domain.events import CaseEventRecord

MAX_EVENTS = 40


class _CaseBuilder:
    """Builds one synthetic case history, chronologically, capped at MAX_EVENTS."""

    def __init__(self, case_id: str, rng: random.Random) -> None:
        self.case_id = case_id
        self.rng = rng
        self.events: list[CaseEventRecord] = []

    def full(self, room: int = 0) -> bool:
        return len(self.events) + room >= MAX_EVENTS

    def add(self, type_: str, day: date, **data: Any) -> str:
        event_id = f"{self.case_id}-{len(self.events) + 1}"
        recorded = datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(
            days=self.rng.randint(0, 3), minutes=len(self.events)
        )
        self.events.append(CaseEventRecord(event_id, self.case_id, type_, day, recorded, data))
        return event_id


def _days(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(days=rng.randint(low, high))


def synthetic_case(n: int, rng: random.Random, start: date | None = None,
                   case_id: str | None = None) -> list[CaseEventRecord]:
    """One case's history from its request on ``start`` (default: a day of 2019 to 2024)."""
    b = _CaseBuilder(case_id or f"case-{n:07d}", rng)
    if start is None:
        start = date(2019, 1, 1) + timedelta(days=rng.randint(0, 6 * 365))
    b.add("ehc.request.received", start, route="request", requested_by=rng.choice(["parent", "school", "health"]))
    b.add("ehc.case.assigned", start + _days(rng, 0, 3), caseworker_id=f"cw-{rng.randint(1, 80)}", team_id="t-1")
    decided = start + _days(rng, 28, 50)
    refuse = rng.random() < 0.12
    b.add(
        "ehc.assessment.decided", decided, decision="refuse" if refuse else "assess",
        notice_sent_on=decided + _days(rng, 0, 2),
    )
    if refuse:
        if rng.random() < 0.4:
            _appeal(b, decided + _days(rng, 10, 40), "assess")
        if rng.random() < 0.3:
            b.add("ehc.case.closed", decided + _days(rng, 60, 120), reason="other")
        return b.events

    advice_day = decided + _days(rng, 1, 5)
    for i in range(rng.randint(3, 6)):
        kind = rng.choice(["school", "health", "educational_psychology", "social_care", "early_years"])
        b.add(
            "ehc.advice.requested", advice_day, advice_id=f"adv-{i}", provider_kind=kind,
            provider_id=f"prov-{rng.randint(1, 500)}",
        )
        b.add("ehc.advice.received", advice_day + _days(rng, 20, 55), advice_id=f"adv-{i}", provider_kind=kind)
    if rng.random() < 0.05:
        b.add("ehc.exception.recorded", advice_day + _days(rng, 5, 20), exception="E3", rule_ids=[], reason="x")
    draft = start + _days(rng, 95, 125)
    if rng.random() < 0.08:
        b.add("ehc.plan.not_issued", draft, notice_sent_on=draft)
        return b.events
    b.add("ehc.draft_plan.issued", draft, served_on=draft + _days(rng, 0, 2))
    for i in range(rng.randint(1, 2)):
        b.add("ehc.consultation.sent", draft + _days(rng, 0, 3), institution_id=f"urn-{i}")
        b.add("ehc.consultation.responded", draft + _days(rng, 8, 25), institution_id=f"urn-{i}")
    issued = start + _days(rng, 125, 170)
    b.add("ehc.plan.issued", issued, plan_id=f"p-{n}", child_under_5=rng.random() < 0.1)
    if rng.random() < 0.15:
        _appeal(b, issued + _days(rng, 20, 50), rng.choice(["amend", "school_name"]))

    last = issued
    while not b.full(6):
        meeting = last + _days(rng, 300, 380)
        b.add("ehc.review.meeting_scheduled", meeting - _days(rng, 10, 30), meeting_on=meeting)
        b.add("ehc.review.meeting_held", meeting)
        b.add("ehc.review.report_sent", meeting + _days(rng, 5, 20))
        decision_day = meeting + _days(rng, 14, 40)
        outcome = rng.choices(["maintain", "amend", "cease"], weights=[60, 37, 3])[0]
        b.add("ehc.review.decision_issued", decision_day, outcome=outcome)
        last = decision_day
        if outcome == "amend":
            b.add("ehc.amendment.proposed", decision_day)
            b.add("ehc.plan.amended", decision_day + _days(rng, 30, 70))
        elif outcome == "cease":
            notice = decision_day + _days(rng, 0, 10)
            b.add("ehc.cease.decided", notice, notice_sent_on=notice)
            b.add("ehc.plan.ceased", decision_day + _days(rng, 50, 90), notice_sent_on=decision_day)
            break
        if rng.random() < 0.1 and not b.full(2):
            transfer = date(decision_day.year + 1, 9, 1)
            b.add("ehc.phase_transfer.planned", decision_day + _days(rng, 1, 30), transfer_on=transfer, kind="school")
        if rng.random() < 0.25:
            break
    return b.events


def synthetic_stream(n_events: int, seed: int = 7) -> tuple[list[CaseEventRecord], int]:
    """The first ``n_events`` events of whole synthetic cases made one after another (the last case
    cut there), and how many cases they come from: the backlog the service benchmarks replay."""
    rng = random.Random(seed)
    records: list[CaseEventRecord] = []
    cases = 0
    while len(records) < n_events:
        records.extend(synthetic_case(cases, rng))
        cases += 1
    return records[:n_events], cases


def _appeal(b: _CaseBuilder, day: date, order_type: str) -> None:
    if b.full(7):
        return
    rng = b.rng
    b.add("ehc.mediation.requested", day, includes_health=rng.random() < 0.2)
    concluded = day + _days(rng, 20, 40)
    b.add("ehc.mediation.concluded", concluded)
    cert = concluded + _days(rng, 1, 5)
    b.add("ehc.mediation.certificate_issued", cert)
    registered = cert + _days(rng, 10, 30)
    b.add("ehc.appeal.registered", registered, sent_to_la_on=registered + _days(rng, 2, 10))
    order = registered + _days(rng, 120, 200)
    b.add("ehc.tribunal.order", order, order_type=order_type)
    if order_type in ("amend", "school_name"):
        b.add("ehc.plan.amended", order + _days(rng, 10, 40))
    elif order_type == "assess":
        notice = order + _days(rng, 5, 20)
        b.add("ehc.assessment.decided", notice, decision="assess", notice_sent_on=notice)


def case_in_progress(case_id: str, rng: random.Random, today: date, started_within_days: int = 400
                     ) -> list[CaseEventRecord]:
    """A history that started at most ``started_within_days`` before ``today``, cut at ``today``
    (nothing has happened after it): a case the council is still working on."""
    start = today - timedelta(days=rng.randint(1, started_within_days))
    return [e for e in synthetic_case(0, rng, start, case_id) if e.occurred_on <= today]
