"""The deadlines service's use cases.

- :meth:`DeadlinesService.handle_case_events`: append a batch of case events to their cases'
  histories, recompute each touched case with the engine, store the deadlines, diff them against
  the stored ones and publish the differences through the outbox, all in one transaction with
  the processed-event ids.
- :meth:`DeadlinesService.fire_due_timers`: claim due timers (FOR UPDATE SKIP LOCKED), publish
  reminders, breaches and nudges, mark them fired, in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.deadlines.adapters import tables
from services.deadlines.adapters.repository import DeadlinesRepository
from services.deadlines.service_layer.changes import Change, diff
from services.deadlines.service_layer.timers import TimerSpec, london, london_today, plan_timers
from shared import topics
from shared.contracts import EVENT_MODELS, CaseEventEnvelope, DeadlineData, DeadlineEvent
from shared.logging import get_logger
from shared.messaging.inbox import mark_processed
from shared.messaging.outbox import add_to_outbox
from shared.settings import KafkaSettings

log = get_logger(__name__)
CONSUMER = "deadlines"
EVENT_NAMESPACE = uuid.UUID("8a0f5d4e-2b1c-4e8f-9d3a-6c7b5a4e3f21")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Engine(Protocol):
    """The pure engine, with its rule set and calendars already chosen (see bootstrap)."""

    calendar: Any

    def compute(self, events: list[Any], as_of: date) -> list[Any]: ...

    def record(self, row: Any) -> Any: ...


@dataclass
class BatchResult:
    events: int = 0
    duplicates: int = 0
    cases: int = 0
    published: dict[str, int] = field(default_factory=dict)

    def count(self, event_type: str) -> None:
        self.published[event_type] = self.published.get(event_type, 0) + 1


def event_row(event: CaseEventEnvelope) -> dict[str, Any]:
    return {
        "event_id": event.id, "case_id": event.subject, "source": event.source, "type": event.type,
        "occurred_on": event.data.occurred_on, "recorded_at": event.time, "supersedes": event.supersedes,
        "data": event.data.model_dump(mode="json"),
    }


def record_data(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """Stored JSON back to typed values (dates as ``date``) through the event's own data model."""
    model = EVENT_MODELS[event_type].model_fields["data"].annotation
    typed = model.model_validate(data).model_dump()  # type: ignore[union-attr]
    typed.pop("occurred_on", None)
    return typed


def routing_of(rows: Sequence[Any]) -> tuple[str | None, str | None, str | None]:
    """The current assignment: the latest ehc.case.assigned not retracted or superseded."""
    retracted = {r.data.get("retracts") for r in rows if r.type == "ehc.event.retracted"}
    superseded = {r.supersedes for r in rows if r.supersedes}
    assigned = [r for r in rows if r.type == "ehc.case.assigned" and r.event_id not in retracted | superseded]
    if not assigned:
        return None, None, None
    latest = max(assigned, key=lambda r: (r.occurred_on, r.recorded_at, r.event_id))
    return latest.data.get("team_id"), latest.data.get("caseworker_id"), latest.data.get("area_id")


class DeadlinesService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], kafka: KafkaSettings, engine: Engine,
                 clock: Clock, reminder_offsets: list[int], due_soon_working_days: int = 10,
                 on_published: Callable[[str], None] | None = None) -> None:
        self._sessions = sessions
        self._topic = kafka.topic(topics.DEADLINE_EVENTS)
        self._engine = engine
        self.clock = clock
        self._reminders = reminder_offsets
        self._due_soon = due_soon_working_days
        self._on_published = on_published or (lambda _t: None)

    # --- case events -------------------------------------------------------------------------
    async def handle_case_events(self, events: Sequence[CaseEventEnvelope]) -> BatchResult:
        result = BatchResult()
        async with self._sessions() as session, session.begin():
            repo = DeadlinesRepository(session)
            touched: list[str] = []
            for event in events:
                if not await mark_processed(session, tables.processed_events, CONSUMER, event.id):
                    result.duplicates += 1
                    continue
                await repo.add_event(event_row(event))
                result.events += 1
                if event.subject not in touched:
                    touched.append(event.subject)
            if touched:
                await self._recompute(session, repo, touched, result)
        return result

    async def store_history(self, events: Sequence[CaseEventEnvelope]) -> BatchResult:
        """Append events to their cases' histories without recomputing (a rebuild recomputes after)."""
        result = BatchResult()
        async with self._sessions() as session, session.begin():
            repo = DeadlinesRepository(session)
            for event in events:
                if await mark_processed(session, tables.processed_events, CONSUMER, event.id):
                    await repo.add_event(event_row(event))
                    result.events += 1
                else:
                    result.duplicates += 1
        return result

    async def all_case_ids(self) -> list[str]:
        async with self._sessions() as session:
            return await DeadlinesRepository(session).all_case_ids()

    async def recompute_cases(self, case_ids: Sequence[str]) -> BatchResult:
        """Recompute cases without new events (a new rule set, a rebuild): publishes only changes."""
        result = BatchResult()
        async with self._sessions() as session, session.begin():
            await self._recompute(session, DeadlinesRepository(session), list(case_ids), result)
        return result

    async def _recompute(self, session: AsyncSession, repo: DeadlinesRepository, case_ids: list[str],
                         result: BatchResult) -> None:
        now = self.clock.now()
        today = london_today(now)
        histories = await repo.case_events(case_ids)
        stored = await repo.stored_deadlines(case_ids)
        upserts: list[dict[str, Any]] = []
        retimed: list[str] = []
        new_timers: list[tuple[str, str, TimerSpec]] = []
        for case_id in case_ids:
            rows = histories[case_id]
            team_id, caseworker_id, area_id = routing_of(rows)
            computed = self._engine.compute([self._engine.record(r) for r in rows], today)
            version = computed[0].ruleset_version if computed else None
            await repo.upsert_case(case_id, team_id, caseworker_id, area_id, version)
            await repo.set_routing(case_id, team_id, caseworker_id)
            changes = diff(stored[case_id], computed)
            changed_ids = {c.deadline.deadline_id if c.deadline else c.previous.deadline_id  # type: ignore[union-attr]
                           for c in changes}
            for d in computed:
                if d.deadline_id in changed_ids or d.deadline_id not in stored[case_id]:
                    upserts.append(self._deadline_row(d, team_id, caseworker_id, now))
                    retimed.append(d.deadline_id)
                    new_timers.extend((d.deadline_id, case_id, t)
                                      for t in plan_timers(d, self._engine.calendar, self._reminders, now))
            for change in changes:
                if change.deadline is None and change.previous is not None:
                    await repo.set_status([{"b_id": change.previous.deadline_id, "b_status": "cancelled"}])
                    retimed.append(change.previous.deadline_id)
                await self._publish_change(session, change, case_id, team_id, caseworker_id, area_id, now, result)
            result.cases += 1
        await repo.upsert_deadlines(upserts)
        await repo.replace_timers(retimed, new_timers)

    def _deadline_row(self, d: Any, team_id: str | None, caseworker_id: str | None, now: datetime) -> dict[str, Any]:
        return {"deadline_id": d.deadline_id, "case_id": d.case_id, "rule_id": d.rule_id, "due_on": d.due_on,
                "status": str(d.status), "responsible": str(d.responsible), "kind": str(d.kind),
                "team_id": team_id, "caseworker_id": caseworker_id, "explanation": d.to_dict(), "updated_at": now}

    async def _publish_change(self, session: AsyncSession, change: Change, case_id: str, team_id: str | None,
                              caseworker_id: str | None, area_id: str | None, now: datetime,
                              result: BatchResult) -> None:
        if change.deadline is not None:
            data = deadline_data(change.deadline.to_dict(), team_id, caseworker_id, area_id)
        else:
            prev = change.previous
            assert prev is not None
            row = (await DeadlinesRepository(session).deadlines_by_id([prev.deadline_id]))[prev.deadline_id]
            data = deadline_data({**row.explanation, "status": "cancelled"}, team_id, caseworker_id, area_id)
        if change.previous is not None:
            data = data.model_copy(update={"previous_due_on": change.previous.due_on,
                                           "previous_status": change.previous.status})
        await self._emit(session, change.event_type, data, now, discriminator=str(change.previous))
        result.count(change.event_type)

    async def _emit(self, session: AsyncSession, event_type: str, data: DeadlineData, now: datetime,
                    discriminator: str = "") -> None:
        event_id = uuid.uuid5(EVENT_NAMESPACE, "|".join(
            [data.deadline_id, event_type, data.due_on.isoformat(), data.status, str(data.reminder_offset_days),
             discriminator]))
        event = DeadlineEvent(id=str(event_id), source="ehc/deadlines", subject=data.case_id, time=now,
                              type=event_type, data=data)  # type: ignore[arg-type]
        await add_to_outbox(session, tables.outbox, self._topic, event)
        self._on_published(event_type)

    # --- timers ------------------------------------------------------------------------------
    async def fire_due_timers(self, limit: int = 1000) -> int:
        """Fire the due timers of up to ``limit`` deadlines; returns how many timers were handled.

        Each deadline's due timers are handled together, in order, by the replica that locked the
        deadline. When several are due at once (after an outage) only the latest speaks: a reminder
        whose later reminder or breach is also due is marked fired without an event, so a breached
        deadline does not also get "due in 10 days"."""
        now = self.clock.now()
        async with self._sessions() as session, session.begin():
            repo = DeadlinesRepository(session)
            deadlines = await repo.claim_due_deadlines(now, max(1, limit // 4))
            due = await repo.due_timers(deadlines, now) if deadlines else []
            if not due:
                orphans = await repo.orphan_timers(now, limit)
                await repo.mark_fired(orphans, now)
                return len(orphans)
            fired: list[int] = []
            statuses: list[dict[str, Any]] = []
            follow_ups: list[tuple[str, str, TimerSpec]] = []
            last_of_deadline = {t.deadline_id: t.id for t in due}  # ordered by fire_at within a deadline
            for timer in due:
                row = deadlines[timer.deadline_id]
                fired.append(timer.id)
                if timer.kind == "reminder" and last_of_deadline[timer.deadline_id] != timer.id:
                    continue  # superseded by a later timer of the same deadline, also due now
                event = self._timer_event(timer, row)
                if event is None:
                    continue  # stale: the deadline moved or was completed since the timer was planned
                event_type, data, new_status = event
                await self._emit(session, event_type, data, now, discriminator=f"timer:{timer.kind}:{timer.fire_at}")
                if new_status and new_status != row.status:
                    statuses.append({"b_id": row.deadline_id, "b_status": new_status})
                if timer.kind == "nudge":
                    follow_ups.append((row.deadline_id, row.case_id, TimerSpec(
                        "nudge", 7, timer.due_on, london(london_today(now) + timedelta(days=7)))))
            await repo.set_status(statuses)
            await repo.mark_fired(fired, now)
            await repo.add_timers(follow_ups)
            return len(fired)

    def _timer_event(self, timer: Any, row: Any) -> tuple[str, DeadlineData, str | None] | None:
        if row.due_on != timer.due_on:
            return None
        base = deadline_data({**row.explanation, "status": row.status}, row.team_id, row.caseworker_id, None)
        if timer.kind in ("reminder", "breach") and row.status not in ("open", "due_soon"):
            return None
        if timer.kind == "nudge":
            if row.status != "exception":
                return None
            return "deadline.exception", base.model_copy(update={"reminder_offset_days": None}), None
        if timer.kind == "breach":
            return "deadline.breached", base.model_copy(update={"status": "breached"}), "breached"
        status = "due_soon" if timer.offset_days <= self._due_soon else row.status
        return ("deadline.due_soon",
                base.model_copy(update={"status": status, "reminder_offset_days": timer.offset_days}), status)


def deadline_data(explained: dict[str, Any], team_id: str | None, caseworker_id: str | None,
                  area_id: str | None) -> DeadlineData:
    fields = DeadlineData.model_fields
    data = {k: v for k, v in explained.items() if k in fields and v is not None}
    data["flags"] = list(explained.get("flags") or [])
    data.update(team_id=team_id, caseworker_id=caseworker_id, area_id=area_id)
    data.setdefault("responsible", "la")
    data.setdefault("trigger_event_id", "")
    data.setdefault("ruleset_version", "")
    return DeadlineData.model_validate(data)
