"""Builders and fakes for the notifier's service-layer and end-to-end tests."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn
from sqlalchemy import select

from services.notifier.adapters import tables
from services.notifier.adapters.channels import OutgoingMessage, SendError, SendResult
from services.notifier.domain.policy import NotificationStatus
from shared.contracts import ContactsUpdated, DeadlineEvent
from tests.notifier.notify_stub import free_port

LONDON = ZoneInfo("Europe/London")


def london(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LONDON)


class FakeClock:
    """The notifier's clock, moved by hand (quiet hours, retries, digests: never wall time)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **kwargs: float) -> None:
        self.now = self.now + timedelta(**kwargs)


class WeekdaysAndHolidays:
    """A working-day calendar for tests: Monday to Friday, except the dates given."""

    def __init__(self, *holidays: date) -> None:
        self.holidays = set(holidays)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays


@dataclass
class FakeChannel:
    """Records what it is asked to send; answers with scripted errors first, then success."""

    status: NotificationStatus = NotificationStatus.SENT
    sent: list[OutgoingMessage] = field(default_factory=list)
    errors: deque[SendError] = field(default_factory=deque)
    attempts: int = 0

    async def send(self, msg: OutgoingMessage) -> SendResult:
        self.attempts += 1
        if self.errors:
            raise self.errors.popleft()
        self.sent.append(msg)
        return SendResult(provider_reference=f"fake-{uuid.uuid4()}", status=self.status)

    async def aclose(self) -> None:
        pass

    def to(self, address: str) -> list[OutgoingMessage]:
        return [m for m in self.sent if m.to == address]


def deadline_event(type_: str, case_id: str, rule_id: str = "assessment.decision", *, due_on: date,
                   status: str | None = None, caseworker_id: str | None = "cw-1", team_id: str | None = "team-n",
                   area_id: str | None = None, responsible: str = "la", event_id: str | None = None,
                   time: datetime | None = None, **data: Any) -> DeadlineEvent:
    default_status = {"deadline.breached": "breached", "deadline.met": "met", "deadline.exception": "exception",
                      "deadline.cancelled": "cancelled", "deadline.due_soon": "due_soon"}.get(type_, "open")
    return DeadlineEvent.model_validate({
        "id": event_id or str(uuid.uuid4()), "source": "ehc/deadlines", "subject": case_id,
        "time": (time or datetime.now(UTC)).isoformat(), "type": type_,
        "data": {"case_id": case_id, "deadline_id": f"{case_id}:{rule_id}:1", "rule_id": rule_id,
                 "due_on": due_on.isoformat(), "status": status or default_status, "responsible": responsible,
                 "trigger_event_id": "e-1", "legal_source": "Regs 5(1); 4(1)", "ruleset_version": "england-2014.1",
                 "caseworker_id": caseworker_id, "team_id": team_id, "area_id": area_id, **data}})


async def assessment_agreed_and_sent(built: Any, case_id: str) -> None:
    """A March 2026 case: the plan's 20 weeks open and the decision to assess made, then the due
    messages sent three minutes later."""
    await built.service.handle_deadline_events([
        deadline_event("deadline.opened", case_id, "plan.final", due_on=date(2026, 7, 3),
                       trigger_date=date(2026, 2, 13), time=london(2026, 2, 13)),
        deadline_event("deadline.met", case_id, "assessment.decision", due_on=date(2026, 3, 27),
                       trigger_date=date(2026, 2, 13), completed_on=date(2026, 3, 9))])
    built.clock.advance(minutes=3)
    await built.service.send_due()


def history_of_a_2025_case(case_id: str) -> list[DeadlineEvent]:
    """What the deadlines service publishes when a 2025 case is loaded late: milestones long past."""
    return [
        deadline_event("deadline.opened", case_id, "assessment.decision", due_on=date(2025, 8, 12),
                       trigger_date=date(2025, 7, 1)),
        deadline_event("deadline.met", case_id, "assessment.decision", due_on=date(2025, 8, 12),
                       trigger_date=date(2025, 7, 1), completed_on=date(2025, 8, 5)),
        deadline_event("deadline.opened", case_id, "draft.representations", due_on=date(2025, 10, 20),
                       trigger_date=date(2025, 10, 5), responsible="family"),
        deadline_event("deadline.met", case_id, "plan.final", due_on=date(2025, 11, 18),
                       trigger_date=date(2025, 7, 1), completed_on=date(2025, 11, 10)),
        deadline_event("deadline.breached", case_id, "review.annual", due_on=date(2026, 6, 1)),
    ]


def contacts_event(case_id: str, *contacts: dict[str, Any], sendiass: str | None = "Herts SENDIASS 01992 555847",
                   ) -> ContactsUpdated:
    return ContactsUpdated.model_validate({
        "id": str(uuid.uuid4()), "source": "cms/test", "subject": case_id, "time": datetime.now(UTC).isoformat(),
        "data": {"contacts": list(contacts), "sendiass_contact": sendiass}})


async def notification_rows(sessions: Any, **where: Any) -> list[Any]:
    n = tables.notifications
    q = select(n).order_by(n.c.created_at, n.c.notification_id)
    for key, value in where.items():
        q = q.where(n.c[key] == value)
    async with sessions() as session:
        return list((await session.execute(q)).all())


@asynccontextmanager
async def serve_http(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn in this event loop (it shares the app's database engine)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
