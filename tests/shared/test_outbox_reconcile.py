"""The outbox relay after a crash between publishing and marking rows published: `reconcile`
finds the rows already in Kafka and marks them, so the relay publishes nothing twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial

import asyncpg
import pytest
from sqlalchemy import func, select, text

from services.deadlines.adapters import tables
from services.deadlines.bootstrap import MIGRATIONS, SERVICE
from shared.contracts import DeadlineData, DeadlineEvent
from shared.db import create_engine_for, migrate, session_factory
from shared.kafka import build_producer, recent_event_ids
from shared.local_infra import postgres as pg_infra
from shared.messaging.outbox import OutboxRelay, add_to_outbox
from shared.settings import Settings
from shared.topics import DEADLINE_EVENTS
from tests.conftest import read_topic

pytestmark = pytest.mark.infra


def event(i: int) -> DeadlineEvent:
    return DeadlineEvent(id=f"evt-{i}", source="test", subject=f"case-{i % 3}", time=datetime.now(UTC),
                         type="deadline.opened",
                         data=DeadlineData(case_id=f"case-{i % 3}", deadline_id=f"case-{i % 3}:x:{i}", rule_id="x",
                                           due_on="2026-01-01", status="open", responsible="la",
                                           trigger_event_id="t", legal_source="s", ruleset_version="v"))


async def test_reconcile_marks_rows_already_in_kafka(isolated: Settings) -> None:
    engine = create_engine_for(isolated, SERVICE)
    await migrate(engine, SERVICE, MIGRATIONS, isolated.schema_for(SERVICE))
    sessions = session_factory(engine)
    topic = isolated.kafka.topic(DEADLINE_EVENTS)
    producer = build_producer(isolated.kafka, "test")
    await producer.start()
    try:
        async with sessions() as session, session.begin():
            for i in range(10):
                await add_to_outbox(session, tables.outbox, topic, event(i))
        # The crash: the first 6 rows reached Kafka, the process died before marking them.
        for i in range(6):
            await producer.send_and_wait(topic, event(i).to_json(), key=event(i).key())
        relay = OutboxRelay(sessions, tables.outbox, producer)
        assert await relay.reconcile(partial(recent_event_ids, isolated.kafka)) == 6
        assert await relay.pending() == 4
        assert await relay.drain() == 4
        records = await read_topic(isolated.kafka.bootstrap_servers, topic, lambda rs: len(rs) >= 10)
        async with sessions() as session:
            total = await session.scalar(select(func.count()).select_from(tables.outbox))
    finally:
        await producer.stop()
        await engine.dispose()
    ids = sorted(json.loads(r.value)["id"] for r in records)
    assert ids == sorted(f"evt-{i}" for i in range(10)) and total == 10


async def test_a_relay_is_not_blocked_by_the_relay_of_another_schema(isolated: Settings) -> None:
    """The relay's advisory lock is per outbox table (its real schema): a deployment (or a test)
    with another schema on the same PostgreSQL relaying at the same moment does not stop it."""
    other = isolated.model_copy(update={"db_schema_prefix": isolated.db_schema_prefix + "other_"})
    engine = create_engine_for(isolated, SERVICE)
    other_engine = create_engine_for(other, SERVICE)
    await migrate(engine, SERVICE, MIGRATIONS, isolated.schema_for(SERVICE))
    await migrate(other_engine, SERVICE, MIGRATIONS, other.schema_for(SERVICE))
    sessions, other_sessions = session_factory(engine), session_factory(other_engine)
    producer = build_producer(isolated.kafka, "test")
    await producer.start()
    try:
        async with sessions() as session, session.begin():
            await add_to_outbox(session, tables.outbox, isolated.kafka.topic(DEADLINE_EVENTS), event(1))
        other_relay = OutboxRelay(other_sessions, tables.outbox, producer)
        async with other_sessions() as session, session.begin():  # the other relay is mid-batch
            await session.scalar(text("SELECT pg_advisory_xact_lock(:k)"), {"k": other_relay._lock_key(session)})
            assert await OutboxRelay(sessions, tables.outbox, producer).drain() == 1
    finally:
        await producer.stop()
        await engine.dispose()
        await other_engine.dispose()
        conn = await asyncpg.connect(pg_infra.dsn())
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{other.schema_for(SERVICE)}" CASCADE')
        finally:
            await conn.close()
