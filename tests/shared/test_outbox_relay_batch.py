"""The relay sends a claimed batch with every message in flight at once, then marks it sent
(issue 12): each key's messages still arrive in the outbox's order (one partition per key, the
idempotent producer keeping a partition's in-flight batches in order), and a batch that fails part
way marks nothing, so every row not acknowledged is sent again (consumers drop re-sent copies by id)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.adapters import tables
from services.intake.bootstrap import MIGRATIONS, SERVICE
from shared.db import create_engine_for, migrate, session_factory
from shared.kafka import build_producer
from shared.messaging.outbox import OutboxRelay
from shared.settings import Settings
from tests.conftest import read_topic
from tests.shared.test_outbox_relay_wake import counting_passes

pytestmark = pytest.mark.infra

KEYS = [f"case-{k}".encode() for k in range(5)]


@pytest.fixture
async def outbox(isolated: Settings) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], Settings]]:
    engine = create_engine_for(isolated, SERVICE)
    await migrate(engine, SERVICE, MIGRATIONS, isolated.schema_for(SERVICE))
    try:
        yield session_factory(engine), isolated
    finally:
        await engine.dispose()


async def add_rows(sessions: async_sessionmaker[AsyncSession], topic: str, n: int) -> None:
    async with sessions() as session, session.begin():
        await session.execute(insert(tables.outbox), [
            {"topic": topic, "key": KEYS[i % len(KEYS)], "value": json.dumps({"id": f"e-{i}", "seq": i}).encode()}
            for i in range(n)])


async def test_each_keys_messages_arrive_in_the_outbox_order(outbox) -> None:  # type: ignore[no-untyped-def]
    sessions, settings = outbox
    topic = settings.kafka.topic("ehc.contacts")
    # small batches and no linger: a pass is many produce requests per partition, in flight together
    producer = build_producer(settings.kafka, "test", max_batch_size=2048, linger_ms=0)
    await producer.start()
    try:
        await add_rows(sessions, topic, 1500)
        relay = OutboxRelay(sessions, tables.outbox, producer, batch_size=1000)
        assert await relay.drain() == 1500
        records = await read_topic(settings.kafka.bootstrap_servers, topic, lambda rs: len(rs) >= 1500)
    finally:
        await producer.stop()
    by_key: dict[bytes, list[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(json.loads(record.value)["seq"])
    for i, key in enumerate(KEYS):
        assert by_key[key] == list(range(i, 1500, len(KEYS))), key  # all there, in order, once


class FailingPart:
    """A real producer, but the send of the ``fail_at``-th message of a pass fails (the broker
    refused it); the sends before it are acknowledged."""

    def __init__(self, producer: Any, fail_at: int) -> None:
        self.producer, self.fail_at, self.sent = producer, fail_at, 0

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   headers: Sequence[tuple[str, bytes]] | None = None) -> Any:
        self.sent += 1
        if self.sent == self.fail_at:
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(ConnectionError("the broker refused the batch"))
            return failed
        return await self.producer.send(topic, value, key=key, headers=headers)



async def test_a_pass_that_fails_part_way_marks_nothing_and_the_next_sends_it_all(outbox) -> None:  # type: ignore[no-untyped-def]
    sessions, settings = outbox
    topic = settings.kafka.topic("ehc.contacts")
    producer = build_producer(settings.kafka, "test")
    await producer.start()
    try:
        await add_rows(sessions, topic, 50)
        failing = OutboxRelay(sessions, tables.outbox, FailingPart(producer, fail_at=30))
        with pytest.raises(ConnectionError):
            await failing.publish_pending()
        assert failing.published == 0
        assert await failing.pending() == 50  # nothing marked sent that was not acknowledged
        relay = OutboxRelay(sessions, tables.outbox, producer)
        assert await relay.drain() == 50
        assert await relay.pending() == 0
        records = await read_topic(settings.kafka.bootstrap_servers, topic,
                                   lambda rs: {json.loads(r.value)["id"] for r in rs} >= {f"e-{i}" for i in range(50)})
    finally:
        await producer.stop()
    ids = [json.loads(r.value)["id"] for r in records]
    assert set(ids) == {f"e-{i}" for i in range(50)}  # every event, some twice: consumers drop copies by id


async def test_a_drain_ends_with_the_pass_that_found_less_than_a_batch(outbox) -> None:  # type: ignore[no-untyped-def]
    """A pass that found fewer rows than its batch size saw every row committed before it began, so
    the drain (the caller's rows published) ends there: no further transaction finding nothing."""
    sessions, settings = outbox
    topic = settings.kafka.topic("ehc.contacts")
    producer = build_producer(settings.kafka, "test")
    await producer.start()
    try:
        relay = OutboxRelay(sessions, tables.outbox, producer, batch_size=100)
        passes = counting_passes(relay)
        await add_rows(sessions, topic, 250)
        assert await relay.drain() == 250
        assert (passes[0], await relay.pending()) == (3, 0)  # 100, 100, 50: all published, no empty pass
        await add_rows(sessions, topic, 200)
        assert await relay.drain() == 200
        assert passes[0] == 6  # 100, 100, then the one that finds none
    finally:
        await producer.stop()
