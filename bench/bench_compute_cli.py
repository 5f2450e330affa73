"""Benchmark of the command line: start-up of `ehc --help`, and `ehc deadlines compute` end to end.

    .venv/bin/python bench/bench_compute_cli.py [--cases N] [--seed S] [--as-of YYYY-MM-DD] [--before DIR]
                                                [--histories in-progress|whole] [--started-within DAYS] [--phases]
                                                [--workers 1,2,auto] [--rounds R]

Baselines measured in the same run (the machine is shared and noisy, so the ratios matter):
- `ehc --help` and `ehc deadlines --help` CPU seconds against `python -c pass`;
- `ehc deadlines compute` on N synthetic cases (services/deadlines/domain/synthetic.py, realistic
  histories; written as canonical JSON lines in the order they were recorded, cases interleaved)
  By default (``--histories in-progress``) each case is one a council is still working on:
  ``case_in_progress``, started within ``--started-within`` days (200) of ``--as-of`` and cut there,
  about 10 events a case (20,000 cases: about 203,000 events, the corpus issue 12 measured with
  195,000); ``--histories whole`` gives whole histories to the end (about 26 events a case)
  against the pure engine alone on the same cases in this process (each result dropped at once,
  as bench_engine does). The command runs once for each of ``--workers`` (default ``1,2``: one
  process, then two; ``auto`` is the command's own default) on the same corpus, ``--rounds`` times
  in turn; the summary takes each one's best wall time. Its rates are cases per wall second (the
  target of issue 12: 6,000 cases/s end to end with peak memory under 500 MB) and per CPU second of
  all its processes (user+system time of the command and of the workers it forks and waits for:
  getrusage(RUSAGE_CHILDREN) across the run). Peak memory is the sum of the peak RSS (VmHWM,
  sampled every 10 ms) of the command and each of its workers: an upper bound, as pages a worker
  shares with the command after fork are counted in both, and the processes need not peak at once;
  beside it, the peak of the sum of their PSS (a page shared by n processes counts 1/n in each;
  sampled every 250 ms), the memory they held at once. The longest chain is the CPU of the command
  until its first worker starts plus that of its busiest worker: about the wall time when every
  process has a core to itself. The load average is printed before and after (the machine is
  shared). Every command runs with its bytecode cached (in a folder of the run), as an installed
  package has it.
With ``--before DIR`` (another checkout, e.g. a worktree of the commit before), the same command
of that checkout's code is run on the same corpus too, for a before/after ratio in one run.
With ``--phases``, where the command's CPU goes: its start-up (the command on empty input: imports,
rule set, calendars) and, in this process, each step of its loop on the same corpus (reading and
checking the lines, resolving histories, the engine, data quality, writing, freeing).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from services.deadlines.adapters.records import record_to_json  # noqa: E402
from services.deadlines.domain import TermCalendar, WorkingDayCalendar, compute, load_ruleset_history  # noqa: E402
from services.deadlines.domain.synthetic import case_in_progress, synthetic_case  # noqa: E402

EHC = [sys.executable, "-c", "from services.cli import app; app()"]
# The commands run with their bytecode cached, as an installed package has it: this environment may set
# PYTHONDONTWRITEBYTECODE, and a checkout's modules would then be compiled again at every start (about a
# tenth of a second); the cache goes to a folder of this run (main), never into the checkout.
CHILD_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


class Run(NamedTuple):
    cpu: float  # CPU seconds of the process and of the children it waited for
    wall: float
    peak: float  # MB: the sum of the peak RSS of the process and of each of its children
    code: int
    chain: float  # CPU seconds of the longest chain: the process until its first child, then its busiest child
    pss: float  # MB: the peak of the sum of the processes' PSS, sampled every 250 ms


def child(argv: list[str], stdin: Path | None = None, root: Path = ROOT) -> Run:
    """One child process, its output dropped."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(stdin or "/dev/null", "rb") as feed:
        process = subprocess.Popen(argv, stdin=feed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root,
                                   env={**CHILD_ENV, "PYTHONPATH": str(root)})
        tree = _Tree(process)
        sampler = threading.Thread(target=tree.sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        sampler.join()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    tree.peaks.setdefault(process.pid, usage.ru_maxrss)  # too quick to be sampled
    workers = [seconds for pid, seconds in tree.cpu.items() if pid != process.pid]
    chain = tree.before_children + max(workers) if workers and tree.before_children is not None else cpu
    return Run(cpu, wall, sum(tree.peaks.values()) / 1024, process.returncode, chain, tree.pss / 1024)


class _Tree:
    """Every 10 ms until the process ends, from /proc: the peak RSS (KB) so far of it and of each of its
    children, their CPU seconds so far, and the process's CPU seconds when its first child appeared;
    every 250 ms (reading it walks the page tables) the sum of their proportional set sizes (PSS: a page
    shared by n processes counts 1/n in each), whose peak is the memory the tree held at once."""

    TICK = 1 / os.sysconf("SC_CLK_TCK")

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.peaks: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self.before_children: float | None = None
        self.pss = 0  # KB, the peak of the sum

    def sample(self) -> None:
        root = self.process.pid
        rounds = 0
        while self.process.returncode is None:
            pids = [root]
            try:
                for task in Path(f"/proc/{root}/task").iterdir():
                    pids.extend(int(pid) for pid in (task / "children").read_text().split())
            except OSError:
                pass
            pss = 0
            for pid in pids:
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text() if rounds % 25 == 0 else ""
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.peaks[pid] = max(self.peaks.get(pid, 0), int(line.split()[1]))
                self.cpu[pid] = (int(fields[11]) + int(fields[12])) * self.TICK  # utime + stime
                pss += sum(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
            self.pss = max(self.pss, pss)
            if len(pids) > 1 and self.before_children is None:
                self.before_children = self.cpu.get(root)
            rounds += 1
            time.sleep(0.01)


def best_cpu(argv: list[str], runs: int = 3) -> float:
    return min(child(argv).cpu for _ in range(runs))


def print_phases(corpus: Path, as_of: date, start_up: float, total: float) -> None:
    """CPU seconds of each step of `ehc deadlines compute`'s loop (entrypoints/cli.py), run here on the corpus."""
    import gc

    import msgspec

    from services.deadlines.adapters.event_lines import fast_record
    from services.deadlines.domain import engine
    from shared.data_quality import check_case

    history, calendar, terms = load_ruleset_history("england"), WorkingDayCalendar(), TermCalendar.from_file()
    times: dict[str, float] = {}
    gc.disable()
    try:
        clock = time.process_time()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.process_time()
            times[name] = times.get(name, 0.0) + now - clock
            clock = now

        by_case: dict[str, list[Any]] = {}
        with corpus.open("rb") as lines:
            for line in lines:
                record = fast_record(line)
                by_case.setdefault(record.case_id, []).append(record)  # type: ignore[union-attr]
        lap("reading (msgspec, checks, records)")
        encode_lines, sink = msgspec.json.Encoder().encode_lines, open(os.devnull, "wb")  # noqa: SIM115
        for case_id in sorted(by_case):
            events, alias, types = engine._resolve_case(by_case[case_id])
            lap("resolving histories")
            deadlines = engine._compute_resolved(events, alias, types, history, calendar, as_of, terms, None)
            lap("engine")
            check_case(events)
            lap("data quality")
            sink.write(encode_lines(deadlines))
            lap("writing (msgspec)")
            del deadlines, events, by_case[case_id]
            lap("freeing")
        sink.close()
    finally:
        gc.enable()
    print(f"phases (CPU s):        start-up {start_up:.2f} (the command on empty input: imports, rule set, calendars)")
    for name, seconds in times.items():
        print(f"                       {name} {seconds:.2f}")
    print(f"                       sum {start_up + sum(times.values()):.2f} (the command itself: {total:.2f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2014)
    parser.add_argument("--as-of", default="2026-11-02")
    parser.add_argument("--before", type=Path, help="another checkout whose `ehc deadlines compute` to compare")
    parser.add_argument("--histories", choices=("in-progress", "whole"), default="in-progress",
                        help="cases still open on --as-of (about 10 events each) or whole histories (about 26)")
    parser.add_argument("--started-within", type=int, default=200,
                        help="in-progress cases started at most this many days before --as-of")
    parser.add_argument("--phases", action="store_true", help="also print where the command's CPU goes")
    parser.add_argument("--workers", default="1,2", help="the --workers of each run, comma-separated (auto: the "
                                                         "command's default)")
    parser.add_argument("--rounds", type=int, default=1, help="run the --workers list this many times, in turn")
    args = parser.parse_args(argv)
    load_before = _load()
    with tempfile.TemporaryDirectory() as cache:
        CHILD_ENV["PYTHONPYCACHEPREFIX"] = cache
        return _run(args, load_before)


def _run(args: argparse.Namespace, load_before: str) -> int:

    baseline = best_cpu([sys.executable, "-c", "pass"])
    helps = {label: best_cpu(EHC + words) for label, words in
             (("ehc --help", ["--help"]), ("ehc deadlines --help", ["deadlines", "--help"]))}
    print(f"python -c pass:        {baseline:.3f} s CPU (best of 3)")
    for label, cpu in helps.items():
        print(f"{label + ':':22} {cpu:.3f} s CPU (best of 3), {cpu / baseline:.1f}x python -c pass")

    rng = random.Random(args.seed)
    as_of = date.fromisoformat(args.as_of)
    if args.histories == "whole":
        cases = [synthetic_case(n, rng) for n in range(args.cases)]
    else:
        cases = [case_in_progress(f"case-{n:07d}", rng, as_of, args.started_within) for n in range(args.cases)]
    events = sorted((e for case in cases for e in case), key=lambda e: e.recorded_at)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "events.jsonl"
        with corpus.open("wb") as out:
            for e in events:
                out.write(orjson.dumps(record_to_json(e), option=orjson.OPT_APPEND_NEWLINE))
        print(f"corpus:                {args.cases:,} cases ({args.histories} histories), {len(events):,} events, "
              f"{corpus.stat().st_size / 2**20:.0f} MB of JSON lines")
        del events

        history, calendar, terms = load_ruleset_history("england"), WorkingDayCalendar(), TermCalendar.from_file()
        c0, t0 = time.process_time(), time.perf_counter()
        deadlines = 0
        for case in cases:
            deadlines += len(compute(case, history, calendar, as_of, terms=terms))
        engine_cpu, engine_wall = time.process_time() - c0, time.perf_counter() - t0
        del cases

        compute_argv = EHC + ["deadlines", "compute", "--as-of", args.as_of]
        child(compute_argv)  # its bytecode cached
        runs = [(workers, child(compute_argv + ([] if workers == "auto" else ["--workers", workers]), stdin=corpus))
                for _ in range(args.rounds) for workers in args.workers.split(",")]
        before = child(compute_argv, stdin=corpus, root=args.before.resolve()) if args.before else None
        if args.phases:
            print_phases(corpus, as_of, min(child(compute_argv).cpu for _ in range(3)), runs[0][1].cpu)
    if any(run.code != 0 for _, run in runs):
        print(f"ehc deadlines compute exited {[run.code for _, run in runs]}")
        return 1
    engine_rate = args.cases / engine_cpu
    print(f"engine alone:          {engine_rate:,.0f} cases/s CPU ({engine_cpu:.2f} s CPU, {engine_wall:.2f} s wall), "
          f"{deadlines:,} deadlines")
    for workers, run in runs:
        print(f"compute --workers {workers + ':':5} {args.cases / run.wall:,.0f} cases/s wall ({run.wall:.2f} s), "
              f"{args.cases / run.cpu:,.0f} cases/s CPU ({run.cpu:.2f} s CPU, all processes); peak {run.peak:.0f} MB "
              f"(PSS {run.pss:.0f} MB); "
              f"against the engine alone: wall rate {args.cases / run.wall / engine_rate:.2f}, "
              f"CPU rate {args.cases / run.cpu / engine_rate:.2f}; longest chain {run.chain:.2f} s CPU "
              f"({args.cases / run.chain:,.0f} cases/s)")
    print("                       (peak: the sum of each process's peak RSS, an upper bound: pages a worker shares\n"
          "                       with the command count in both; PSS: the peak of the sum of their proportional\n"
          "                       set sizes, sampled every 250 ms, what they held at once; longest chain: the CPU\n"
          "                       of the command until its first worker starts plus that of its busiest worker,\n"
          "                       sampled: about the wall time when every process has a core to itself)")
    best: dict[str, Run] = {}
    for workers, run in runs:  # each --workers at its best wall time
        if workers not in best or run.wall < best[workers].wall:
            best[workers] = run
    for workers, run in best.items():
        if workers != "1" and "1" in best:
            print(f"--workers {workers} against 1: {best['1'].wall / run.wall:.2f}x the wall rate, "
                  f"{best['1'].chain / run.chain:.2f}x by the longest chain (the best run of each)")
    if before is not None:
        print(f"before ({args.before}): {args.cases / before.wall:,.0f} cases/s wall ({before.wall:.2f} s), "
              f"{args.cases / before.cpu:,.0f} cases/s CPU ({before.cpu:.2f} s CPU, exit {before.code}); "
              f"{before.peak:.0f} MB")
    fastest = min(best, key=lambda workers: best[workers].wall)
    rate, peak = args.cases / best[fastest].wall, best[fastest].peak
    met = "met" if rate >= 6_000 and peak < 500 else "NOT met"
    print(f"target (>= 6,000 cases/s wall, peak < 500 MB): {met} (best: --workers {fastest}, {rate:,.0f} cases/s, "
          f"{peak:.0f} MB)")
    print(f"load average:          {load_before} before, {_load()} after")
    return 0


def _load() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
