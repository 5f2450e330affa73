"""Reports from the deadlines service's own records (read only): the DfE 20-week figures, for
``ehc report timeliness`` and the read API's ``/v1/timeliness`` (the dashboards), counted the same
way from the same rows: the ``plan.final`` deadlines met (on time or late), from their report
columns (trigger date, issue date, exception)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.deadlines.adapters.repository import DeadlinesRepository, Restrict
from services.deadlines.domain.timeliness import ISSUED, PLAN_FINAL, timeliness_of
from shared.timeliness import (
    NATIONAL_PERCENT_2025,
    TimelinessReport,
    last_months,
    monthly_counted,
    timeliness_counted,
)


async def timeliness_report(sessions: async_sessionmaker[AsyncSession], year: int,
                            lea: str | None = None, restrict: Restrict | None = None) -> TimelinessReport:
    """The DfE 20-week figures for plans issued in ``year``, from the stored deadlines, with the cases
    behind each figure (within ``restrict``, a scope, if given)."""
    async with sessions() as session:
        rows = await DeadlinesRepository(session).issued_plan_rows(PLAN_FINAL, sorted(ISSUED), restrict)
    return timeliness_of(rows, year, lea)


async def timeliness_figures(sessions: async_sessionmaker[AsyncSession], year: int, today: date,
                             restrict: Restrict | None = None, with_cases: bool = False) -> dict[str, Any]:
    """The report of ``year`` (as ``timeliness_report``), England's 2025 figure beside it, and the figures
    of each of the 12 months up to ``today``. Without the cases, the plans are counted by the database
    (one row per distinct pair of dates) and each group counted once, not read one by one."""
    if with_cases:
        async with sessions() as session:
            rows = await DeadlinesRepository(session).issued_plan_rows(PLAN_FINAL, sorted(ISSUED), restrict)
        report = timeliness_of(rows, year)
        groups = [(r["trigger_date"], r["completed_on"], r["exception"] is not None, 1) for r in rows]
    else:
        async with sessions() as session:
            groups = await DeadlinesRepository(session).issued_plan_counts(PLAN_FINAL, sorted(ISSUED), restrict)
        report = timeliness_counted(groups, year)
    months = monthly_counted(groups, last_months(today))
    return {**report.to_dict(with_cases=with_cases), "national_percent_2025": NATIONAL_PERCENT_2025,
            "months": [{"month": f"{y}-{m:02d}", **f.to_dict()} for y, m, f in months]}
