"""A pooled PostgreSQL connection is tested before use only when it has sat idle (shared.db).

SQLAlchemy's ``pool_pre_ping`` tests every checkout, and on asyncpg a test is three round trips
(BEGIN, ";", ROLLBACK): several per consumed batch, each a socket write and a wait for the server,
in the deadlines service's latency. A connection given back a moment ago is known to be alive; one
that sat idle (a database restarted meanwhile, a firewall that dropped it) is still tested, and a
dead one replaced before anyone uses it."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from shared import db
from shared.db import create_engine_for
from shared.settings import Settings

pytestmark = pytest.mark.infra


async def statements_sent(engine) -> list[str]:  # type: ignore[no-untyped-def]
    """Every statement sent from now on over the pool's one connection, as asyncpg sends it."""
    sent: list[str] = []
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        raw.add_query_logger(lambda record: sent.append(record.query.strip()))
    sent.clear()
    return sent


async def test_a_connection_used_a_moment_ago_is_not_pinged_again(isolated: Settings) -> None:
    engine = create_engine_for(isolated, "deadlines", pool_size=1, max_overflow=0)
    try:
        sent = await statements_sent(engine)
        for _ in range(5):
            async with engine.begin() as conn:
                assert await conn.scalar(text("SELECT 1")) == 1
        # each transaction's own BEGIN and COMMIT (the SELECT goes as a prepared statement), and no
        # test of the connection (";" between a BEGIN and a ROLLBACK)
        assert sent == ["BEGIN;", "COMMIT;"] * 5
    finally:
        await engine.dispose()


async def test_an_idle_connection_is_tested_and_a_dead_one_replaced(isolated: Settings,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "IDLE_BEFORE_PING_S", 0.2)
    engine = create_engine_for(isolated, "deadlines", pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            first_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        # The server ends the pooled connection while it is idle (as a restart would).
        admin = await asyncpg.connect(isolated.database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first_pid)
        finally:
            await admin.close()
        await asyncio.sleep(0.3)  # longer than the idle limit set above
        async with engine.begin() as conn:  # tested at checkout, replaced: no error reaches the caller
            assert await conn.scalar(text("SELECT pg_backend_pid()")) != first_pid
    finally:
        await engine.dispose()
