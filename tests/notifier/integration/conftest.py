"""The notifier's use cases against a real PostgreSQL (its own schema per test), with fake
channels, a hand-moved clock and a calendar of the test's own. No broker: audit events are read
from the outbox table, where the relay would pick them up."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from services.notifier.adapters import tables
from services.notifier.bootstrap import MIGRATIONS, SERVICE, Notifier, bootstrap
from services.notifier.domain.policy import RetryPolicy
from shared.db import migrate
from shared.local_infra import postgres as pg_infra
from shared.settings import KafkaSettings, NotifierSettings, Settings
from tests.notifier.helpers import FakeChannel, FakeClock, WeekdaysAndHolidays, london

NOTIFY_KEY = "test_key-26785a09-ab16-4eb0-8407-a37497a57506-3d844edf-8d35-48ac-975b-e847b4f122b0"
CASEWORKER = ("cw-1", "sam.caseworker@council.example")
QUICK_RETRY = RetryPolicy(base_seconds=10, cap_seconds=60, max_attempts=3)


class Built:
    def __init__(self, notifier: Notifier, clock: FakeClock, email: FakeChannel, sms: FakeChannel) -> None:
        self.notifier = notifier
        self.service = notifier.service
        self.sessions = notifier.sessions
        self.clock = clock
        self.email = email
        self.sms = sms

    async def audit(self) -> list[dict[str, Any]]:
        """Audit events written to the outbox, in order."""
        o = tables.outbox
        async with self.sessions() as session:
            rows = (await session.execute(select(o.c.value).order_by(o.c.id))).all()
        return [json.loads(r.value)["data"] for r in rows]


@pytest.fixture
async def isolated(pg_url: str) -> AsyncIterator[Settings]:
    """PostgreSQL only, a schema of its own (no broker here: cheaper than the shared ``isolated``)."""
    tag = "n" + uuid.uuid4().hex[:10]
    settings = Settings(environment="test", database_url=pg_url, db_schema_prefix=f"{tag}_",
                        kafka=KafkaSettings(topic_prefix=f"{tag}.", group_prefix=f"{tag}."))
    yield settings
    conn = await asyncpg.connect(pg_infra.dsn())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.schema_for(SERVICE)}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def make_notifier(isolated: Settings) -> AsyncIterator[Callable[..., Any]]:
    built: list[Notifier] = []

    async def make(*, clock: FakeClock | None = None, calendar: Any = None, retry: RetryPolicy = QUICK_RETRY,
                   email_channel: str = "smtp", sms_channel: str = "notify", email: Any = None,
                   **cfg: Any) -> Built:
        notifier_cfg = {"email_channel": email_channel, "sms_channel": sms_channel, "notify_api_key": NOTIFY_KEY,
                        "sms_gateway_url": "http://127.0.0.1:9/sms", "encryption_key": Fernet.generate_key().decode(),
                        "council_name": "Hertfordshire County Council", "council_phone": "0300 123 4043",
                        "caseworker_directory": {CASEWORKER[0]: CASEWORKER[1]}, **cfg}
        notifier_settings = NotifierSettings.model_validate({**isolated.notifier.model_dump(), **notifier_cfg})
        settings = isolated.model_copy(update={"notifier": notifier_settings})
        clock = clock or FakeClock(london(2026, 3, 10, 10, 0))  # a Tuesday morning
        email, sms = email or FakeChannel(), FakeChannel()
        channels = {"smtp": email, "notify_email": email, "notify_sms": sms, "sms_gateway": sms}
        notifier = bootstrap(settings, channels=channels, clock=clock,  # type: ignore[arg-type]
                             calendar=calendar or WeekdaysAndHolidays(), retry=retry)
        await migrate(notifier.engine, SERVICE, MIGRATIONS, settings.schema_for(SERVICE))
        for caseworker_id, address in settings.notifier.caseworker_directory.items():
            await notifier.service.set_caseworker_email(caseworker_id, address)
        built.append(notifier)
        return Built(notifier, clock, email, sms)

    yield make
    for notifier in built:
        await notifier.producer.stop()  # never started: this only quiets aiokafka's warning
        await notifier.engine.dispose()
