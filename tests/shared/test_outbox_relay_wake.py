"""The outbox relay publishes what it is woken for at once, and only then (issue 12: latency).

A wake-up during a pass starts the next pass as soon as this one ends, not after the idle poll; a
pass that found fewer rows than its batch size emptied the outbox, so the relay then waits for the
next wake-up instead of spending a transaction on an empty pass."""

from __future__ import annotations

import asyncio
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
from tests.conftest import eventually

pytestmark = pytest.mark.infra


class HeldProducer:
    """A real producer whose first send waits until the test lets it go."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.in_send = asyncio.Event()
        self.go = asyncio.Event()

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   headers: Sequence[tuple[str, bytes]] | None = None) -> Any:
        self.in_send.set()
        await self.go.wait()
        return await self.producer.send(topic, value, key=key, headers=headers)


@pytest.fixture
async def outbox(isolated: Settings) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], Any, str]]:
    engine = create_engine_for(isolated, SERVICE)
    await migrate(engine, SERVICE, MIGRATIONS, isolated.schema_for(SERVICE))
    producer = build_producer(isolated.kafka, "test")
    await producer.start()
    try:
        yield session_factory(engine), producer, isolated.kafka.topic("ehc.contacts")
    finally:
        await producer.stop()
        await engine.dispose()


def counting_passes(relay: OutboxRelay) -> list[int]:
    """Count the relay's passes (transactions looking for rows): the list's one item."""
    passes = [0]
    publish_batch = relay._publish_batch

    async def counted() -> int:
        passes[0] += 1
        return await publish_batch()

    relay._publish_batch = counted  # type: ignore[method-assign]
    return passes


async def add_rows(sessions: async_sessionmaker[AsyncSession], topic: str, n: int, tag: str) -> None:
    async with sessions() as session, session.begin():
        await session.execute(insert(tables.outbox), [{"topic": topic, "key": f"{tag}-{i}".encode(), "value": b"{}"}
                                                      for i in range(n)])


async def test_a_wake_up_during_a_pass_publishes_the_new_rows_without_the_idle_poll(outbox) -> None:  # type: ignore[no-untyped-def]
    sessions, producer, topic = outbox
    held = HeldProducer(producer)
    relay = OutboxRelay(sessions, tables.outbox, held, idle_seconds=600.0)
    await add_rows(sessions, topic, 2, "a")
    running = asyncio.create_task(relay.run())
    try:
        await asyncio.wait_for(held.in_send.wait(), 30)  # the first pass is under way
        await add_rows(sessions, topic, 3, "b")
        relay.wake()
        held.go.set()

        async def all_published() -> bool:
            return relay.published == 5

        await eventually(all_published, 30, "the rows added during the pass published")  # not after 600 s
        assert await relay.pending() == 0
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_pass_that_empties_the_outbox_is_followed_by_a_wait_not_an_empty_pass(outbox) -> None:  # type: ignore[no-untyped-def]
    sessions, producer, topic = outbox
    relay = OutboxRelay(sessions, tables.outbox, producer, idle_seconds=600.0)
    passes = counting_passes(relay)
    await add_rows(sessions, topic, 3, "a")
    running = asyncio.create_task(relay.run())
    try:
        for round_, expected in ((1, 3), (2, 6)):
            if round_ == 2:
                await add_rows(sessions, topic, 3, "b")
                relay.wake()

            async def published(expected: int = expected) -> bool:
                return relay.published == expected

            await eventually(published, 30, f"round {round_} published")
        assert passes[0] == 2  # one pass per wake-up: none spent finding the outbox empty
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_relay_woken_as_it_is_stopped_stops(outbox) -> None:  # type: ignore[no-untyped-def]
    """A commit wakes the relay in the very step its task is cancelled (a service stopping while
    its consumer commits). Python 3.11's asyncio.wait_for returned the wake-up and swallowed the
    cancellation, so the relay went on polling and the service's stop waited for it forever (a
    CI run hung in a notifier test's shutdown)."""
    sessions, producer, _topic = outbox
    relay = OutboxRelay(sessions, tables.outbox, producer, idle_seconds=600.0)
    passes = counting_passes(relay)
    running = asyncio.create_task(relay.run())
    await eventually(lambda: _true(passes[0] >= 1), 30, "the relay's first pass")
    await asyncio.sleep(0.05)  # idle: waiting for a wake-up
    relay.wake()
    running.cancel()
    done, _ = await asyncio.wait({running}, timeout=5)
    assert running in done and running.cancelled()


async def _true(value: bool) -> bool:
    return value
