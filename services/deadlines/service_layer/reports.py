"""Reports from the deadlines service's own records (read only)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.deadlines.adapters.repository import DeadlinesRepository
from services.deadlines.domain.timeliness import ISSUED, PLAN_FINAL, timeliness_of
from shared.timeliness import TimelinessReport


async def timeliness_report(sessions: async_sessionmaker[AsyncSession], year: int,
                            lea: str | None = None) -> TimelinessReport:
    """The DfE 20-week figures for plans issued in ``year``, from the stored deadlines."""
    async with sessions() as session:
        rows = await DeadlinesRepository(session).issued_plan_rows(PLAN_FINAL, sorted(ISSUED))
    return timeliness_of(rows, year, lea)
