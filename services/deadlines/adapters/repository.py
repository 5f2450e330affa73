"""SQL for the deadlines service: case history, stored deadlines, timers (adapters layer)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, any_, bindparam, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.deadlines.adapters import tables
from services.deadlines.service_layer.changes import StoredDeadline
from services.deadlines.service_layer.timers import TimerSpec
from shared.bulk import connection, fetch, insert_rows, insert_sql, qualified_name
from shared.db import upsertable_insert
from shared.messaging.inbox import mark_processed_many

Restrict = Callable[[Select[Any]], Select[Any]]  # a query of the deadlines table limited to a scope
Routing = dict[str, tuple[str | None, str | None]]
Quality = dict[str, list[dict[str, Any]]]
TIMER_IDENTITY = ("deadline_id", "kind", "offset_days", "due_on", "fire_at")  # uq_timer


class HistoryRow(NamedTuple):
    """A stored case event, as :meth:`DeadlinesRepository.case_events` gives it (its columns by name)."""

    event_id: str
    case_id: str
    source: str
    type: str
    occurred_on: date
    recorded_at: datetime
    supersedes: str | None
    data: dict[str, Any]


class CaseState(NamedTuple):
    """What a recomputation reads of its cases: histories, stored deadlines (locked), routing and
    data-quality warnings."""

    histories: dict[str, list[Any]]
    stored: dict[str, dict[str, StoredDeadline]]
    routing: Routing
    quality: Quality


class DeadlinesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._pg = session.bind.dialect.name == "postgresql"

    def _insert(self, table: Any) -> Any:
        return upsertable_insert(self.session, table)

    def _among(self, column: Any, values: Iterable[Any]) -> Any:
        """``column IN values``; on PostgreSQL ``= ANY(array)``: one parameter however many values, so
        a batch of a thousand ids is neither rendered nor parsed as a thousand placeholders."""
        if self._pg:
            return column == any_(literal(list(values), ARRAY(column.type)))
        return column.in_(list(values))

    # --- case history ------------------------------------------------------------------------
    async def add_events(self, rows: list[dict[str, Any]]) -> None:
        await insert_rows(self.session, tables.case_events, rows, conflict=["event_id"])

    async def case_events(self, case_ids: Sequence[str]) -> dict[str, list[Any]]:
        rows = (
            await self.session.execute(select(tables.case_events).where(tables.case_events.c.case_id.in_(case_ids)))
        ).all()
        by_case: dict[str, list[Any]] = {c: [] for c in case_ids}
        for row in rows:
            by_case[row.case_id].append(row)
        return by_case

    async def store_new_events(self, consumer: str, rows: list[dict[str, Any]]) -> set[str]:
        """Mark these events processed by ``consumer`` and add the new ones to their cases' histories,
        in one statement on PostgreSQL; returns the ids that were new. ``rows``: one per event id."""
        if not rows:
            return set()
        if not self._pg:
            new = await mark_processed_many(self.session, tables.processed_events, consumer,
                                            [r["event_id"] for r in rows])
            await self.add_events([r for r in rows if r["event_id"] in new])
            return new
        conn = await connection(self.session)
        mark, args = insert_sql(conn, tables.processed_events, [{"consumer": consumer, "event_id": r["event_id"]}
                                                                for r in rows],
                                conflict=["consumer", "event_id"], returning="event_id")
        add, more = insert_sql(conn, tables.case_events, rows, conflict=["event_id"], first=len(args) + 1,
                               where=' WHERE u."event_id" IN (SELECT event_id FROM new)')
        records = await fetch(self.session, f"WITH new AS ({mark}), added AS ({add}) SELECT event_id FROM new",
                              [*args, *more])
        return {r[0] for r in records}

    async def case_state(self, case_ids: Sequence[str]) -> CaseState:
        """The cases' histories, stored deadlines (locked FOR UPDATE on PostgreSQL), routing and
        warnings: on PostgreSQL in one statement (one round trip, not three)."""
        if not self._pg:
            return CaseState(await self.case_events(case_ids), await self.stored_deadlines(case_ids),
                             *await self.routing_and_quality(case_ids))
        conn = await connection(self.session)
        d, c, e = (qualified_name(conn, t) for t in (tables.deadlines, tables.cases, tables.case_events))
        sql = (f"WITH locked AS (SELECT deadline_id, case_id, due_on, status, rule_id, "
               f"explanation->>'ruleset_version' AS version FROM {d} WHERE case_id = ANY($1::text[]) FOR UPDATE) "
               f"SELECT 0 AS kind, case_id, deadline_id AS a, status AS b, rule_id AS c, version AS d, "
               f"due_on AS day, NULL::timestamptz AS at, NULL::text AS doc FROM locked "
               f"UNION ALL SELECT 1, case_id, team_id, caseworker_id, NULL, NULL, NULL, NULL, data_quality::text "
               f"FROM {c} WHERE case_id = ANY($1::text[]) "
               f"UNION ALL SELECT 2, case_id, event_id, source, type, supersedes, occurred_on, recorded_at, data::text "
               f"FROM {e} WHERE case_id = ANY($1::text[])")
        state = CaseState({i: [] for i in case_ids}, {i: {} for i in case_ids}, {}, {})
        loads = json.loads
        for kind, case_id, a, b, c_, d_, day, at, doc in await fetch(self.session, sql, [list(case_ids)]):
            if kind == 2:
                state.histories[case_id].append(HistoryRow(a, case_id, b, c_, day, at, d_, loads(doc)))
            elif kind == 0:
                state.stored[case_id][a] = StoredDeadline(a, day, b, d_, c_)
            else:
                state.routing[case_id] = (a, b)
                state.quality[case_id] = list((loads(doc) if doc is not None else None) or [])
        return state

    async def write_recomputed(self, cases: list[dict[str, Any]], deadlines: list[dict[str, Any]],
                               cancelled: list[str], retimed: list[str],
                               timers: list[tuple[str, str, TimerSpec]]) -> None:
        """A recomputation's writes: upsert the cases and their deadlines (see upsert_cases and
        upsert_deadlines), cancel the vanished deadlines, drop the unfired timers of the retimed
        ones (stored deadlines that moved or vanished) and insert the new plans' timers; on
        PostgreSQL the first three in one statement of data-modifying WITHs, each touching rows no
        other touches (one statement sees one snapshot)."""
        if not self._pg:
            await self.upsert_cases(cases)
            await self.set_status([{"b_id": i, "b_status": "cancelled"} for i in cancelled])
            await self.upsert_deadlines(deadlines)
            await self.replace_timers(retimed, timers)
            return
        conn = await connection(self.session)
        parts: list[str] = []
        args: list[Any] = []

        def part(name: str, sql: str, more: list[Any]) -> None:
            parts.append(f"{name} AS ({sql})")
            args.extend(more)

        if cases:
            part("c", *insert_sql(conn, tables.cases, cases, conflict=["case_id"], first=len(args) + 1,
                                  update=[k for k in cases[0] if k != "case_id"]))
        if deadlines:
            update = [k for k in deadlines[0] if k not in ("deadline_id", "case_id")]
            part("d", *insert_sql(conn, tables.deadlines, deadlines, conflict=["deadline_id"], update=update,
                                  unless_same=[k for k in update if k != "updated_at"], first=len(args) + 1))
        d = qualified_name(conn, tables.deadlines)
        if cancelled:  # vanished deadlines: never among the upserted ones
            part("s", f"UPDATE {d} SET status = 'cancelled' WHERE deadline_id = ANY(${len(args) + 1}::text[])",
                 [cancelled])
        if parts:
            await fetch(self.session, "WITH " + ", ".join(parts) + " SELECT 1", args)
        # The timers by their own statements, as before: in one statement a timer planned again would
        # be deleted and inserted at once (its parts see one snapshot); and with an array of ids the
        # planner, on fresh statistics, scanned every unfired timer (ix_timers_due) for each batch.
        await self.replace_timers(retimed, timers)

    async def all_case_ids(self) -> list[str]:
        return list((await self.session.scalars(select(tables.case_events.c.case_id).distinct())).all())

    # --- routing -----------------------------------------------------------------------------
    async def routing(self, case_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        rows = await self.session.execute(select(tables.cases.c.case_id, tables.cases.c.team_id,
                                                 tables.cases.c.caseworker_id)
                                          .where(tables.cases.c.case_id.in_(case_ids)))
        return {r.case_id: (r.team_id, r.caseworker_id) for r in rows.all()}

    async def routing_and_quality(self, case_ids: Sequence[str]
                                  ) -> tuple[dict[str, tuple[str | None, str | None]], dict[str, list[dict[str, Any]]]]:
        """The stored routing (team, caseworker) of these cases and their data-quality warnings (none
        when never stored), in one query."""
        c = tables.cases
        rows = (await self.session.execute(select(c.c.case_id, c.c.team_id, c.c.caseworker_id, c.c.data_quality)
                                           .where(c.c.case_id.in_(case_ids)))).all()
        return ({r.case_id: (r.team_id, r.caseworker_id) for r in rows},
                {r.case_id: list(r.data_quality or []) for r in rows})

    async def upsert_cases(self, rows: list[dict[str, Any]]) -> None:
        """Insert or update cases; every column given besides case_id is set."""
        if rows:
            await insert_rows(self.session, tables.cases, rows, conflict=["case_id"],
                              update=[c for c in rows[0] if c != "case_id"])

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

    async def issued_plan_rows(self, rule_id: str, statuses: Sequence[str],
                               restrict: Restrict | None = None) -> list[dict[str, Any]]:
        """The stored deadlines of one rule in these statuses, as plain values (for reports), within
        ``restrict`` (a scope: a team, a caseworker) if given. Read from the deadlines' report columns."""
        d = tables.deadlines
        q = select(d.c.case_id, d.c.rule_id, d.c.status, d.c.trigger_date, d.c.completed_on, d.c.exception
                   ).where(and_(d.c.rule_id == rule_id, d.c.status.in_(list(statuses))))
        return [dict(r._mapping) for r in (await self.session.execute(restrict(q) if restrict else q)).all()]

    async def known_event_ids(self, consumer: str, event_ids: Sequence[str]) -> set[str]:
        """Which of these events the service has processed already (read only: a dry run)."""
        t = tables.processed_events
        q = select(t.c.event_id).where(and_(t.c.consumer == consumer, t.c.event_id.in_(list(event_ids))))
        return set((await self.session.scalars(q)).all())

    async def upsert_deadlines(self, rows: list[dict[str, Any]]) -> None:
        """Insert or update deadlines; every column given (a column added to the rows flows through)
        is set, besides the deadline's identity (deadline_id, case_id). A stored row equal in all
        but updated_at is not written again: updated_at is when the deadline last changed."""
        if rows:
            update = [c for c in rows[0] if c not in ("deadline_id", "case_id")]
            await insert_rows(self.session, tables.deadlines, rows, conflict=["deadline_id"], update=update,
                              unless_same=[c for c in update if c != "updated_at"])

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
        await insert_rows(self.session, tables.timers, _timer_rows(new), conflict=list(TIMER_IDENTITY))

    @staticmethod
    def _due_window(now: datetime, size: int) -> Any:
        """The ``size`` earliest due timers (a range scan of the partial index ix_timers_due)."""
        t = tables.timers
        return (select(t.c.id, t.c.deadline_id, t.c.fire_at).where(and_(t.c.fired_at.is_(None), t.c.fire_at <= now))
                .order_by(t.c.fire_at).limit(size).subquery())

    async def claim_due_deadlines(self, now: datetime, limit: int) -> dict[str, Any]:
        """Lock (SKIP LOCKED) up to ``limit`` deadlines that have due timers, earliest first. One
        replica then handles all of a deadline's due timers, in order; another replica skips it.

        Only the earliest ``4 * limit`` due timers are looked at (a range scan of the partial index
        ix_timers_due, not an aggregate over every due timer, which made each claim cost as much
        as the whole backlog); a deadline's first timer in that window is its earliest."""
        d = tables.deadlines
        window = self._due_window(now, limit * 4)
        first = func.min(window.c.fire_at)
        due = (select(window.c.deadline_id, first.label("first")).group_by(window.c.deadline_id)
               .order_by(first).subquery())
        q = select(d).join(due, due.c.deadline_id == d.c.deadline_id).order_by(due.c.first).limit(limit)
        if self._pg:
            q = q.with_for_update(skip_locked=True, of=d)
        rows = (await self.session.execute(q)).all()
        return {row.deadline_id: row for row in rows}

    async def due_timers(self, deadline_ids: Iterable[str], now: datetime) -> list[Any]:
        t = tables.timers
        q = (select(t)
             .where(and_(self._among(t.c.deadline_id, deadline_ids), t.c.fired_at.is_(None), t.c.fire_at <= now))
             .order_by(t.c.deadline_id, t.c.fire_at, t.c.id))
        return list((await self.session.execute(q)).all())

    async def has_due_timers(self, now: datetime) -> bool:
        # ordered by fire_at, so PostgreSQL reads ix_timers_due: with LIMIT alone it chose a sequential
        # scan of every timer, which is the whole table when none is due (every tick's last question)
        t = tables.timers
        q = select(t.c.id).where(and_(t.c.fired_at.is_(None), t.c.fire_at <= now)).order_by(t.c.fire_at).limit(1)
        return (await self.session.scalar(q)) is not None

    async def orphan_timers(self, now: datetime, limit: int) -> list[int]:
        """Due timers whose deadline row does not exist (never expected; kept from piling up), among
        the earliest ``4 * limit`` due: those a claim looks at (not every due timer, each time a
        claim finds nothing while another replica holds the rest)."""
        d = tables.deadlines
        window = self._due_window(now, limit * 4)
        q = (select(window.c.id).outerjoin(d, d.c.deadline_id == window.c.deadline_id)
             .where(d.c.deadline_id.is_(None)).limit(limit))
        return list((await self.session.scalars(q)).all())

    async def mark_fired(self, timer_ids: list[int], now: datetime) -> None:
        if timer_ids:
            await self.session.execute(
                update(tables.timers).where(self._among(tables.timers.c.id, timer_ids)).values(fired_at=now)
            )

    async def set_timer_statuses(self, deadline_ids_by_status: dict[str, list[str]]) -> None:
        """The statuses fired timers give (breached, due_soon): one statement per status."""
        d = tables.deadlines
        for status, ids in deadline_ids_by_status.items():
            if ids:
                await self.session.execute(update(d).where(self._among(d.c.deadline_id, ids)).values(status=status))

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(tables.deadlines.c.status, func.count()).group_by(tables.deadlines.c.status)
        )
        return {status: n for status, n in rows.all()}

    async def issued_plan_counts(self, rule_id: str, statuses: Sequence[str],
                                 restrict: Restrict | None = None) -> list[tuple[date | None, date | None, bool, int]]:
        """(trigger date, completion date, under an exception, how many) of the stored deadlines of one
        rule in these statuses, within ``restrict`` if given: the figures of ``issued_plan_rows``
        without the cases behind them, counted by the database (one row per distinct date pair)."""
        d = tables.deadlines
        excepted = d.c.exception.is_not(None)
        q = (select(d.c.trigger_date, d.c.completed_on, excepted, func.count())
             .where(and_(d.c.rule_id == rule_id, d.c.status.in_(list(statuses))))
             .group_by(d.c.trigger_date, d.c.completed_on, excepted))
        rows = (await self.session.execute(restrict(q) if restrict else q)).all()
        return [(t, c, bool(x), int(n)) for t, c, x, n in rows]

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


def _timer_rows(timers: list[tuple[str, str, TimerSpec]]) -> list[dict[str, Any]]:
    return [{"deadline_id": d, "case_id": c, "kind": t.kind, "offset_days": t.offset_days, "due_on": t.due_on,
             "fire_at": t.fire_at} for d, c, t in timers]


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
