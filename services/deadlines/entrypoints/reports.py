"""Reports that read the deadlines service's database, for the command line (``ehc report``).

The CLI composition root hands :func:`live_timeliness` to ``ehc report timeliness`` as its live
source, so intake's report command reads the deadlines data without importing this service.
"""

from __future__ import annotations

import asyncio

from services.deadlines.service_layer.reports import timeliness_report
from shared.db import create_engine_for, session_factory
from shared.settings import Settings
from shared.timeliness import TimelinessReport

SERVICE = "deadlines"


async def _live(settings: Settings, year: int) -> TimelinessReport:
    engine = create_engine_for(settings, SERVICE)
    try:
        return await timeliness_report(session_factory(engine), year)
    finally:
        await engine.dispose()


def live_timeliness(year: int, settings: Settings | None = None) -> TimelinessReport:
    """The 20-week figures from the deadlines service's stored deadlines (its database)."""
    return asyncio.run(_live(settings or Settings(), year))
