"""shared.bulk: a batch's writes through statements compiled once (asyncpg unnest / COPY on
PostgreSQL, SQLAlchemy on SQLite) store exactly what SQLAlchemy's own multi-row INSERT stores,
inside the session's transaction, and fail as SQLAlchemy fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Date, Integer, LargeBinary, MetaData, String, Table, cast, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bulk import copy_rows, insert_rows
from shared.db import UtcDateTime, create_engine_for, session_factory
from shared.settings import Settings

pytestmark = pytest.mark.infra
SERVICE = "deadlines"
metadata = MetaData()


def _table(name: str) -> Table:
    return Table(name, metadata, Column("id", String(20), primary_key=True), Column("n", Integer, nullable=False),
                 Column("on", Date, nullable=True), Column("at", UtcDateTime(), nullable=True),
                 Column("doc", JSON, nullable=True), Column("blob", LargeBinary, nullable=True), schema=SERVICE)


fast, reference = _table("bulk_fast"), _table("bulk_reference")
AT = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)


def rows(n: int, bump: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "n": i + bump, "on": date(2026, 1, 1 + i % 28) if i % 3 else None,
             "at": AT if i % 2 else None, "doc": [{"k": i, "s": "é"}, None] if i % 4 else None,
             "blob": bytes([i % 256]) * 3 if i % 5 else None} for i in range(n)]


@pytest.fixture(params=["postgresql", "sqlite"])
async def engine(request: pytest.FixtureRequest, isolated: Settings, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    settings = isolated if request.param == "postgresql" else isolated.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'bulk.db'}"})
    eng = create_engine_for(settings, SERVICE)
    async with eng.begin() as conn:
        if request.param == "postgresql":
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{settings.schema_for(SERVICE)}"'))
        await conn.run_sync(metadata.create_all)
    yield eng
    await eng.dispose()


async def _all(eng: AsyncEngine, table: Table) -> list[tuple[Any, ...]]:
    async with session_factory(eng)() as session:
        return [tuple(r) for r in (await session.execute(select(table).order_by(table.c.id))).all()]


async def test_inserts_and_upserts_store_what_sqlalchemy_stores(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        new = await insert_rows(session, fast, rows(30), conflict=["id"], returning="id")
        await session.execute(reference.insert(), rows(30))
    assert sorted(new) == sorted(f"r{i}" for i in range(30))
    async with sessions() as session, session.begin():  # repeats: nothing new, nothing changed
        again = await insert_rows(session, fast, rows(40)[25:], conflict=["id"], returning="id")
        await insert_rows(session, reference, rows(40)[30:], conflict=["id"])
    assert sorted(again) == sorted(f"r{i}" for i in range(30, 40))
    assert await _all(engine, fast) == await _all(engine, reference)
    async with sessions() as session:  # None in a JSON column: stored as SQLAlchemy stores it (JSON null)
        nulls = [await session.scalar(select(t.c.id).where(t.c.doc.is_(None)).order_by(t.c.id).limit(1))
                 for t in (fast, reference)]
        assert nulls[0] == nulls[1]
    async with sessions() as session, session.begin():  # an upsert sets the named columns only
        await insert_rows(session, fast, rows(40, bump=100)[::2], conflict=["id"], update=["n", "doc"])
    after = {r[0]: r for r in await _all(engine, fast)}
    before = {r[0]: r for r in await _all(engine, reference)}
    for i in range(40):
        got, was = after[f"r{i}"], before[f"r{i}"]
        assert got[1] == (i + 100 if i % 2 == 0 else i)
        assert got[2:4] == was[2:4] and got[5] == was[5]
    assert [after[f"r{i}"][4] for i in range(3)] == [None, [{"k": 1, "s": "é"}, None], [{"k": 2, "s": "é"}, None]]


async def test_copy_keeps_the_order_of_the_rows(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await copy_rows(session, fast, rows(12))
        await session.execute(reference.insert(), rows(12))
    assert await _all(engine, fast) == await _all(engine, reference)


@pytest.mark.parametrize("write", ["insert", "copy"])
async def test_the_writes_belong_to_the_sessions_transaction(engine: AsyncEngine, write: str) -> None:
    sessions = session_factory(engine)
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():  # the bulk write is the first statement
            if write == "insert":
                await insert_rows(session, fast, rows(5))
            else:
                await copy_rows(session, fast, rows(5))
            raise RuntimeError("rolled back")
    assert await _all(engine, fast) == []


async def test_a_refused_write_raises_sqlalchemys_error_and_the_session_goes_on(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    bad = rows(3)
    bad[1]["n"] = None
    with pytest.raises(sa_exc.IntegrityError):
        async with sessions() as session, session.begin():
            await insert_rows(session, fast, bad)
    if engine.dialect.name == "postgresql":  # too long for varchar(20): refused, never cut short
        with pytest.raises(sa_exc.DBAPIError):
            async with sessions() as session, session.begin():
                await insert_rows(session, fast, [{**rows(1)[0], "id": "x" * 21}])
    async with sessions() as session, session.begin():
        await insert_rows(session, fast, rows(2))
    assert len(await _all(engine, fast)) == 2


async def test_an_upsert_unless_same_leaves_an_unchanged_row_unwritten(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    later = AT.replace(hour=18)
    async with sessions() as session, session.begin():
        await insert_rows(session, fast, rows(6))
    changed = rows(6)
    changed[2]["doc"] = {"now": "different"}  # a JSON column changed: written
    changed[3]["on"] = date(2027, 5, 5)  # a date changed: written
    for row in changed:
        row["at"] = later  # the "touched" column alone: not a change
    async with sessions() as session, session.begin():
        await insert_rows(session, fast, changed, conflict=["id"], update=["n", "on", "at", "doc"],
                          unless_same=["n", "on", "doc"])
    stored = {r[0]: r for r in await _all(engine, fast)}
    assert {i for i in stored if stored[i][3] == later} == {"r2", "r3"}
    assert stored["r2"][4] == {"now": "different"} and stored["r3"][2] == date(2027, 5, 5)
    assert stored["r0"][3:5] == (None, None) and stored["r1"][3] == AT


@pytest.mark.parametrize("ids", [[""], ["", "b"], ["a\x1fb", "c"], ["\x1e", "d"], ["e\x1e", ""]])
async def test_any_text_is_stored_as_it_is(engine: AsyncEngine, ids: list[str]) -> None:
    """Columns go to PostgreSQL packed in one text each when they can (a separator between values):
    an empty value, a lone value, a value holding a separator or the NULL mark is stored unchanged."""
    sessions = session_factory(engine)
    written = [{**rows(2)[i % 2], "id": value, "n": i} for i, value in enumerate(ids)]
    async with sessions() as session, session.begin():
        await insert_rows(session, fast, written, conflict=["id"])
        await session.execute(reference.insert(), written)
    assert await _all(engine, fast) == await _all(engine, reference)
    assert sorted(r[0] for r in await _all(engine, fast)) == sorted(ids)


async def test_packed_columns_keep_nulls_dates_times_and_json(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    written = [{**r, "doc": {"text": "sep \x1f null \x1e"} if i == 3 else r["doc"]} for i, r in enumerate(rows(9))]
    async with sessions() as session, session.begin():
        await insert_rows(session, fast, written)
        await session.execute(reference.insert(), written)
    assert await _all(engine, fast) == await _all(engine, reference)


async def test_json_is_written_compact_and_a_row_in_another_spacing_but_the_same_values_is_unchanged(
        engine: AsyncEngine) -> None:
    """On PostgreSQL JSON is written by orjson (compact: no spaces after separators), where SQLAlchemy
    writes json.dumps's spacing; an upsert ``unless_same`` compares JSON by value, so a row stored
    earlier in the other spacing with the same values is not written again (its updated-at stays)."""
    sessions = session_factory(engine)
    postgres = engine.dialect.name == "postgresql"
    stored = rows(6)
    async with sessions() as session, session.begin():
        await session.execute(fast.insert(), stored)  # SQLAlchemy: json.dumps, ", " and ": "
    later = AT.replace(hour=18)
    again = [{**r, "at": later} for r in stored]
    again[1]["doc"] = [{"k": 1, "s": "é", "new": True}, None]  # a value changed: written
    async with sessions() as session, session.begin():
        await insert_rows(session, fast, again, conflict=["id"], update=["n", "at", "doc"], unless_same=["n", "doc"])
    written = {r[0]: r for r in await _all(engine, fast)}
    assert {i for i in written if written[i][3] == later} == {"r1"}
    assert written["r1"][4] == [{"k": 1, "s": "é", "new": True}, None]
    async with sessions() as session:
        doc = await session.scalar(select(cast(fast.c.doc, String)).where(fast.c.id == "r1"))
    assert doc == ('[{"k":1,"s":"é","new":true},null]' if postgres else '[{"k": 1, "s": "\\u00e9", "new": true}, null]')
