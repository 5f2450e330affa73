"""The dashboard's figures from the deadlines read API (/v1/summary, /v1/timeliness) are counted by the
database on either engine (PostgreSQL, and SQLite, the embedded default) and equal the figures counted
one deadline at a time: cases and counts by team and caseworker, and the DfE 20-week measure of
shared/timeliness.py over the plans issued (the same count as `ehc report timeliness`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from services.deadlines.adapters import tables
from services.deadlines.bootstrap import MIGRATIONS, bootstrap
from shared.db import migrate
from shared.settings import Settings
from shared.timeliness import last_months, monthly_figures, timeliness_of

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
TODAY = NOW.date()


class Clock:
    def now(self) -> datetime:
        return NOW


def council(n: int) -> list[dict[str, Any]]:
    """n cases of 3 deadlines each, in 3 teams: identical issued plans in and out of 20 and 52 weeks, this year and
    last, with and without exceptions, open and breached duties, overdue annual reviews."""
    rows = []
    for i in range(n):
        case_id, team, cw = f"case-{i:04d}", f"team-{i % 3}", f"cw-{i % 7}"
        j = i % 60  # the same dates for several cases: identical plans
        received = TODAY - timedelta(days=30 + (j * 11) % 700)
        issued = received + timedelta(days=60 + (j * 37) % 400) if j % 4 else None
        issued = issued if issued and issued <= TODAY else None
        exception = "E3" if i % 5 == 0 else None
        plan_due = received + timedelta(weeks=20)
        plan_status = ("met" if issued <= plan_due else "met_late") if issued else (
            "exception" if exception else "breached" if plan_due < TODAY else "open")
        review_due = (issued or plan_due) + timedelta(days=364)
        for rule_id, due, status, done, exc in [
                ("assessment.decision", received + timedelta(weeks=6), "met" if i % 6 else "due_soon", None, None),
                ("plan.final", plan_due, plan_status, issued, exception),
                ("review.annual", review_due, ("open" if issued else "cancelled") if i % 9 else "breached", None,
                 None)]:
            rows.append({"deadline_id": f"{case_id}:{rule_id}", "case_id": case_id, "rule_id": rule_id, "due_on": due,
                         "status": status, "responsible": "la", "kind": "duty", "team_id": team, "caseworker_id": cw,
                         "updated_at": NOW, "trigger_date": received, "completed_on": done, "exception": exc,
                         "explanation": {
                             "case_id": case_id, "rule_id": rule_id, "trigger_date": received.isoformat(),
                             "completed_on": done.isoformat() if done else None, "exception": exc}})
    return rows


def by_hand(rows: list[dict[str, Any]], until: date) -> tuple[dict[tuple[str, str], dict[str, int]], dict[str, Any]]:
    """The groups' counts and the 20-week figures (this year's and each month's) counted one deadline at a time."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        g = groups.setdefault((r["team_id"], r["caseworker_id"]), {"cases": set(), "breached": 0, "at_risk": 0,
                                                                   "exceptions": 0, "reviews_overdue": 0})
        g["cases"].add(r["case_id"])
        g["breached"] += r["status"] == "breached"
        g["at_risk"] += r["status"] in ("open", "due_soon") and r["due_on"] <= until
        g["exceptions"] += r["status"] == "exception"
        g["reviews_overdue"] += r["rule_id"] == "review.annual" and (
            r["status"] == "breached" or (r["status"] in ("open", "due_soon") and r["due_on"] < TODAY))
    counted = {k: {**g, "cases": len(g["cases"])} for k, g in groups.items()}
    plans = [(date.fromisoformat(e["trigger_date"]), date.fromisoformat(e["completed_on"]), e["exception"] is not None)
             for r in rows if r["rule_id"] == "plan.final" and r["status"] in ("met", "met_late")
             for e in [r["explanation"]]]
    months = last_months(TODAY)
    figures = {**timeliness_of(plans, TODAY.year).to_dict(),
               "months": [{"month": f"{y}-{m:02d}", **f.to_dict()} for y, m, f in monthly_figures(plans, months)]}
    return counted, figures


async def test_figures_counted_by_postgresql(isolated: Settings) -> None:
    await check_figures(isolated)


async def test_figures_counted_by_sqlite(tmp_path: Path) -> None:
    await check_figures(Settings(environment="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/deadlines.db"))


async def check_figures(settings: Settings) -> None:
    settings = settings.model_copy(update={"deadlines": settings.deadlines.model_copy(
        update={"api_tokens": {"tok": "admin"}})})
    app = bootstrap(settings, clock=Clock())
    rows = council(240)
    schema = None if settings.database_url.startswith("sqlite") else settings.schema_for("deadlines")
    try:
        await migrate(app.engine, "deadlines", MIGRATIONS, schema)
        async with app.engine.begin() as conn:
            await conn.execute(insert(tables.deadlines), rows)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.api), base_url="http://d",
                                     headers={"Authorization": "Bearer tok"}) as api:
            summary = (await api.get("/v1/summary")).json()
            figures = (await api.get("/v1/timeliness")).json()
            team = (await api.get("/v1/timeliness", params={"team_id": "team-1"})).json()
            with_cases = (await api.get("/v1/timeliness", params={"cases": "true"})).json()
            # the earlier address of the same figures (a documented alias)
            alias = (await api.get("/v1/reports/timeliness", params={"year": TODAY.year})).json()
            # a year the calendar cannot hold is a 422 with its reason, never a 500 (schemathesis found it)
            for year in ("53640787004256", "-19", "10000"):
                assert (await api.get("/v1/timeliness", params={"year": year})).status_code == 422
    finally:
        await app.engine.dispose()
    groups, expected = by_hand(rows, date.fromisoformat(summary["at_risk_until"]))
    assert {(g["team_id"], g["caseworker_id"]): {k: g[k] for k in ("cases", "breached", "at_risk", "exceptions",
                                                                    "reviews_overdue")}
            for g in summary["groups"]} == groups
    assert sum(g["cases"] for g in summary["groups"]) == 240
    assert {k: figures[k] for k in expected} == expected
    assert alias == figures and {k: with_cases[k] for k in figures} == figures
    assert sorted(with_cases["cases"]["including_exceptions"]["plans"]) == sorted(
        r["case_id"] for r in rows if r["rule_id"] == "plan.final" and r["status"] in ("met", "met_late")
        and r["completed_on"].year == TODAY.year)
    _, team_expected = by_hand([r for r in rows if r["team_id"] == "team-1"], TODAY)
    assert {k: team[k] for k in team_expected} == team_expected
    assert team["including_exceptions"]["plans"] < figures["including_exceptions"]["plans"]
    assert figures["including_exceptions"]["plans"] > figures["excluding_exceptions"]["plans"] > 0
    everyone = figures["including_exceptions"]
    assert everyone["over_52_weeks"] > 0 and everyone["within_20_weeks"] > 0 and everyone["over_20_up_to_52_weeks"] > 0
