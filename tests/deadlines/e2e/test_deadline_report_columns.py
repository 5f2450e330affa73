"""The three facts the reports count (trigger date, completion date, exception) are real columns of
``deadlines.deadlines`` (migration deadlines_0006): copied from the stored explanations when the
migration runs, on PostgreSQL and SQLite (a date that cannot be read stays empty, as the reports read
it: unusable), and written with every deadline the service stores."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from services.deadlines.adapters import tables
from services.deadlines.bootstrap import MIGRATIONS
from shared.db import _alembic_config, create_engine_for, migrate
from shared.settings import Settings

pytestmark = pytest.mark.infra
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


def _upgrade_to(sync_conn: sa.Connection, schema: str | None, revision: str) -> None:
    cfg = _alembic_config(MIGRATIONS, schema, "deadlines")
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, revision)


def _row(deadline_id: str, explanation: dict[str, object]) -> dict[str, object]:
    return {"deadline_id": deadline_id, "case_id": deadline_id.split(":")[0], "rule_id": "plan.final",
            "due_on": date(2025, 5, 26), "status": "met", "responsible": "la", "kind": "duty", "team_id": "t",
            "caseworker_id": "c", "explanation": json.dumps(explanation), "updated_at": NOW}


async def check_backfill(settings: Settings) -> None:
    engine = create_engine_for(settings, "deadlines")
    schema = None if settings.database_url.startswith("sqlite") else settings.schema_for("deadlines")
    try:
        async with engine.begin() as conn:
            if schema:
                await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(_upgrade_to, schema, "deadlines_0004")
            before = sa.table("deadlines", *(sa.column(c) for c in _row("x:y", {})), schema=schema)
            await conn.execute(before.insert(), [
                _row("c1:plan.final:1", {"trigger_date": "2025-01-06", "completed_on": "2025-05-19",
                                         "exception": None}),
                _row("c2:plan.final:1", {"trigger_date": "2025-02-03", "completed_on": "2025-09-01",
                                         "exception": "E3"}),
                _row("c3:plan.final:1", {"trigger_date": "not a date", "completed_on": None}),
            ])
        await migrate(engine, "deadlines", MIGRATIONS, schema)
        d = tables.deadlines
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(d.c.case_id, d.c.trigger_date, d.c.completed_on, d.c.exception)
                                       .order_by(d.c.case_id))).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [("c1", date(2025, 1, 6), date(2025, 5, 19), None),
                                        ("c2", date(2025, 2, 3), date(2025, 9, 1), "E3"),
                                        ("c3", None, None, None)]


async def test_migration_fills_the_columns_on_postgresql(isolated: Settings) -> None:
    await check_backfill(isolated)


async def test_migration_fills_the_columns_on_sqlite(tmp_path: Path) -> None:
    await check_backfill(Settings(environment="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/{{service}}.db"))
