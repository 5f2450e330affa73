"""Replacing a deadline's unfired timers reads that deadline's timers, not every unfired timer.

Found by the latency bench: the DELETE of a batch's unfired timers took 40-70 ms on a table of a
few tens of thousands of timers, because with statistics taken while the table was small (a council's
first load, before autovacuum first analyses it) PostgreSQL combined the deadline-id index with
``ix_timers_due`` (fire_at, unfired only) and so read every unfired timer for each batch. A batch of
new cases (the usual case at a steady rate) waited for it though new deadlines have no timers.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event

from services.deadlines.adapters import tables
from services.deadlines.adapters.repository import DeadlinesRepository
from services.deadlines.bootstrap import bootstrap
from services.deadlines.service_layer.timers import TimerSpec
from shared.local_infra import postgres as pg_infra
from shared.settings import Settings

pytestmark = pytest.mark.infra
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in _nodes(child))]


async def test_replacing_timers_reads_only_those_deadlines_timers_on_stale_statistics(isolated: Settings) -> None:
    service = bootstrap(isolated)
    await service.start(consume=False, schedule=False)
    schema = isolated.schema_for("deadlines")
    try:
        def timers(ids: range) -> list[tuple[str, str, TimerSpec]]:
            return [(f"c{i}:rule:1", f"c{i}", TimerSpec("reminder", k, date(2027, 1, 8), NOW + timedelta(days=k)))
                    for i in ids for k in range(1, 5)]

        async with service.sessions() as session, session.begin():
            await DeadlinesRepository(session).add_timers(timers(range(10)))
        conn = await asyncpg.connect(pg_infra.dsn())
        try:
            # a council's first load: thousands of unfired timers, the table not yet analysed
            rows = [(f"c{i}:rule:1", f"c{i}", "reminder", k, date(2027, 1, 8), NOW + timedelta(days=k), None)
                    for i in range(10, 5010) for k in range(1, 5)]
            await conn.copy_records_to_table("timers", schema_name=schema, records=rows, columns=[
                "deadline_id", "case_id", "kind", "offset_days", "due_on", "fire_at", "fired_at"])

            seen: list[tuple[str, Any]] = []

            def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
                if statement.lstrip().upper().startswith("DELETE"):
                    seen.append((statement, parameters))

            event.listen(service.engine.sync_engine, "before_cursor_execute", capture)
            try:
                async with service.sessions() as session, session.begin():
                    await DeadlinesRepository(session).replace_timers(["c3:rule:1", "c4:rule:1"],
                                                                      timers(range(3, 5))[:2])
            finally:
                event.remove(service.engine.sync_engine, "before_cursor_execute", capture)
            assert len(seen) == 1, seen
            statement, parameters = seen[0]
            explained = conn.transaction()  # EXPLAIN ANALYZE runs the DELETE: rolled back
            await explained.start()
            try:
                plan = json.loads(await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}",
                                                      *parameters))[0]["Plan"]
            finally:
                await explained.rollback()
        finally:
            await conn.close()
        read = {(n["Node Type"], n.get("Index Name")): n["Actual Rows"] for n in _nodes(plan)}
        # the two deadlines have 8 timers (all unfired before the replace: the statement ran already,
        # so the rerun finds their 2 new ones); no step reads the 20,000 unfired timers of others
        assert max(read.values()) <= 20, read
        assert all(index != "ix_timers_due" for _, index in read), read
        async with service.sessions() as session:
            left = sorted((r.deadline_id, r.offset_days) for r in await session.execute(
                tables.timers.select().where(tables.timers.c.deadline_id.in_(["c3:rule:1", "c4:rule:1"]))))
        assert left == [("c3:rule:1", 1), ("c3:rule:1", 2)]
    finally:
        await service.stop()
