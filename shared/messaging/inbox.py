"""Processed-event tracking: the handler's effects and the event id are committed together."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


async def mark_processed(session: AsyncSession, table: Table, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` processed ``event_id``. False if it already had: skip the effects."""
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values(consumer=consumer, event_id=event_id).on_conflict_do_nothing()
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_processed_many(session: AsyncSession, table: Table, consumer: str, event_ids: list[str]) -> set[str]:
    """Record a batch of event ids in one statement; returns the ids that were new."""
    if not event_ids:
        return set()
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    unique = list(dict.fromkeys(event_ids))
    stmt = (insert(table).values([{"consumer": consumer, "event_id": i} for i in unique])
            .on_conflict_do_nothing().returning(table.c.event_id))
    return set((await session.scalars(stmt)).all())
