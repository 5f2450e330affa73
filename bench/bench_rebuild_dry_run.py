"""Benchmark of `ehc deadlines rebuild --dry-run` over a synthetic caseload (issue 11).

    .venv/bin/ehc infra up && .venv/bin/python bench/bench_rebuild_dry_run.py [--cases 20000]

Publishes bench_engine's synthetic cases to ehc.case-events (own topic prefix and schema on the
local Kafka and PostgreSQL), rebuilds the service's state from them, then times dry runs: with
nothing changed, with a new rule-set version (a made-up amendment from 2019: 5 weeks to decide
whether to assess) and with a new bank holiday in the override file. Prints each run's time and
what it would publish, by kind of change and reason. Nothing is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_deadlines_service import envelope, produce_all, settings_for  # noqa: E402
from bench.bench_engine import synthetic_case  # noqa: E402
from services.deadlines.bootstrap import bootstrap  # noqa: E402
from services.deadlines.domain.rules import RULESETS_DIR, RuleSetHistory, load_ruleset_file, parse_ruleset  # noqa: E402
from services.deadlines.entrypoints.rebuild import RebuildReport, rebuild  # noqa: E402
from shared import topics  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.local_infra import kafka as kafka_infra  # noqa: E402
from shared.local_infra import postgres as pg_infra  # noqa: E402
from shared.logging import configure_logging  # noqa: E402
from shared.settings import Settings  # noqa: E402
from shared.topics import topic_specs  # noqa: E402


class Quiet:
    def __init__(self, label: str, total: int) -> None: ...

    def update(self, completed: int, text: str = "") -> None: ...

    def close(self) -> None: ...


def amended_version() -> RuleSetHistory:
    raw = yaml.safe_load((RULESETS_DIR / "england.yaml").read_text())
    raw["version"], raw["effective_from"] = "england-bench.2", "2019-01-01"
    for rule in raw["rules"]:
        if rule["rule_id"] == "assessment.decision":
            rule["period"]["amount"] = 5
    return RuleSetHistory.of([load_ruleset_file(RULESETS_DIR / "england.yaml"), parse_ruleset(raw, "bench")])


async def timed(settings: Settings, ruleset: Any = None, dry_run: bool = True) -> tuple[float, RebuildReport]:
    app = bootstrap(settings, ruleset=ruleset)
    await app.start(consume=False, schedule=False)
    try:
        t0 = time.perf_counter()
        report = await rebuild(app, progress=Quiet, dry_run=dry_run)
        return time.perf_counter() - t0, report
    finally:
        await app.stop()


def describe(label: str, seconds: float, report: RebuildReport) -> str:
    kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(report.by_change.items())) or "none"
    reasons = ", ".join(f"{n:,} {k}" for k, n in sorted(report.by_reason.items())) or "none"
    return (f"{label}: {seconds:.1f} s for {report.cases:,} cases ({report.read:,} events replayed); "
            f"{report.published:,} changes in {report.changed_cases:,} cases ({kinds}; reasons: {reasons})")


async def caseload_topic(prefix: str, cases: int, seed: int,
                         make_case: Callable[[int, random.Random], list[Any]] = synthetic_case) -> Settings:
    """Own topics and schema prefix (``prefix`` and a random tag) on the local Kafka and PostgreSQL,
    with the synthetic cases (``make_case(n, rng)``) published to their ehc.case-events (keyed by case)."""
    await asyncio.to_thread(kafka_infra.start)
    await kafka_infra.wait_ready(120)
    await asyncio.to_thread(pg_infra.start)
    settings = settings_for(prefix + uuid.uuid4().hex[:6])
    await ensure_topics(settings.kafka, topic_specs(settings.kafka.topic_prefix, 6))
    rng = random.Random(seed)
    messages = [(e.case_id.encode(), envelope(e)) for n in range(cases) for e in make_case(n, rng)]
    t0 = time.perf_counter()
    await produce_all(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.CASE_EVENTS), messages)
    print(f"published {len(messages):,} case events of {cases:,} cases in {time.perf_counter() - t0:.1f} s")
    return settings


async def drop(settings: Settings) -> None:
    """Leave nothing behind: the deadlines schema and every topic of the settings' prefix."""
    conn = await asyncpg.connect(pg_infra.dsn())
    await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.schema_for("deadlines")}" CASCADE')
    await conn.close()
    from tests.conftest import _delete_topics
    await _delete_topics(settings.kafka)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    configure_logging("WARNING", json_output=False)
    settings = await caseload_topic("benchdry", args.cases, args.seed)
    try:
        seconds, first = await timed(settings, dry_run=False)
        print(f"initial rebuild (stores and publishes): {seconds:.1f} s, {first.published:,} deadline events")
        print(describe("dry run, nothing changed", *await timed(settings)))
        print(describe("dry run, new rule-set version", *await timed(settings, amended_version())))
        with tempfile.TemporaryDirectory() as folder:
            overrides = Path(folder) / "bank-holidays.yaml"
            overrides.write_text("extra: [2025-03-17, 2025-06-16]\n")
            holiday = settings.model_copy(update={"deadlines": settings.deadlines.model_copy(
                update={"bank_holiday_overrides": overrides})})
            print(describe("dry run, two new bank holidays", *await timed(holiday)))
        seconds, real = await timed(settings, amended_version(), dry_run=False)
        print(f"real rebuild with the new rule-set version: {seconds:.1f} s, {real.published:,} changes published")
    finally:
        await drop(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
