"""Intake's and the notifier's relays are woken by the commit of a transaction that wrote to their
outbox (a sender's status change, a webhook, a scheduled job), as the deadlines relay is after a
consumed batch: the rows go out at once, not at the next idle poll (issue 12: latency)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import insert

from shared.runtime import prepare_service
from shared.settings import Settings
from tests.conftest import eventually

pytestmark = pytest.mark.infra


def _intake(settings: Settings) -> tuple[Any, Any, Any]:
    from services.intake.adapters import tables
    from services.intake.bootstrap import MIGRATIONS, SERVICE, bootstrap
    return bootstrap(settings), tables, (SERVICE, MIGRATIONS)


def _notifier(settings: Settings) -> tuple[Any, Any, Any]:
    from services.notifier.adapters import tables
    from services.notifier.bootstrap import MIGRATIONS, SERVICE, bootstrap
    settings.notifier.encryption_key = SecretStr(Fernet.generate_key().decode())
    return bootstrap(settings), tables, (SERVICE, MIGRATIONS)


@pytest.mark.parametrize("build", [_intake, _notifier], ids=["intake", "notifier"])
async def test_a_committed_outbox_row_is_published_without_waiting_for_the_idle_poll(isolated: Settings,
                                                                                    build: Any) -> None:
    app, tables, (service, migrations) = build(isolated)
    await prepare_service(isolated, service, app.engine, migrations, app.producer, app.relay)
    app.relay.idle_seconds = 600.0  # only a wake-up can make the relay publish promptly now
    topic = isolated.kafka.topic("ehc.notification-events")

    async def commit_row(n: int) -> None:
        async with app.sessions() as session, session.begin():
            await session.execute(insert(tables.outbox), [{"topic": topic, "key": b"k", "value": b"{}"}])

        async def published() -> bool:
            return app.relay.published == n

        await eventually(published, 20, f"outbox row {n} published")  # not after the 600 s poll

    async def rolled_back() -> None:
        async with app.sessions() as session, session.begin():
            await session.execute(insert(tables.outbox), [{"topic": topic, "key": b"k", "value": b"{}"}])
            raise RuntimeError("the writer's transaction fails")

    running = asyncio.create_task(app.relay.run())
    try:
        await commit_row(1)  # the relay's first pass; it is waiting for a wake-up after it
        await commit_row(2)
        with pytest.raises(RuntimeError):
            await rolled_back()  # no row, no wake-up owed; the next commit still wakes it
        await commit_row(3)
        assert await app.relay.pending() == 0
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await app.producer.stop()
        await app.engine.dispose()
