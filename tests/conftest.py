"""Fixtures shared by every test that needs real infrastructure.

Kafka and PostgreSQL are started once per test run (idempotently: `make test` starts them before
pytest, and these fixtures only check); each test gets its own topic prefix, consumer-group
prefix and database schemas, so tests never see each other's messages or rows.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiosmtpd.controller import Controller

from shared.kafka import ensure_topics
from shared.local_infra import kafka as kafka_infra
from shared.local_infra import postgres as pg_infra
from shared.settings import KafkaSettings, Settings
from shared.topics import topic_specs


@pytest.fixture(scope="session")
async def kafka_bootstrap() -> str:
    await asyncio.to_thread(kafka_infra.start)
    await kafka_infra.wait_ready(120)
    return kafka_infra.bootstrap_servers()


@pytest.fixture(scope="session")
async def pg_url() -> str:
    await asyncio.to_thread(pg_infra.start)
    await pg_infra.wait_ready(60)
    return pg_infra.database_url()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def isolated(kafka_bootstrap: str, pg_url: str) -> AsyncIterator[Settings]:
    """Settings for one test: its own topics, consumer groups and schemas on the shared infra."""
    tag = "t" + uuid.uuid4().hex[:10]
    settings = Settings(
        environment="test",
        database_url=pg_url,
        db_schema_prefix=f"{tag}_",
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"{tag}.", group_prefix=f"{tag}.",
                            partitions=3),
    )
    await ensure_topics(settings.kafka, topic_specs(settings.kafka.topic_prefix, 3))
    yield settings
    await _delete_topics(settings.kafka)
    conn = await asyncpg.connect(pg_infra.dsn())
    try:
        for service in ("intake", "deadlines", "notifier", "web"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.schema_for(service)}" CASCADE')
    finally:
        await conn.close()


async def _delete_topics(kafka: KafkaSettings) -> None:
    """A test's topics go with it, so the broker does not accumulate thousands of them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(kafka.topic_prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


# --- Kafka helpers ------------------------------------------------------------------------------

@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await p.start()
    yield p
    await p.stop()


async def read_topic(bootstrap: str, topic: str, until: Callable[[list[Any]], bool], timeout: float = 30.0,
                     ) -> list[Any]:
    """Read a topic from the beginning until ``until(records)`` holds (or fail after ``timeout`` s)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    records: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not until(records):
            if loop.time() > end:
                raise AssertionError(f"condition not met on {topic} within {timeout} s; got {len(records)} records")
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll an observable condition until it holds; fail with ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await check():
        if loop.time() > end:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.05)


# --- SMTP ----------------------------------------------------------------------------------------

@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)

    def to(self, address: str) -> list[Message]:
        # the SMTP server's thread may be between its two appends: only the messages it has finished
        n = min(len(self.messages), len(self.envelopes))
        return [m for m, e in zip(self.messages[:n], self.envelopes[:n], strict=True) if address in e.rcpt_tos]


class _Collect:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.box.envelopes.append(envelope)
        self.box.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on a free port, collecting what it receives."""
    box = Mailbox("127.0.0.1", free_port())
    controller = Controller(_Collect(box), hostname=box.host, port=box.port)
    controller.start()
    yield box
    controller.stop()


def body_text(message: Message) -> str:
    if message.is_multipart():
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                return part.get_payload(decode=True).decode()  # type: ignore[union-attr]
    return message.get_payload(decode=True).decode()  # type: ignore[union-attr]


os.environ.setdefault("EHC_LOGGING__JSON_OUTPUT", "true")
