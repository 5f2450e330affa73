"""SQL for the deadlines service: case history, stored deadlines, timers (adapters layer)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.deadlines.adapters import tables
from services.deadlines.service_layer.changes import StoredDeadline
from services.deadlines.service_layer.timers import TimerSpec
from shared.db import upsertable_insert


class DeadlinesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._pg = session.bind.dialect.name == "postgresql"

    def _insert(self, table: Any) -> Any:
        return upsertable_insert(self.session, table)

    # --- case history ------------------------------------------------------------------------
    async def add_events(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(self._insert(tables.case_events).on_conflict_do_nothing(), rows)

    async def case_events(self, case_ids: Sequence[str]) -> dict[str, list[Any]]:
        rows = (
            await self.session.execute(select(tables.case_events).where(tables.case_events.c.case_id.in_(case_ids)))
        ).all()
        by_case: dict[str, list[Any]] = {c: [] for c in case_ids}
        for row in rows:
            by_case[row.case_id].append(row)
        return by_case

    async def all_case_ids(self) -> list[str]:
        return list((await self.session.scalars(select(tables.case_events.c.case_id).distinct())).all())

    # --- routing -----------------------------------------------------------------------------
    async def routing(self, case_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        rows = await self.session.execute(select(tables.cases.c.case_id, tables.cases.c.team_id,
                                                 tables.cases.c.caseworker_id)
                                          .where(tables.cases.c.case_id.in_(case_ids)))
        return {r.case_id: (r.team_id, r.caseworker_id) for r in rows.all()}

    async def data_quality(self, case_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The stored data-quality warnings of these cases (none when never stored)."""
        c = tables.cases
        rows = await self.session.execute(select(c.c.case_id, c.c.data_quality).where(c.c.case_id.in_(case_ids)))
        return {r.case_id: list(r.data_quality or []) for r in rows.all()}

    async def upsert_cases(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            stmt = self._insert(tables.cases)
            stmt = stmt.on_conflict_do_update(index_elements=["case_id"], set_={
                c: getattr(stmt.excluded, c) for c in ("team_id", "caseworker_id", "area_id", "ruleset_version",
                                                       "problem", "data_quality", "updated_at")})
            await self.session.execute(stmt, rows)

    # --- deadlines ---------------------------------------------------------------------------
    async def stored_deadlines(self, case_ids: Sequence[str],
                               lock: bool = True) -> dict[str, dict[str, StoredDeadline]]:
        d = tables.deadlines
        q = select(d.c.deadline_id, d.c.case_id, d.c.due_on, d.c.status, d.c.rule_id,
                   d.c.explanation["ruleset_version"].as_string().label("ruleset_version")
                   ).where(d.c.case_id.in_(case_ids))
        if lock and self._pg:
            q = q.with_for_update()
        result: dict[str, dict[str, StoredDeadline]] = {c: {} for c in case_ids}
        for row in (await self.session.execute(q)).all():
            result[row.case_id][row.deadline_id] = StoredDeadline(row.deadline_id, row.due_on, row.status,
                                                                  row.ruleset_version, row.rule_id)
        return result

    async def issued_plan_rows(self, rule_id: str, statuses: Sequence[str]) -> list[dict[str, Any]]:
        """The stored deadlines of one rule in these statuses, as plain values (for reports)."""
        d = tables.deadlines
        e = d.c.explanation
        q = select(d.c.case_id, d.c.rule_id, d.c.status, e["trigger_date"].as_string().label("trigger_date"),
                   e["completed_on"].as_string().label("completed_on"),
                   e["exception"].as_string().label("exception")
                   ).where(and_(d.c.rule_id == rule_id, d.c.status.in_(list(statuses))))
        return [dict(r._mapping) for r in (await self.session.execute(q)).all()]

    async def known_event_ids(self, consumer: str, event_ids: Sequence[str]) -> set[str]:
        """Which of these events the service has processed already (read only: a dry run)."""
        t = tables.processed_events
        q = select(t.c.event_id).where(and_(t.c.consumer == consumer, t.c.event_id.in_(list(event_ids))))
        return set((await self.session.scalars(q)).all())

    async def upsert_deadlines(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        stmt = self._insert(tables.deadlines)
        stmt = stmt.on_conflict_do_update(
            index_elements=["deadline_id"],
            set_={c: getattr(stmt.excluded, c) for c in ("due_on", "status", "responsible", "kind", "team_id",
                                                         "caseworker_id", "explanation", "rule_id", "updated_at")},
        )
        await self.session.execute(stmt, rows)

    async def set_status(self, updates: list[dict[str, Any]]) -> None:
        if updates:
            await self.session.execute(
                update(tables.deadlines)
                .where(tables.deadlines.c.deadline_id == bindparam("b_id"))
                .values(status=bindparam("b_status")),
                updates,
            )

    async def set_routing(self, case_id: str, team_id: str | None, caseworker_id: str | None) -> None:
        await self.session.execute(
            update(tables.deadlines).where(tables.deadlines.c.case_id == case_id)
            .values(team_id=team_id, caseworker_id=caseworker_id)
        )

    async def deadlines_by_id(self, ids: Iterable[str], skip_locked: bool = False) -> dict[str, Any]:
        q = select(tables.deadlines).where(tables.deadlines.c.deadline_id.in_(list(ids)))
        if skip_locked and self._pg:
            q = q.with_for_update(skip_locked=True)
        return {row.deadline_id: row for row in (await self.session.execute(q)).all()}

    # --- timers ------------------------------------------------------------------------------
    async def replace_timers(self, deadline_ids: list[str], new: list[tuple[str, str, TimerSpec]]) -> None:
        """Drop the unfired timers of these deadlines and insert their new plan."""
        if deadline_ids:
            await self.session.execute(
                delete(tables.timers).where(and_(tables.timers.c.deadline_id.in_(deadline_ids),
                                                 tables.timers.c.fired_at.is_(None)))
            )
        await self.add_timers(new)

    async def add_timers(self, new: list[tuple[str, str, TimerSpec]]) -> None:
        if new:
            await self.session.execute(
                self._insert(tables.timers).on_conflict_do_nothing(),
                [{"deadline_id": d, "case_id": c, "kind": t.kind, "offset_days": t.offset_days, "due_on": t.due_on,
                  "fire_at": t.fire_at} for d, c, t in new],
            )

    async def claim_due_deadlines(self, now: datetime, limit: int) -> dict[str, Any]:
        """Lock (SKIP LOCKED) up to ``limit`` deadlines that have due timers, earliest first. One
        replica then handles all of a deadline's due timers, in order; another replica skips it."""
        t = tables.timers
        due = (select(t.c.deadline_id).where(and_(t.c.fired_at.is_(None), t.c.fire_at <= now))
               .group_by(t.c.deadline_id).order_by(func.min(t.c.fire_at)).limit(limit * 2))
        q = select(tables.deadlines).where(tables.deadlines.c.deadline_id.in_(due.scalar_subquery()))
        if self._pg:
            q = q.with_for_update(skip_locked=True)
        rows = (await self.session.execute(q.limit(limit))).all()
        return {row.deadline_id: row for row in rows}

    async def due_timers(self, deadline_ids: Iterable[str], now: datetime) -> list[Any]:
        t = tables.timers
        q = (select(t).where(and_(t.c.deadline_id.in_(list(deadline_ids)), t.c.fired_at.is_(None), t.c.fire_at <= now))
             .order_by(t.c.deadline_id, t.c.fire_at, t.c.id))
        return list((await self.session.execute(q)).all())

    async def has_due_timers(self, now: datetime) -> bool:
        t = tables.timers
        q = select(t.c.id).where(and_(t.c.fired_at.is_(None), t.c.fire_at <= now)).limit(1)
        return (await self.session.scalar(q)) is not None

    async def orphan_timers(self, now: datetime, limit: int) -> list[int]:
        """Due timers whose deadline row does not exist (never expected; kept from piling up)."""
        t, d = tables.timers, tables.deadlines
        q = (select(t.c.id).outerjoin(d, d.c.deadline_id == t.c.deadline_id)
             .where(and_(t.c.fired_at.is_(None), t.c.fire_at <= now, d.c.deadline_id.is_(None))).limit(limit))
        return list((await self.session.scalars(q)).all())

    async def mark_fired(self, timer_ids: list[int], now: datetime) -> None:
        if timer_ids:
            await self.session.execute(
                update(tables.timers).where(tables.timers.c.id.in_(timer_ids)).values(fired_at=now)
            )

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(tables.deadlines.c.status, func.count()).group_by(tables.deadlines.c.status)
        )
        return {status: n for status, n in rows.all()}

    # --- a rebuild's pages (read in bounded pages, whatever the number of cases) -----------------
    async def case_ids_after(self, after: str | None, limit: int) -> list[str]:
        """The next ``limit`` case ids with a history, in order, after ``after`` (keyset paging)."""
        c = tables.case_events.c
        q = select(c.case_id).distinct().order_by(c.case_id).limit(limit)
        if after is not None:
            q = q.where(c.case_id > after)
        return list((await self.session.scalars(q)).all())

    async def count_cases(self) -> int:
        return int(await self.session.scalar(select(func.count(tables.case_events.c.case_id.distinct()))) or 0)

    async def latest_received_at(self) -> datetime | None:
        """When the latest stored event was received (the database's clock)."""
        return await self.session.scalar(select(func.max(tables.case_events.c.received_at)))  # type: ignore[no-any-return]

    async def cases_received_since(self, case_ids: Sequence[str], since: datetime | None) -> set[str]:
        """Those of these cases with an event received after ``since`` (every case with events if None)."""
        c = tables.case_events.c
        q = select(c.case_id).distinct().where(c.case_id.in_(list(case_ids)))
        if since is not None:
            q = q.where(c.received_at > since)
        return set((await self.session.scalars(q)).all())


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
