"""What the corrected rule set (england-2026.1, issue 11) changes on a synthetic caseload, by rule.

    .venv/bin/python bench/bench_ruleset_change.py [--cases 20000] [--as-of 2026-11-29]

The service's dry run (`ehc deadlines rebuild --dry-run`, bench/bench_rebuild_dry_run.py) keeps the
version in force when each clock started, so old cases do not change under a new version. This
script answers the audit's question instead: had every case been computed under the corrected
law, which deadlines would be added, moved, change status or be removed, per rule. It computes
each case under the old version alone and the new version alone with the engine and diffs the
two with the same comparison the service publishes (``service_layer.changes.diff``). The baseline
of the same run is the computation under the old version; the ratio is the new version's time to it.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.deadlines.domain.calendar import WorkingDayCalendar  # noqa: E402
from services.deadlines.domain.engine import compute  # noqa: E402
from services.deadlines.domain.rules import RuleSetHistory, load_ruleset_history  # noqa: E402
from services.deadlines.domain.synthetic import synthetic_case  # noqa: E402
from services.deadlines.service_layer.changes import diff  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 29))
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    history = load_ruleset_history("england")
    old, new = (RuleSetHistory.of([v]) for v in (history.versions[0], history.versions[-1]))
    calendar = WorkingDayCalendar()
    rng = random.Random(args.seed)
    cases = [synthetic_case(n, rng) for n in range(args.cases)]
    events = sum(map(len, cases))

    started = time.perf_counter()
    before = [{d.deadline_id: d for d in compute(c, old, calendar, args.as_of)} for c in cases]
    old_seconds = time.perf_counter() - started
    started = time.perf_counter()
    after = [compute(c, new, calendar, args.as_of) for c in cases]
    new_seconds = time.perf_counter() - started

    by_rule: Counter[tuple[str, str]] = Counter()
    changed_cases = 0
    for stored, computed in zip(before, after, strict=True):
        changes = diff(stored, computed)
        changed_cases += bool(changes)
        for change in changes:
            d = change.deadline or change.previous
            assert d is not None
            if change.deadline is None:
                kind = "removed"
            elif change.previous is None:
                kind = "added"
            elif change.previous.due_on != change.deadline.due_on:
                kind = "moved"
            else:
                kind = "status"
            by_rule[(d.rule_id, kind)] += 1

    print(f"{args.cases:,} synthetic cases, {events:,} events, as of {args.as_of}: "
          f"{history.versions[0].version} -> {history.versions[-1].version}")
    print(f"computed under the old version in {old_seconds:.1f} s (baseline), under the new in {new_seconds:.1f} s "
          f"(ratio {new_seconds / old_seconds:.2f})")
    print(f"{sum(by_rule.values()):,} changes in {changed_cases:,} cases")
    print(f"{'rule':36} {'added':>8} {'moved':>8} {'status':>8} {'removed':>8}")
    for rule in sorted({r for r, _ in by_rule}):
        row = [by_rule[(rule, k)] for k in ("added", "moved", "status", "removed")]
        print(f"{rule:36} " + " ".join(f"{n:>8,}" for n in row))


if __name__ == "__main__":
    main()
