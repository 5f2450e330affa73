"""Processed-event tracking: the handler's effects and the event id are committed together."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bulk import insert_rows
from shared.db import upsertable_insert


async def mark_processed(session: AsyncSession, table: Table, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` processed ``event_id``. False if it already had: skip the effects."""
    stmt = upsertable_insert(session, table).values(consumer=consumer, event_id=event_id).on_conflict_do_nothing()
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_processed_many(session: AsyncSession, table: Table, consumer: str, event_ids: list[str]) -> set[str]:
    """Record a batch of event ids in one statement; returns the ids that were new."""
    if not event_ids:
        return set()
    rows = [{"consumer": consumer, "event_id": i} for i in dict.fromkeys(event_ids)]
    return set(await insert_rows(session, table, rows, conflict=["consumer", "event_id"], returning="event_id"))
