"""Benchmark of `ehc deadlines rebuild` (issue 12): a council's history replayed into an empty state.

    .venv/bin/ehc infra up && .venv/bin/python bench/bench_rebuild.py [--cases 20000]
        [--histories in-progress|whole] [--started-within DAYS] [--profile]

Publishes synthetic cases (services/deadlines/domain/synthetic.py) to ehc.case-events on the local
Kafka (own topic prefix and schema on the local PostgreSQL). By default (``--histories in-progress``,
as bench/bench_compute_cli.py) each case is one a council is still working on, started within
``--started-within`` days (200) of today and cut there: about 10 events a case, so the default 20,000
cases are about 200,000 events (issue 12's rebuild figure); ``--histories whole`` gives whole
histories (about 26 events and 52 deadlines a case: ``--cases 8000`` is about 200,000 events). Then in one run:

1. baselines: the raw time to read the same topic to its end with aiokafka (no parsing), and the
   engine alone computing the same cases (no Kafka, no database);
2. `ehc deadlines rebuild` as its own process into the empty schema: wall time, events/s, cases/s,
   the process's peak RSS, and the ratios to (1);
3. the same command again (nothing new, nothing changed: what a re-run after an interruption, or a
   change of law reaching every case, costs).

``--profile`` runs (2) and (3) in this process under cProfile instead and prints where the time goes.
Nothing is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer  # noqa: E402

from bench.bench_rebuild_dry_run import caseload_topic, drop, timed  # noqa: E402
from services.deadlines.domain.calendar import WorkingDayCalendar  # noqa: E402
from services.deadlines.domain.engine import compute  # noqa: E402
from services.deadlines.domain.rules import load_ruleset_history  # noqa: E402
from services.deadlines.domain.synthetic import case_in_progress, synthetic_case  # noqa: E402
from shared import topics  # noqa: E402
from shared.kafka import topic_partitions  # noqa: E402
from shared.logging import configure_logging  # noqa: E402
from shared.settings import Settings  # noqa: E402
from tests.e2e.harness import service_env  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


async def raw_read(settings: Settings) -> tuple[float, int]:
    """aiokafka alone: read the case-events topic from the beginning to its end, nothing else."""
    topic = settings.kafka.topic(topics.CASE_EVENTS)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None,
                                enable_auto_commit=False, max_poll_records=5000)
    await consumer.start()
    try:
        tps = await topic_partitions(settings.kafka, topic)
        consumer.assign(tps)
        t0 = time.perf_counter()
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        n, remaining = 0, {tp for tp in tps if ends[tp] > 0}
        while remaining:
            for tp, records in (await consumer.getmany(*remaining, timeout_ms=1000)).items():
                n += len(records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return time.perf_counter() - t0, n
    finally:
        await consumer.stop()


def in_progress(n: int, rng: random.Random, today: date, started_within: int) -> list[Any]:
    return case_in_progress(f"case-{n:07d}", rng, today, started_within)


def case_maker(histories: str, started_within: int) -> Callable[[int, random.Random], list[Any]]:
    """The synthetic cases of ``--histories``: whole histories, or cases in progress today."""
    if histories == "whole":
        return synthetic_case
    return partial(in_progress, today=date.today(), started_within=started_within)


def engine_alone(cases: int, seed: int, make_case: Callable[[int, random.Random], list[Any]]) -> float:
    """The engine computing the same cases in memory (its cases built outside the timing)."""
    history, calendar, as_of = load_ruleset_history("england"), WorkingDayCalendar(), date.today()
    rng = random.Random(seed)
    built = [make_case(n, rng) for n in range(cases)]
    t0 = time.perf_counter()
    for events in built:
        compute(events, history, calendar, as_of)
    return time.perf_counter() - t0


def cli_rebuild(settings: Settings) -> tuple[float, str]:
    """`ehc deadlines rebuild` as its own process (this tree's code): wall time and its summary."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "services.cli", "deadlines", "rebuild"], cwd=ROOT,
                          env={**service_env(settings), "EHC_LOG_LEVEL": "WARNING"},
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"rebuild failed: {done.stderr[-2000:]}")
    return seconds, done.stdout.strip().splitlines()[-1]


async def profiled(settings: Settings, top: int) -> None:
    """Both runs (into the empty state, then again) in this process under cProfile."""
    for label in ("rebuild into an empty state", "re-run, nothing new or changed"):
        profile = cProfile.Profile()
        profile.enable()
        seconds, report = await timed(settings, dry_run=False)
        profile.disable()
        print(f"profiled {label} (in this process): {seconds:.1f} s; {report.summary()}")
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        print(out.getvalue())


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--histories", choices=("in-progress", "whole"), default="in-progress",
                        help="cases still open today (about 10 events each) or whole histories (about 26)")
    parser.add_argument("--started-within", type=int, default=200,
                        help="in-progress cases started at most this many days before today")
    parser.add_argument("--profile", action="store_true", help="Profile the rebuild in this process.")
    parser.add_argument("--top", type=int, default=30, help="With --profile: how many functions to show.")
    args = parser.parse_args(argv)
    configure_logging("WARNING", json_output=False)
    make_case = case_maker(args.histories, args.started_within)
    settings = await caseload_topic("benchrb", args.cases, args.seed, make_case)
    try:
        raw_seconds, events = await raw_read(settings)
        print(f"corpus: {args.cases:,} cases ({args.histories} histories), {events:,} events")
        engine_seconds = engine_alone(args.cases, args.seed, make_case)
        print(f"baseline: raw aiokafka read of the topic {raw_seconds:.2f} s ({events / raw_seconds:,.0f} events/s); "
              f"engine alone {engine_seconds:.2f} s ({args.cases / engine_seconds:,.0f} cases/s)")
        if args.profile:
            await profiled(settings, args.top)
            return 0
        seconds, summary = await asyncio.to_thread(cli_rebuild, settings)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"rebuild into an empty state: {seconds:.1f} s wall, {events / seconds:,.0f} events/s, "
              f"{args.cases / seconds:,.0f} cases/s, peak RSS {peak:.0f} MB (its process)")
        print(f"  ratio to the raw read: {seconds / raw_seconds:.1f}x its time; "
              f"to the engine alone: {seconds / engine_seconds:.1f}x")
        print(f"  its summary: {summary}")
        again, summary = await asyncio.to_thread(cli_rebuild, settings)
        print(f"re-run, nothing new or changed: {again:.1f} s wall, {events / again:,.0f} events/s, "
              f"{args.cases / again:,.0f} cases/s; ratio to the raw read {again / raw_seconds:.1f}x")
        print(f"  its summary: {summary}")
    finally:
        await drop(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
