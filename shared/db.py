"""Database set-up shared by the services: async engines, one schema per service, migrations.

Tables are declared in the schema named after the service (``intake``, ``deadlines``,
``notifier``); ``schema_translate_map`` maps that name to the real schema on PostgreSQL (with
the test prefix) and to no schema on SQLite (one file per service), so one set of models and
migrations serves both.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, TypeDecorator, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.settings import Settings


def is_sqlite(engine_or_url: AsyncEngine | str) -> bool:
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.url)
    return url.startswith("sqlite")


def create_engine_for(settings: Settings, service: str, **kwargs: Any) -> AsyncEngine:
    url = settings.database_url_for(service)
    schema = None if is_sqlite(url) else settings.schema_for(service)
    if is_sqlite(url):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
    else:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
    engine = create_async_engine(url, **kwargs).execution_options(schema_translate_map={service: schema})
    if is_sqlite(url):
        _sqlite_pragmas(engine)
    else:
        _ping_when_idle(engine)
    return engine


# A pooled connection idle for longer than this is tested before it is handed out.
IDLE_BEFORE_PING_S = 2.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling for connections that sat idle, SQLAlchemy's documented
    checkout-event pattern. ``pool_pre_ping`` tests every checkout, and on asyncpg a test is three
    round trips (BEGIN, ";", ROLLBACK): a consumer checks out a few connections per batch, so that
    was about a quarter of the deadlines service's socket writes at 200 events/s. A connection given
    back a moment ago was alive then; one idle for longer (a restart, a dropped socket) is tested,
    and a dead one is replaced (DisconnectionError: the pool connects afresh) before anyone uses it.
    A failure while a connection is in use is the consumers' to retry, as it always was."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _test_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= IDLE_BEFORE_PING_S:
            return  # just connected, or given back a moment ago
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("a pooled connection did not answer") from exc


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _: Any) -> None:  # WAL: readers don't block the writer
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session, session.begin():
        yield session


def _alembic_config(migrations_dir: Path, schema: str | None, service: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["schema"] = schema
    cfg.attributes["service"] = service
    return cfg


async def migrate(engine: AsyncEngine, service: str, migrations_dir: Path, schema: str | None) -> None:
    """Create the service's schema (PostgreSQL) and bring it to the newest migration.

    Replicas starting together take turns (a transaction-scoped advisory lock per schema): two
    concurrent ``CREATE SCHEMA IF NOT EXISTS`` or migrations would otherwise fail one of them."""
    async with engine.begin() as conn:
        if schema is not None:
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": f"ehc-migrate:{schema}"})
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(_upgrade, migrations_dir, schema, service)


def _upgrade(sync_conn: Any, migrations_dir: Path, schema: str | None, service: str) -> None:
    cfg = _alembic_config(migrations_dir, schema, service)
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


async def drop_schema(conn: AsyncConnection, schema: str) -> None:
    await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp on every database: PostgreSQL keeps the offset (timestamptz);
    SQLite stores text without one, so values are written in UTC and read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        return value.astimezone(UTC) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def upsertable_insert(session_or_conn: Any, table: Any) -> Any:
    """An INSERT that supports ON CONFLICT (DO NOTHING / DO UPDATE) on the session's database."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    bind = session_or_conn.get_bind() if hasattr(session_or_conn, "get_bind") else session_or_conn.bind
    return pg_insert(table) if bind.dialect.name == "postgresql" else sqlite_insert(table)
