"""Benchmark of the pure deadlines engine: recompute many synthetic cases in one process.

    .venv/bin/python bench/bench_engine.py [--cases N] [--seed S] [--tracemalloc]

Cases have realistic histories of 5 to 40 events: request, decision, 3-6 advice requests and
replies, draft, consultations, final plan, annual review cycles, some amendments, some appeals
with mediation and a tribunal order, some phase transfers, exceptions and closures. Cases are
generated in batches of 5,000 outside the timed section; only ``compute`` is timed, both as wall
time and as the process's CPU time (the "one core" figure on a shared machine, where wall time
also counts the time other processes held the CPU). Prints cases/s, the extrapolated time for the
target volume (718,838 cases) and peak memory (maxrss of the whole process; with
``--tracemalloc``, also the peak traced by tracemalloc, which slows the run).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
import tracemalloc
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.deadlines.domain import (  # noqa: E402
    CaseEventRecord,
    Deadline,
    TermCalendar,
    WorkingDayCalendar,
    compute,
    load_ruleset_history,
)

TARGET_CASES = 718_838
TARGET_SECONDS = 60.0
BATCH = 500
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


def synthetic_case(n: int, rng: random.Random) -> list[CaseEventRecord]:
    b = _CaseBuilder(f"case-{n:07d}", rng)
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


def run(cases: int, seed: int, trace: bool) -> dict[str, Any]:
    history = load_ruleset_history("england")
    calendar = WorkingDayCalendar()
    terms = TermCalendar.from_file()
    as_of = date(2026, 11, 2)
    rng = random.Random(seed)
    compute(synthetic_case(0, rng), history, calendar, as_of, terms=terms)  # warm caches
    if trace:
        tracemalloc.start()
    elapsed = 0.0
    cpu = 0.0
    events_total = 0
    deadlines_total = 0
    statuses: Counter[str] = Counter()
    done = 0
    perf, proc = time.perf_counter, time.process_time
    while done < cases:
        size = min(BATCH, cases - done)
        batch = [synthetic_case(done + i + 1, rng) for i in range(size)]
        events_total += sum(len(c) for c in batch)
        sample: list[list[Deadline]] = []
        t0, c0 = perf(), proc()
        # Each result is used and dropped at once, as the service does (it diffs and stores it).
        # Keeping a whole batch of results alive instead would mostly measure the garbage
        # collector walking them.
        for i, case in enumerate(batch):
            result = compute(case, history, calendar, as_of, terms=terms)
            deadlines_total += len(result)
            if i % 25 == 0:
                sample.append(result)
        elapsed += perf() - t0
        cpu += proc() - c0
        for result in sample:  # status mix from a 4% sample, counted outside the timed section
            statuses.update(d.status.value for d in result)
        done += size
    traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rate = cases / elapsed if elapsed else float("inf")
    cpu_rate = cases / cpu if cpu else float("inf")
    return {
        "cases": cases,
        "events": events_total,
        "deadlines": deadlines_total,
        "statuses": dict(statuses.most_common()),
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "cases_per_s": rate,
        "cpu_cases_per_s": cpu_rate,
        "target_seconds": TARGET_CASES / rate,
        "cpu_target_seconds": TARGET_CASES / cpu_rate,
        "maxrss_mb": maxrss_kb / 1024,
        "traced_peak_mb": None if traced_peak is None else traced_peak / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000, help="number of synthetic cases (default 100000)")
    parser.add_argument("--seed", type=int, default=2014, help="random seed (default 2014)")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    args = parser.parse_args(argv)
    if args.cases < 1:
        parser.error("--cases must be at least 1")
    r = run(args.cases, args.seed, args.tracemalloc)
    print(f"cases:            {r['cases']:,}")
    print(f"events:           {r['events']:,} ({r['events'] / r['cases']:.1f} per case)")
    print(f"deadlines:        {r['deadlines']:,} ({r['deadlines'] / r['cases']:.1f} per case)")
    print(f"statuses (4% sample): {r['statuses']}")
    print(f"compute time:     {r['seconds']:.2f} s wall, {r['cpu_seconds']:.2f} s CPU")
    print(f"cases/s:          {r['cases_per_s']:,.0f} (wall), {r['cpu_cases_per_s']:,.0f} (CPU time of one core)")
    for label, seconds in (("wall", r["target_seconds"]), ("CPU", r["cpu_target_seconds"])):
        verdict = "within" if seconds < TARGET_SECONDS else "OVER"
        print(
            f"{TARGET_CASES:,} cases: {seconds:.1f} s extrapolated ({label}; {verdict} the "
            f"{TARGET_SECONDS:.0f} s target)"
        )
    print(f"peak memory:      {r['maxrss_mb']:.0f} MB maxrss (whole process)")
    if r["traced_peak_mb"] is not None:
        print(f"traced peak:      {r['traced_peak_mb']:.1f} MB (tracemalloc, Python allocations)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
