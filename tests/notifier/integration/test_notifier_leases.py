"""Nothing stranded in ``sending``: a claimed row has a lease; a send interrupted (a crash, a stop
that cannot wait) is settled as technical-failure within minutes, the caseworker told, and never
sent again; a graceful stop lets the sends in flight finish and records them."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from services.notifier.adapters.channels import OutgoingMessage, SendResult
from services.notifier.domain.policy import NotificationStatus
from tests.conftest import eventually
from tests.notifier.helpers import contacts_event, deadline_event, notification_rows
from tests.notifier.integration.conftest import CASEWORKER

pytestmark = pytest.mark.infra

PARENT = {"role": "parent", "name": "Alex Morgan", "email": "alex.parent@example.org", "channel": "email",
          "consent": True}


class HeldChannel:
    """A channel whose sends wait until released (a slow provider, or a process about to die)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started: list[str] = []
        self.sent: list[OutgoingMessage] = []

    async def send(self, msg: OutgoingMessage) -> SendResult:
        self.started.append(msg.notification_id)
        await self.release.wait()
        self.sent.append(msg)
        return SendResult(provider_reference=f"held-{msg.notification_id}", status=NotificationStatus.SENT)

    async def aclose(self) -> None:
        pass


async def breaches(built, n: int) -> None:
    await built.service.handle_contacts([(f"case-{i}", contacts_event(f"case-{i}", PARENT)) for i in range(n)])
    await built.service.handle_deadline_events([deadline_event("deadline.breached", f"case-{i}", "plan.final",
                                                               due_on=date(2026, 3, 9)) for i in range(n)])


async def statuses(built) -> dict[str, str]:
    return {r.notification_id: r.status for r in await notification_rows(built.sessions)}


async def test_an_interrupted_send_is_settled_when_its_lease_runs_out_and_never_sent_again(make_notifier) -> None:
    held = HeldChannel()
    built = await make_notifier(sender_lease_seconds=60, email=held)
    await breaches(built, 2)  # per case: the caseworker's alert and the family's email
    crashed = asyncio.create_task(built.service.send_due())
    await eventually(lambda: _true(len(held.started) == 4), 10, "four sends in flight")
    crashed.cancel()  # the process dies mid-send: nothing recorded
    await asyncio.gather(crashed, return_exceptions=True)
    assert set((await statuses(built)).values()) == {"sending"}

    built.clock.advance(seconds=30)
    assert await built.service.sweep_stuck() == 0  # still within its lease: maybe still sending elsewhere
    built.clock.advance(seconds=31)
    assert await built.service.sweep_stuck() == 4
    rows = await notification_rows(built.sessions)
    assert sorted(r.status for r in rows) == ["pending"] * 4 + ["technical-failure"] * 4  # 4 alerts
    held.started.clear()
    held.release.set()
    while await built.service.send_due():
        pass
    # only the alerts about the four interrupted emails (two to the families, two breach alerts to
    # the caseworker) were sent; nothing again
    assert len(held.started) == len(held.sent) == 4
    assert {m.to for m in held.sent} == {CASEWORKER[1]}
    assert all("interrupted" in m.body for m in held.sent)


async def test_a_graceful_stop_lets_the_sends_in_flight_finish(make_notifier) -> None:
    held = HeldChannel()
    built = await make_notifier(sender_stop_seconds=30, email=held)
    await breaches(built, 3)
    loop = asyncio.create_task(built.service.run_sender(idle_seconds=0.05))
    await eventually(lambda: _true(len(held.started) == 6), 10, "six sends in flight")
    stopping = asyncio.create_task(built.service.stop_sender())
    await asyncio.sleep(0)
    held.release.set()  # the provider answers while we stop
    await asyncio.wait_for(stopping, 30)
    await asyncio.wait_for(loop, 5)  # the loop ended by itself
    assert set((await statuses(built)).values()) == {"sent"}
    assert len(held.sent) == 6


async def test_a_stop_that_cannot_wait_settles_the_sends_in_flight(make_notifier) -> None:
    held = HeldChannel()  # never answers
    built = await make_notifier(sender_stop_seconds=0.5, email=held)
    await breaches(built, 1)
    loop = asyncio.create_task(built.service.run_sender(idle_seconds=0.05))
    await eventually(lambda: _true(len(held.started) == 2), 10, "two sends in flight")
    await asyncio.wait_for(built.service.stop_sender(), 10)
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    rows = await notification_rows(built.sessions)
    settled = [r for r in rows if r.notification_id in held.started]
    assert [r.status for r in settled] == ["technical-failure"] * 2
    alerts = [r for r in rows if r.kind == "caseworker_delivery_failed"]
    assert [a.status for a in alerts] == ["pending"] * 2
    assert {a.idempotency_key.split("|")[0] for a in alerts} == set(held.started)


async def _true(value: bool) -> bool:
    return value
