"""The relay hands an aiokafka producer whole batches, one per partition (issue 12: a message is an
append, not a send with its own future). What a consumer sees must not move: each key on the
partition the producer's own ``send`` gives it, the headers as stored, and a pass whose batch the
broker refuses marks nothing (every row is sent again by the next pass)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import insert

from services.intake.adapters import tables
from shared.kafka import build_producer
from shared.messaging.outbox import OutboxRelay
from tests.conftest import read_topic
from tests.shared.test_outbox_relay_batch import outbox  # noqa: F401 - the fixture

pytestmark = pytest.mark.infra

KEYS = [f"case-{k}".encode() for k in range(40)]


async def test_each_key_lands_on_the_partition_send_gives_it_with_its_headers(outbox) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    sessions, settings = outbox
    relayed, sent = settings.kafka.topic("ehc.contacts"), settings.kafka.topic("ehc.case-events")
    producer = build_producer(settings.kafka, "test", max_batch_size=4096, linger_ms=0)  # several batches a partition
    await producer.start()
    try:
        async with sessions() as session, session.begin():
            await session.execute(insert(tables.outbox), [
                {"topic": relayed, "key": KEYS[i % len(KEYS)], "value": json.dumps({"id": f"e-{i}", "seq": i}).encode(),
                 "headers": {"x-seq": str(i)} if i % 3 == 0 else None} for i in range(400)])
        assert await OutboxRelay(sessions, tables.outbox, producer).drain() == 400
        futures = [await producer.send(sent, b"{}", key=key) for key in KEYS]
        await asyncio.gather(*futures)
        via_relay = await read_topic(settings.kafka.bootstrap_servers, relayed, lambda rs: len(rs) >= 400)
        via_send = await read_topic(settings.kafka.bootstrap_servers, sent, lambda rs: len(rs) >= len(KEYS))
    finally:
        await producer.stop()
    send_partition = {r.key: r.partition for r in via_send}
    assert len(set(send_partition.values())) > 1  # the keys spread: the comparison means something
    assert {r.key: r.partition for r in via_relay} == send_partition
    by_key: dict[bytes, list[int]] = {}
    for record in sorted(via_relay, key=lambda r: (r.partition, r.offset)):
        seq = json.loads(record.value)["seq"]
        by_key.setdefault(record.key, []).append(seq)
        assert list(record.headers) == ([("x-seq", str(seq).encode())] if seq % 3 == 0 else [])
    for i, key in enumerate(KEYS):
        assert by_key[key] == list(range(i, 400, len(KEYS))), key  # all there, in order, once


class RefusedBatch(AIOKafkaProducer):  # type: ignore[misc]
    """A real producer whose ``refuse``-th batch of a pass the broker refuses."""

    def __init__(self, refuse: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.refuse, self.batches = refuse, 0

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        self.batches += 1
        if self.batches == self.refuse:
            failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            failed.set_exception(ConnectionError("the broker refused the batch"))
            return failed
        return await super().send_batch(batch, topic, partition=partition)


async def test_a_refused_batch_marks_nothing_and_the_next_pass_sends_every_row(outbox) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    sessions, settings = outbox
    topic = settings.kafka.topic("ehc.contacts")
    async with sessions() as session, session.begin():
        await session.execute(insert(tables.outbox), [
            {"topic": topic, "key": KEYS[i % len(KEYS)], "value": json.dumps({"id": f"e-{i}"}).encode()}
            for i in range(60)])
    refusing = RefusedBatch(2, bootstrap_servers=settings.kafka.bootstrap_servers, acks="all",
                            enable_idempotence=True)
    await refusing.start()
    try:
        relay = OutboxRelay(sessions, tables.outbox, refusing)
        with pytest.raises(ConnectionError):
            await relay.publish_pending()
        assert (refusing.batches, relay.published, await relay.pending()) == (3, 0, 60)  # one batch a partition
        assert await relay.drain() == 60
        assert await relay.pending() == 0
        records = await read_topic(settings.kafka.bootstrap_servers, topic,
                                   lambda rs: {json.loads(r.value)["id"] for r in rs} >= {f"e-{i}" for i in range(60)})
    finally:
        await refusing.stop()
    assert {json.loads(r.value)["id"] for r in records} == {f"e-{i}" for i in range(60)}
