"""APScheduler only triggers (DESIGN §4): at the digest time (08:00 Europe/London), Monday to
Friday, the morning job plans the daily digests and, on the first working day of a week, the weekly
summaries. Bank holidays are the calendar's business; the work is idempotent (keyed by digest
kind, date and recipient), so an extra trigger or a second replica plans nothing twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from services.notifier.domain.digests import LONDON, parse_hhmm
from shared.logging import get_logger, scrub

log = get_logger(__name__)


def morning_trigger(digest_time: str) -> CronTrigger:
    at = parse_hhmm(digest_time)
    return CronTrigger(day_of_week="mon-fri", hour=at.hour, minute=at.minute, timezone=LONDON)


def build_scheduler(morning: Callable[[], Awaitable[int]], digest_time: str) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=LONDON)

    async def run() -> None:
        try:
            await morning()
        except Exception as exc:  # the next start-up catch-up or trigger tries again; nothing is lost
            log.error("notifier.morning_job_failed", error=type(exc).__name__, detail=scrub(str(exc))[:200])

    scheduler.add_job(run, morning_trigger(digest_time), id="morning-digests", max_instances=1, coalesce=True,
                      misfire_grace_time=3600)
    return scheduler


__all__ = ["build_scheduler", "morning_trigger"]
