"""Published outbox rows do not outlive their use (issue 13): intake's outbox holds contact details,
so every service's relay deletes rows published longer ago than the retention (default 7 days),
periodically, and never a row not yet published."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from services.intake.adapters import tables
from services.intake.bootstrap import MIGRATIONS, SERVICE
from shared.db import create_engine_for, migrate, session_factory
from shared.kafka import build_producer
from shared.messaging.outbox import OutboxRelay
from shared.settings import Settings
from tests.conftest import eventually

pytestmark = pytest.mark.infra


async def test_published_rows_older_than_the_retention_are_deleted(isolated: Settings) -> None:
    engine = create_engine_for(isolated, SERVICE)
    await migrate(engine, SERVICE, MIGRATIONS, isolated.schema_for(SERVICE))
    sessions = session_factory(engine)
    producer = build_producer(isolated.kafka, "test")
    await producer.start()
    topic = isolated.kafka.topic("ehc.contacts")
    relay = OutboxRelay(sessions, tables.outbox, producer, retention=timedelta(days=7), prune_every_seconds=0.1)
    outbox = tables.outbox
    try:
        async with sessions() as session, session.begin():
            await session.execute(insert(outbox), [
                {"topic": topic, "key": f"c-{i}".encode(), "value": b'{"contacts": "Jo, 07700 900123"}'}
                for i in range(6)])
        assert await relay.drain() == 6
        async with sessions() as session, session.begin():  # four were published eight days ago
            ids = list((await session.scalars(select(outbox.c.id).order_by(outbox.c.id))).all())
            await session.execute(update(outbox).where(outbox.c.id.in_(ids[:4]))
                                  .values(published_at=datetime.now(UTC) - timedelta(days=8)))
            await session.execute(insert(outbox), [{"topic": topic, "key": b"c-9", "value": b"{}"}])
        async with sessions() as session, session.begin():  # and one old row never published: kept
            await session.execute(update(outbox).where(outbox.c.published_at.is_(None))
                                  .values(created_at=datetime.now(UTC) - timedelta(days=30)))
        producer_down = asyncio.create_task(relay.run())

        async def rows_left() -> list[int]:
            async with sessions() as session:
                return list((await session.scalars(select(outbox.c.id).order_by(outbox.c.id))).all())

        async def pruned() -> bool:
            return len(await rows_left()) == 3

        await eventually(pruned, 15, "old published rows pruned")
        producer_down.cancel()
        await asyncio.gather(producer_down, return_exceptions=True)
        assert (await rows_left())[:2] == ids[4:]
        assert relay.pruned == 4
    finally:
        await producer.stop()
        await engine.dispose()


async def test_every_service_prunes_its_outbox_with_the_configured_retention(tmp_path) -> None:
    from cryptography.fernet import Fernet
    from pydantic import SecretStr

    from services.deadlines.bootstrap import bootstrap as deadlines
    from services.intake.bootstrap import bootstrap as intake
    from services.notifier.bootstrap import bootstrap as notifier

    assert Settings().outbox_retention_days == 7
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/{{service}}.db", outbox_retention_days=2)
    settings.notifier.encryption_key = SecretStr(Fernet.generate_key().decode())
    for build in (intake, deadlines, notifier):
        service = build(settings)
        assert service.relay.retention == timedelta(days=2), build
        await service.engine.dispose()
