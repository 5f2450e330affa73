"""APScheduler only ticks (DESIGN §4): the database owns the timers.

Every ``tick_seconds`` the service claims due timers in batches until none is due; the first tick
runs at start-up, so timers that fell due while the service was down fire at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from services.deadlines.service_layer.handlers import DeadlinesService
from shared.logging import get_logger

log = get_logger(__name__)


async def fire_all_due(service: DeadlinesService, after_batch: Callable[[], Awaitable[None]],
                       batch: int = 4000, patience_s: float = 30.0) -> int:
    """Fire due timers in batches (a transaction claims up to ``batch // 4`` deadlines, each with its
    reminders and breach) until none is due. A claim that finds nothing (every due deadline
    locked by another replica, or fired by it since the claim's snapshot) does not end the loop while
    due timers remain: it waits a moment and claims again, giving up only after ``patience_s`` without
    progress (the next tick goes on).

    ``after_batch`` (publishing the outbox) runs while the next batch is claimed and fired, and has
    finished for every batch when this returns."""
    total = 0
    loop = asyncio.get_running_loop()
    give_up = loop.time() + patience_s
    relaying: asyncio.Future[None] | None = None  # the previous batch's after_batch
    try:
        while True:
            n = await service.fire_due_timers(batch)
            if n:
                total += n
                if relaying is not None:
                    await relaying
                relaying = asyncio.ensure_future(after_batch())
                give_up = loop.time() + patience_s
                continue
            if not await service.has_due_timers() or loop.time() > give_up:
                break
            await asyncio.sleep(0.05)  # rows another replica holds: it fires them, or we do once it lets go
    finally:
        if relaying is not None:
            await relaying
    if total:
        log.info("deadlines.timers_fired", count=total)
    return total


def build_scheduler(service: DeadlinesService, tick_seconds: float,
                    after_batch: Callable[[], Awaitable[None]]) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="Europe/London")

    async def tick() -> None:
        try:
            await fire_all_due(service, after_batch)
        except Exception as exc:  # a database hiccup: the next tick tries again, nothing is lost
            log.warning("deadlines.tick_failed", error=type(exc).__name__)

    scheduler.add_job(tick, "interval", seconds=tick_seconds, id="timers-tick", max_instances=1, coalesce=True,
                      next_run_time=datetime.now(UTC))
    return scheduler
