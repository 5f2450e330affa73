"""Benchmark of the web front's pages on PostgreSQL (issue 10).

    .venv/bin/ehc infra up && .venv/bin/python bench/bench_web.py [--cases 20000 --per-caseworker 200]

Stores a council of N cases (200 per caseworker, 10 teams; four deadlines and three events per
case, a plan issued for most) straight into the deadlines service's tables, runs the deadlines
read API and the notifier's API in-process behind the web front (served by uvicorn), signs in,
and prints the time to first byte (median and 95th percentile of 20 requests after 3 warm-up
ones) of: the council's dashboard and a team's dashboard, with their figures counted afresh and
kept for a minute, a caseworker's "My cases", a case page; each beside the same figures of a
baseline measured in the same run through the same stack (the web front's ``/healthz``, over the
same uvicorn server and client), as a ratio, since the machine may be shared and noisy.
Target: under 200 ms each.

The tables are loaded with COPY, then VACUUM ANALYZE: the state autovacuum keeps a live table in
(statistics, and the visibility map that lets PostgreSQL answer the dashboards' counts from the
covering indexes without reading the wide rows).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import uvicorn  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from services.deadlines.bootstrap import MIGRATIONS as DEADLINES_MIGRATIONS  # noqa: E402
from services.deadlines.bootstrap import bootstrap as deadlines_bootstrap  # noqa: E402
from services.notifier.bootstrap import MIGRATIONS as NOTIFIER_MIGRATIONS  # noqa: E402
from services.notifier.bootstrap import bootstrap as notifier_bootstrap  # noqa: E402
from services.web.bootstrap import bootstrap as web_bootstrap  # noqa: E402
from shared.db import migrate  # noqa: E402
from shared.local_infra import postgres as pg_infra  # noqa: E402
from shared.logging import configure_logging  # noqa: E402
from shared.settings import Settings  # noqa: E402

NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


class FixedClock:
    def now(self) -> datetime:
        return NOW


def explanation(case_id: str, rule_id: str, title: str, trigger: date, due: date, status: str,
                completed: date | None, exception: str | None) -> str:
    return json.dumps({"case_id": case_id, "rule_id": rule_id, "title": title, "kind": "duty",
                       "due_on": due.isoformat(), "status": status, "responsible": "la",
                       "trigger_event_id": f"{case_id}-request", "trigger_date": trigger.isoformat(),
                       "completed_on": completed.isoformat() if completed else None,
                       "legal_source": "Regs 13(2)", "period_text": "20 weeks from the request", "flags": [],
                       "exception": exception, "exception_reason": None, "ruleset_version": "england-2014.1"})


def council(n_cases: int, per_caseworker: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]],
                                                        list[tuple[Any, ...]]]:
    today = NOW.date()
    deadlines, events, cases = [], [], []
    for i in range(n_cases):
        case_id, cw = f"case-{i:06d}", f"cw-{i // per_caseworker:04d}"
        team = f"team-{(i // per_caseworker) % 10}"
        received = today - timedelta(days=20 + (i * 7) % 400)
        decision_due, plan_due = received + timedelta(weeks=6), received + timedelta(weeks=20)
        issued = received + timedelta(days=100 + (i * 13) % 120) if i % 3 else None
        issued = issued if issued and issued <= today else None
        exception = "E3" if i % 17 == 0 else None
        plan_status = ("met" if issued and issued <= plan_due else "met_late") if issued else (
            "exception" if exception else "breached" if plan_due < today else "open")
        rows = [("assessment.decision", "Decide whether to carry out an EHC needs assessment", decision_due,
                 "met", received + timedelta(days=30)),
                ("plan.final", "Issue the final EHC plan", plan_due, plan_status, issued),
                ("assessment.plan_decision", "Tell the family if a plan is not necessary",
                 received + timedelta(weeks=16), "met" if issued else "open", issued),
                ("review.annual", "Review the EHC plan", (issued or plan_due) + timedelta(days=364),
                 "open" if issued else "cancelled", None)]
        for rule_id, title, due, status, done in rows:
            excepted = exception if rule_id == "plan.final" else None
            deadlines.append((f"{case_id}:{rule_id}:1", case_id, rule_id, due, status, "la", "duty", team, cw,
                              explanation(case_id, rule_id, title, received, due, status, done, excepted), NOW,
                              received, done, excepted))
        for n, (type_, on, data) in enumerate([
                ("ehc.case.assigned", received, {"caseworker_id": cw, "team_id": team}),
                ("ehc.request.received", received, {"route": "request", "requested_by": "parent"}),
                ("ehc.assessment.decided", received + timedelta(days=30), {"decision": "assess"})]):
            events.append((f"{case_id}-{n}", case_id, "bench", type_, on, NOW, None, json.dumps(data), NOW))
        cases.append((case_id, team, cw, None, "england-2014.1", NOW))
    return deadlines, events, cases


async def load(settings: Settings, n_cases: int, per_caseworker: int) -> None:
    schema = settings.schema_for("deadlines")
    deadlines, events, cases = council(n_cases, per_caseworker)
    conn = await asyncpg.connect(pg_infra.dsn())
    try:
        await conn.copy_records_to_table("deadlines", schema_name=schema, records=deadlines, columns=[
            "deadline_id", "case_id", "rule_id", "due_on", "status", "responsible", "kind", "team_id",
            "caseworker_id", "explanation", "updated_at", "trigger_date", "completed_on", "exception"])
        await conn.copy_records_to_table("case_events", schema_name=schema, records=events, columns=[
            "event_id", "case_id", "source", "type", "occurred_on", "recorded_at", "supersedes", "data",
            "received_at"])
        await conn.copy_records_to_table("cases", schema_name=schema, records=cases, columns=[
            "case_id", "team_id", "caseworker_id", "area_id", "ruleset_version", "updated_at"])
        for table in ("deadlines", "case_events", "cases"):
            await conn.execute(f'VACUUM ANALYZE "{schema}".{table}')
    finally:
        await conn.close()
    print(f"stored {n_cases:,} cases ({len(deadlines):,} deadlines, {len(events):,} events), "
          f"{per_caseworker} per caseworker, in {schema}")


async def ttfb(client: httpx.AsyncClient, path: str, n: int = 20, warm: int = 3,
               before: Any = None) -> tuple[float, float]:
    """(median, 95th percentile) of the time to first byte, in ms."""
    samples = []
    for i in range(warm + n):
        if before is not None:
            before()
        t0 = time.perf_counter()
        async with client.stream("GET", path) as response:
            async for _ in response.aiter_raw():
                first = time.perf_counter() - t0
                break
            assert response.status_code == 200, (path, response.status_code)
        if i >= warm:
            samples.append(first * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def report(figures: tuple[float, float], base: tuple[float, float] | None = None, target: bool = False) -> str:
    p50, p95 = figures
    out = f"median {p50:.0f} ms, p95 {p95:.0f} ms"
    if base is not None:
        out += f" ({p50 / max(base[0], 0.1):.1f}x / {p95 / max(base[1], 0.1):.1f}x the baseline's median / p95)"
    if target:
        out += f", {'within' if p95 < 200 else 'OVER'} the 200 ms target"
    return out


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--per-caseworker", type=int, default=200)
    args = parser.parse_args(argv)
    configure_logging("WARNING", json_output=False)
    await asyncio.to_thread(pg_infra.start)
    await pg_infra.wait_ready(60)
    tag = "benchweb" + uuid.uuid4().hex[:6]
    port = 18000 + int(tag[-4:], 16) % 2000
    settings = Settings(environment="test", database_url=pg_infra.database_url(), db_schema_prefix=f"{tag}_")
    settings = settings.model_copy(update={
        "deadlines": settings.deadlines.model_copy(update={"api_tokens": {"bench": "admin"}}),
        "notifier": settings.notifier.model_copy(update={"admin_tokens": [SecretStr("bench")]}),
        "web": settings.web.model_copy(update={"dev_sign_in": True, "secure_cookies": False,
                                               "deadlines_api_token": SecretStr("bench"),
                                               "notifier_api_token": SecretStr("bench"),
                                               "base_url": f"http://127.0.0.1:{port}"})})
    deadlines = deadlines_bootstrap(settings, clock=FixedClock())
    notifier = notifier_bootstrap(settings)
    web = web_bootstrap(settings, deadlines_transport=httpx.ASGITransport(app=deadlines.api),
                        notifier_transport=httpx.ASGITransport(app=notifier.api), clock=FixedClock().now)
    server = None
    try:
        await migrate(deadlines.engine, "deadlines", DEADLINES_MIGRATIONS, settings.schema_for("deadlines"))
        await migrate(notifier.engine, "notifier", NOTIFIER_MIGRATIONS, settings.schema_for("notifier"))
        await web.start()
        await load(settings, args.cases, args.per_caseworker)
        server = uvicorn.Server(uvicorn.Config(web.api, host="127.0.0.1", port=port, log_config=None,
                                               access_log=False, lifespan="off"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=deadlines.api), base_url="http://d",
                                     headers={"Authorization": "Bearer bench"}) as api:
            base = await ttfb(api, "/healthz", n=10)
            print(f"  deadlines API /healthz (its baseline): {report(base)}")
            for path in ("/v1/summary", "/v1/timeliness", "/v1/cases?caseworker_id=cw-0007"):
                print(f"  deadlines API {path}: {report(await ttfb(api, path, n=10), base)}")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            form = await client.get("/dev-sign-in")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
            await client.post("/dev-sign-in", data={"csrf_token": token, "who": "cw-0007",
                                                    "roles": "caseworker manager admin"})
            recount = web.deps.deadlines._aggregates.clear  # the figures counted afresh for every request
            base = await ttfb(client, "/healthz")
            print(f"baseline, the web front's /healthz through the same server and client: {report(base)}")
            for name, path in [("dashboard, whole council", "/dashboard"),
                               ("dashboard, one team", "/dashboard?team_id=team-7")]:
                print(f"time to first byte, {name} with its figures recounted (not kept a minute): "
                      f"{report(await ttfb(client, path, before=recount), base, target=True)}")
            for name, path in [("dashboard, whole council", "/dashboard"),
                               ("dashboard, one team", "/dashboard?team_id=team-7"),
                               (f"My cases ({args.per_caseworker} cases)", "/cases"),
                               ("case page", "/cases/case-001401")]:
                print(f"time to first byte, {name}: {report(await ttfb(client, path), base, target=True)}")
        server.should_exit = True
        await task
    finally:
        await web.stop()
        await deadlines.engine.dispose()
        await notifier.engine.dispose()
        conn = await asyncpg.connect(pg_infra.dsn())
        for service in ("deadlines", "notifier", "web"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.schema_for(service)}" CASCADE')
        await conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
