"""The project's local infrastructure works end to end: a message goes through the Kafka broker
and SQL reaches PostgreSQL, with the clients the services use (aiokafka, asyncpg).

Starts both components if they are not running (``start()`` is idempotent), as
``ehc infra up`` does.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from shared.topics import TopicSpec

pytestmark = pytest.mark.infra


async def test_kafka_produce_and_consume_one_message(kafka_bootstrap: str) -> None:
    topic = f"test.infra.{uuid.uuid4().hex}"
    created = await ensure_topics(KafkaSettings(bootstrap_servers=kafka_bootstrap), [TopicSpec(topic, partitions=3)])
    assert created == [topic]
    assert await ensure_topics(KafkaSettings(bootstrap_servers=kafka_bootstrap), [TopicSpec(topic, partitions=3)]) == []
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            sent = await producer.send_and_wait(topic, b'{"hello": "world"}', key=b"case-1")
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=f"{topic}.group",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), timeout=30)
            await consumer.commit()
        finally:
            await consumer.stop()
        assert (msg.key, msg.value) == (b"case-1", b'{"hello": "world"}')
        assert (msg.partition, msg.offset) == (sent.partition, sent.offset)
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()


async def test_postgres_select_1(pg_url: str) -> None:
    assert pg_url.startswith("postgresql+asyncpg://")
    conn = await asyncpg.connect(pg_url.replace("+asyncpg", "", 1))
    try:
        row = await conn.fetchrow("select 1 as one, current_user as who, current_database() as db")
    finally:
        await conn.close()
    assert tuple(row) == (1, "ehc", "ehc")
