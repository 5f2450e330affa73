"""The outbox relay is off the consumer's path (issue 12): a batch of case events is committed,
its offsets too, without waiting for its deadline events to be published; the relay, woken after
the commit, publishes them at once (the outbox keeps them if it cannot)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime

import pytest

from services.deadlines.bootstrap import bootstrap
from shared import topics
from shared.kafka import consumer_lag
from shared.settings import Settings
from tests.conftest import eventually
from tests.deadlines.e2e.test_deadlines_service import MovableClock, deadline_events, publish
from tests.e2e.harness import case_event

pytestmark = pytest.mark.infra


async def test_offsets_commit_after_the_transaction_without_waiting_for_the_relay(isolated: Settings,
                                                                                  producer) -> None:
    app = bootstrap(isolated, clock=MovableClock(datetime(2026, 3, 20, 12, tzinfo=UTC)))
    await app.start(schedule=False)  # consuming, but no relay loop running: nothing may be published inline
    relay = None
    try:
        await publish(producer, isolated, case_event("r1", "case-r", "ehc.request.received", date(2026, 3, 2),
                                                     route="request", requested_by="parent"), key=b"case-r")
        kafka = isolated.kafka

        async def committed() -> bool:
            lag = await consumer_lag(kafka, kafka.group("ehc-deadlines"), kafka.topic(topics.CASE_EVENTS))
            return sum(lag.values()) == 0

        await eventually(committed, 60, "the batch's offsets committed")
        assert await app.relay.pending() > 0  # committed with its deadline events still in the outbox
        app.relay.idle_seconds = 60.0  # only a wake-up can make the relay publish promptly now
        relay = asyncio.create_task(app.relay.run())
        await eventually(lambda: _drained(app), 30, "the pending events relayed")
        await publish(producer, isolated, case_event("r2", "case-s", "ehc.request.received", date(2026, 3, 3),
                                                     route="request", requested_by="parent"), key=b"case-s")
        started = time.monotonic()
        events = await deadline_events(isolated, lambda es: {e["subject"] for e in es} >= {"case-r", "case-s"})
        assert time.monotonic() - started < 30  # woken after the commit, not after the 60 s idle pause
        assert {e["subject"] for e in events} == {"case-r", "case-s"}
    finally:
        if relay is not None:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
        await app.stop()


async def _drained(app) -> bool:  # type: ignore[no-untyped-def]
    return await app.relay.pending() == 0
