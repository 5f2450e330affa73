"""Replicas of the notifier (issue 12): two senders sharing one database, each with its own workers
(as two `ehc notifier serve` processes would be), send every notification exactly once, both send,
and one case's messages to one recipient go out in the order of the events that planned them, however
the sends race (a channel that answers after a random short while)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from services.notifier.adapters.channels import OutgoingMessage, SendResult
from services.notifier.bootstrap import MIGRATIONS, SERVICE, bootstrap
from services.notifier.domain.policy import NotificationStatus
from shared.db import migrate
from shared.settings import NotifierSettings, Settings
from tests.conftest import eventually
from tests.notifier.helpers import FakeClock, deadline_event, london, notification_rows
from tests.notifier.integration.conftest import CASEWORKER

CASES = 12
DUE = date(2026, 4, 21)  # the FakeClock says 10 March 2026
#: per case, in this order, each one email to the case's caseworker (caseworker_reminders=immediate)
SCRIPT = (("deadline.opened", "assessment.decision", DUE, {}),
          ("deadline.due_soon", "assessment.decision", DUE, {"reminder_offset_days": 10}),
          ("deadline.opened", "plan.final", DUE + timedelta(days=60), {}),
          ("deadline.due_soon", "assessment.decision", DUE, {"reminder_offset_days": 5}),
          ("deadline.breached", "assessment.advice", date(2026, 3, 9), {}))


@dataclass
class Outbox:
    """Where both senders' emails arrive, in the order they arrive."""

    arrived: list[tuple[str, OutgoingMessage]] = field(default_factory=list)


@dataclass
class RacingChannel:
    """One sender's email channel: answers after a random short while, so concurrent sends race."""

    name: str
    outbox: Outbox
    rng: random.Random

    async def send(self, msg: OutgoingMessage) -> SendResult:
        await asyncio.sleep(self.rng.uniform(0, 0.02))
        self.outbox.arrived.append((self.name, msg))
        return SendResult(provider_reference=f"{self.name}-{msg.notification_id}", status=NotificationStatus.SENT)

    async def aclose(self) -> None:
        pass


@pytest.mark.infra
async def test_two_senders_send_each_notification_once_both_send_and_keep_each_cases_order(make_notifier) -> None:
    outbox, rng, key = Outbox(), random.Random(12), Fernet.generate_key().decode()
    a, b = [await make_notifier(email=RacingChannel(name, outbox, rng), encryption_key=key,
                                caseworker_reminders="immediate", sender_workers=2, sender_concurrency=10,
                                sender_batch=10) for name in ("a", "b")]
    await plan_and_send(a.service, [a.service, b.service], outbox)
    rows = {r.notification_id: r for r in await notification_rows(a.sessions)}
    assert {r.status for r in rows.values()} == {"sent"}
    assert_each_once_in_order(rows, outbox)
    assert {name for name, _ in outbox.arrived} == {"a", "b"}  # both send


async def test_on_sqlite_several_workers_keep_each_cases_order(tmp_path) -> None:
    outbox = Outbox()
    cfg = NotifierSettings(email_channel="smtp", sms_channel="file", file_sink_dir=tmp_path / "sink",
                           encryption_key=Fernet.generate_key().decode(), council_phone="0300 123 4043",
                           caseworker_directory=dict([CASEWORKER]), caseworker_reminders="immediate",
                           sender_workers=3, sender_concurrency=10, sender_batch=10)
    settings = Settings(environment="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/ehc-{{service}}.db",
                        notifier=cfg)
    notifier = bootstrap(settings, channels={"smtp": RacingChannel("a", outbox, random.Random(3))},
                         clock=FakeClock(london(2026, 3, 10, 10, 0)))
    await migrate(notifier.engine, SERVICE, MIGRATIONS, None)
    try:
        await notifier.service.set_caseworker_email(*CASEWORKER)
        # two cases: one claim takes rows of both, several of each, sent at once unless held back
        await plan_and_send(notifier.service, [notifier.service], outbox, cases=2)
        assert_each_once_in_order({r.notification_id: r for r in await notification_rows(notifier.sessions)}, outbox,
                                  cases=2)
    finally:
        await notifier.engine.dispose()


async def plan_and_send(planner: Any, senders: list[Any], outbox: Outbox, cases: int = CASES) -> None:
    """The scripted events of ``cases`` cases planned at once (each case's in order), then sent by ``senders``."""
    events = [deadline_event(type_, f"case-{c}", rule, due_on=due, event_id=f"case-{c}-{step}", **data)
              for step, (type_, rule, due, data) in enumerate(SCRIPT) for c in range(cases)]
    assert await planner.handle_deadline_events(events) == cases * len(SCRIPT)
    tasks = [asyncio.create_task(service.run_sender(idle_seconds=0.05)) for service in senders]
    try:
        await eventually(lambda: _is(len(outbox.arrived), cases * len(SCRIPT)), 30, "every email sent")
        await asyncio.sleep(0.2)  # nothing more comes
    finally:
        for service in senders:
            await service.stop_sender()
        await asyncio.gather(*tasks, return_exceptions=True)


def assert_each_once_in_order(rows: dict[str, Any], outbox: Outbox, cases: int = CASES) -> None:
    per_id = Counter(msg.notification_id for _, msg in outbox.arrived)
    assert set(per_id.values()) == {1} and set(per_id) == set(rows)  # each once, none lost
    arrived: dict[str, list[int]] = {}
    for _, msg in outbox.arrived:
        row = rows[msg.notification_id]
        arrived.setdefault(row.case_id, []).append(_step(row))
    assert arrived == {f"case-{c}": list(range(len(SCRIPT))) for c in range(cases)}


def _step(row: Any) -> int:
    """The place in its case's script of the event that planned a row (by its kind and deadline)."""
    rule = row.deadline_id.split(":")[1]
    for step, (type_, rule_id, _, data) in enumerate(SCRIPT):
        kind = {"deadline.opened": "caseworker_new_deadline", "deadline.breached": "breach_alert"}.get(
            type_, f"caseworker_reminder_{data.get('reminder_offset_days')}")
        if rule == rule_id and row.kind == kind:
            return step
    raise AssertionError(f"no event planned {row.kind} of {row.deadline_id}")


async def _is(value: int, wanted: int) -> bool:
    return value >= wanted
