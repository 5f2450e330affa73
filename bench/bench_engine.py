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
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.deadlines.domain import (  # noqa: E402
    Deadline,
    TermCalendar,
    WorkingDayCalendar,
    compute,
    load_ruleset_history,
)
from services.deadlines.domain.synthetic import synthetic_case  # noqa: E402

TARGET_CASES = 718_838
TARGET_SECONDS = 60.0
BATCH = 500


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
