"""Data to check (issue 11 item 5): each case's data-quality warnings, kept from the
``case.data_quality`` events of ``ehc.deadline-events``, and read back per caseworker for the
"Data to check" section of their daily digest. Nothing is sent when an event arrives.

Each event carries the case's whole current set, so the newest event of a case wins (an older one
arriving late changes nothing); a redelivered event is recognised by its id."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.adapters import tables
from services.notifier.domain.digests import data_to_check_items
from services.notifier.service_layer.notifications import insert_stmt
from shared.contracts import CaseDataQualityEvent
from shared.messaging.inbox import mark_processed_many


async def store_data_quality(sessions: async_sessionmaker[AsyncSession], consumer: str,
                             events: Sequence[CaseDataQualityEvent], now: datetime) -> int:
    """Store the newest warnings of each case; returns how many cases were written."""
    if not events:
        return 0
    async with sessions() as session, session.begin():
        fresh = await mark_processed_many(session, tables.processed_events, consumer, [e.id for e in events])
        newest: dict[str, CaseDataQualityEvent] = {}
        for event in events:
            seen = newest.get(event.data.case_id)
            if event.id in fresh and (seen is None or seen.time <= event.time):
                newest[event.data.case_id] = event
        if not newest:
            return 0
        values = [{"case_id": e.data.case_id, "warnings": [w.model_dump(mode="json") for w in e.data.warnings],
                   "warning_count": len(e.data.warnings), "caseworker_id": e.data.caseworker_id,
                   "team_id": e.data.team_id, "area_id": e.data.area_id,
                   "event_time": e.time.astimezone(UTC), "updated_at": now} for e in newest.values()]
        q = tables.case_data_quality
        stmt = insert_stmt(session, q)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["case_id"], set_={k: stmt.excluded[k] for k in values[0] if k != "case_id"},
            where=q.c.event_time <= stmt.excluded.event_time), values)
        return len(values)


async def data_to_check_by_caseworker(session: AsyncSession, url_base: str) -> dict[str, list[dict[str, Any]]]:
    """The cases with warnings, by caseworker: the latest ehc.case.assigned, else the event's."""
    q, r = tables.case_data_quality, tables.case_routing
    caseworker = func.coalesce(r.c.caseworker_id, q.c.caseworker_id).label("caseworker")
    rows = (await session.execute(select(q.c.case_id, q.c.warnings, caseworker)
                                  .outerjoin(r, r.c.case_id == q.c.case_id)
                                  .where(q.c.warning_count > 0))).all()
    by_caseworker: dict[str, list[tuple[str, list[dict[str, Any]]]]] = defaultdict(list)
    for row in rows:
        if row.caseworker is not None:
            by_caseworker[row.caseworker].append((row.case_id, row.warnings))
    return {cw: data_to_check_items(cases, url_base) for cw, cases in by_caseworker.items()}


__all__ = ["data_to_check_by_caseworker", "store_data_quality"]
