"""The deadlines service's use cases.

- :meth:`DeadlinesService.handle_case_events`: append a batch of case events to their cases'
  histories, recompute each touched case with the engine, store the deadlines, diff them against
  the stored ones and publish the differences through the outbox, all in one transaction with
  the processed-event ids.
  A case's data-quality warnings (and the problem that stops its deadlines) are stored on the
  case with them, and published as ``case.data_quality`` when the set changes.
- :meth:`DeadlinesService.fire_due_timers`: claim due timers (FOR UPDATE SKIP LOCKED), publish
  reminders, breaches and nudges, mark them fired, in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any, Protocol

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.deadlines.adapters import tables
from services.deadlines.adapters.records import ConsumedCaseEvent
from services.deadlines.adapters.repository import DeadlinesRepository
from services.deadlines.domain.quality import case_warnings, date_problem
from services.deadlines.service_layer.changes import Change, diff
from services.deadlines.service_layer.timers import TimerSpec, london, london_today, plan_timers
from shared import topics
from shared.contracts import (
    DATA_QUALITY_EVENT_TYPE,
    CaseDataQualityEvent,
    CaseEventEnvelope,
    DeadlineData,
)
from shared.contracts.deadline_events import CaseDataQualityData
from shared.logging import get_logger
from shared.messaging.outbox import add_many_to_outbox
from shared.settings import KafkaSettings
from shared.working_days import DateOutOfRange

log = get_logger(__name__)
CONSUMER = "deadlines"
# A batch of at least GROUP_MIN_EVENTS case events, on PostgreSQL, is handled in GROUPS concurrent
# transactions of whole cases (see handle_case_events).
GROUPS = 2
GROUP_MIN_EVENTS = 200
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
    changed_cases: set[str] = field(default_factory=set)  # cases that got new events

    def count(self, event_type: str) -> None:
        self.published[event_type] = self.published.get(event_type, 0) + 1

    @classmethod
    def merged(cls, results: Sequence[BatchResult]) -> BatchResult:
        total = cls()
        for r in results:
            total.events += r.events
            total.duplicates += r.duplicates
            total.cases += r.cases
            for event_type, n in r.published.items():
                total.published[event_type] = total.published.get(event_type, 0) + n
            total.changed_cases |= r.changed_cases
        return total


def event_row(event: CaseEventEnvelope | ConsumedCaseEvent) -> dict[str, Any]:
    """A case event as its case's history stores it (a consumed one decoded by the fast path
    carries it already)."""
    if type(event) is ConsumedCaseEvent:
        return event.row
    assert isinstance(event, CaseEventEnvelope)
    return {
        "event_id": event.id, "case_id": event.subject, "source": event.source, "type": event.type,
        "occurred_on": event.data.occurred_on, "recorded_at": event.time, "supersedes": event.supersedes,
        "data": event.data.model_dump(mode="json"),
    }


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
                 on_published: Callable[[str], None] | None = None,
                 on_problem: Callable[[], None] | None = None) -> None:
        self._sessions = sessions
        bind = getattr(sessions, "kw", {}).get("bind")  # (no sessions: a service that only encodes events)
        self._concurrent = bind is not None and bind.dialect.name == "postgresql"  # SQLite: one writer
        self._topic = kafka.topic(topics.DEADLINE_EVENTS)
        self._engine = engine
        self.clock = clock
        self._reminders = reminder_offsets
        self._due_soon = due_soon_working_days
        self._on_published = on_published or (lambda _t: None)
        self._on_problem = on_problem or (lambda: None)

    # --- case events -------------------------------------------------------------------------
    async def handle_case_events(self, events: Sequence[CaseEventEnvelope | ConsumedCaseEvent]) -> BatchResult:
        """A batch of case events. A large one on PostgreSQL is handled as :data:`GROUPS` groups of
        whole cases, each in its own transaction, at once: while PostgreSQL works on one group's
        statements, this process computes another's cases (a backlog's batch waited on its
        statements about half its time). A case's events stay together and in order; each group
        commits its processed ids with its effects, so when one fails and the batch comes again
        the committed groups' events are duplicates (skipped), the others handled: exactly once."""
        groups = self._groups(events)
        if len(groups) == 1:
            return await self._handle_group(events)
        outcomes = await asyncio.gather(*(self._handle_group(g) for g in groups), return_exceptions=True)
        for outcome in outcomes:  # every group finished (committed or rolled back) before raising
            if isinstance(outcome, BaseException):
                raise outcome
        return BatchResult.merged(outcomes)  # type: ignore[arg-type]

    def _groups(self, events: Sequence[CaseEventEnvelope | ConsumedCaseEvent],
                ) -> list[Sequence[CaseEventEnvelope | ConsumedCaseEvent]]:
        """The batch in groups of whole cases of about equal size (one group: as it is)."""
        if len(events) < GROUP_MIN_EVENTS or not self._concurrent:
            return [events]
        by_case: dict[str, list[CaseEventEnvelope | ConsumedCaseEvent]] = {}
        for event in events:
            by_case.setdefault(event.subject, []).append(event)
        if len(by_case) < 2:
            return [events]
        groups: list[list[CaseEventEnvelope | ConsumedCaseEvent]] = [[] for _ in range(GROUPS)]
        for case_events in sorted(by_case.values(), key=len, reverse=True):
            min(groups, key=len).extend(case_events)
        return [g for g in groups if g]

    async def _handle_group(self, events: Sequence[CaseEventEnvelope | ConsumedCaseEvent]) -> BatchResult:
        result = BatchResult()
        async with self._sessions() as session, session.begin():
            repo = DeadlinesRepository(session)
            fresh = await self._store(session, repo, events, result)
            touched = list(dict.fromkeys(e.subject for e in fresh))
            if touched:
                await self._recompute(session, repo, touched, result)
        return result

    async def store_history(self, events: Sequence[CaseEventEnvelope]) -> BatchResult:
        """Append events to their cases' histories without recomputing (a rebuild recomputes after)."""
        result = BatchResult()
        async with self._sessions() as session, session.begin():
            await self._store(session, DeadlinesRepository(session), events, result)
        return result

    async def _store(self, session: AsyncSession, repo: DeadlinesRepository,
                     events: Sequence[CaseEventEnvelope | ConsumedCaseEvent],
                     result: BatchResult) -> list[CaseEventEnvelope | ConsumedCaseEvent]:
        first: dict[str, CaseEventEnvelope | ConsumedCaseEvent] = {}
        for event in events:
            first.setdefault(event.id, event)
        new_ids = await repo.store_new_events(CONSUMER, [event_row(e) for e in first.values()])
        fresh: list[CaseEventEnvelope | ConsumedCaseEvent] = []
        for event in events:
            if event.id in new_ids:
                new_ids.discard(event.id)  # a repeat within the batch counts as a duplicate
                fresh.append(event)
        result.events += len(fresh)
        result.changed_cases.update(e.subject for e in fresh)
        result.duplicates += len(events) - len(fresh)
        return fresh

    async def all_case_ids(self) -> list[str]:
        async with self._sessions() as session:
            return await DeadlinesRepository(session).all_case_ids()

    async def recompute_cases(self, case_ids: Sequence[str], events_changed: Collection[str] = ()) -> BatchResult:
        """Recompute cases (a new rule set, a calendar change, a rebuild): publishes only changes.
        ``events_changed``: the cases whose history changed since they were last computed (a
        rebuild's replay stored new events for them); only for the reason each change gives."""
        result = BatchResult()
        async with self._sessions() as session, session.begin():
            await self._recompute(session, DeadlinesRepository(session), list(case_ids), result,
                                  set(events_changed))
        return result

    async def preview_cases(self, case_ids: Sequence[str], new_events: Mapping[str, Sequence[Any]] | None = None,
                            on_quality: Callable[[str, list[dict[str, Any]], list[dict[str, Any]]], Any] | None = None,
                            ) -> list[tuple[str, Change]]:
        """What :meth:`recompute_cases` would publish for these cases, writing nothing (a dry run).
        ``new_events``: event rows (as :func:`event_row` gives) that a rebuild would store first.
        ``on_quality(case_id, stored, new)``: each case whose data-quality warnings would change (a
        ``case.data_quality`` event), with the stored warnings and the new ones."""
        new_events = new_events or {}
        today = london_today(self.clock.now())
        async with self._sessions() as session:
            repo = DeadlinesRepository(session)
            histories = await repo.case_events(case_ids)
            stored = await repo.stored_deadlines(case_ids, lock=False)
            quality_before = (await repo.routing_and_quality(case_ids))[1] if on_quality is not None else {}
        out: list[tuple[str, Change]] = []
        for case_id in case_ids:
            rows = [*histories[case_id], *(SimpleNamespace(**r) for r in new_events.get(case_id, ()))]
            records = [self._engine.record(r) for r in rows]
            problem = date_problem(records)
            if problem is None:  # with a problem a recomputation keeps the case's deadlines: no change
                try:
                    _, changes = self._changes(records, stored[case_id], today, case_id in new_events)
                    out.extend((case_id, c) for c in changes)
                except DateOutOfRange as exc:
                    problem = str(exc)
            if on_quality is not None:
                warnings = [w.to_dict() for w in case_warnings(records, problem)]
                if warnings != quality_before.get(case_id, []):
                    on_quality(case_id, quality_before.get(case_id, []), warnings)
        return out

    async def case_history(self, case_id: str) -> tuple[list[Any], tuple[str | None, str | None]]:
        """A case's events as engine records, and its routing (team, caseworker)."""
        async with self._sessions() as session:
            repo = DeadlinesRepository(session)
            rows = (await repo.case_events([case_id]))[case_id]
            routing = (await repo.routing([case_id])).get(case_id, (None, None))
        return [self._engine.record(r) for r in rows], routing

    async def unknown_events(self, events: Sequence[CaseEventEnvelope]) -> list[CaseEventEnvelope]:
        """The events this service has not processed yet (read only)."""
        async with self._sessions() as session:
            known = await DeadlinesRepository(session).known_event_ids(CONSUMER, [e.id for e in events])
        return [e for e in events if e.id not in known]

    def _changes(self, records: Sequence[Any], stored: dict[str, Any], today: date,
                 events_changed: bool) -> tuple[list[Any], list[Change]]:
        """The one computation behind both a recomputation and its dry run."""
        computed = self._engine.compute(list(records), today)
        return computed, diff(stored, computed, events_changed)

    async def _recompute(self, session: AsyncSession, repo: DeadlinesRepository, case_ids: list[str],
                         result: BatchResult, events_changed: set[str] | None = None) -> None:
        """Recompute cases and write everything back in a handful of multi-row statements."""
        now = self.clock.now()
        today = london_today(now)
        histories, stored, routing_before, quality_before = await repo.case_state(case_ids)
        quality_events: list[CaseDataQualityEvent] = []
        upserts: list[dict[str, Any]] = []
        retimed: list[str] = []
        new_timers: list[tuple[str, str, TimerSpec]] = []
        case_rows: list[dict[str, Any]] = []
        rerouted: list[tuple[str, str | None, str | None]] = []
        pending: list[tuple[Change, str, tuple[str | None, str | None, str | None]]] = []
        for case_id in case_ids:
            rows = histories[case_id]
            routing = routing_of(rows)
            team_id, caseworker_id, area_id = routing
            records = [self._engine.record(r) for r in rows]
            problem = date_problem(records)
            case_upserts: list[dict[str, Any]] = []
            case_retimed: list[str] = []
            case_timers: list[tuple[str, str, TimerSpec]] = []
            computed: list[Any] = []
            changes: list[Change] = []
            if problem is None:
                try:
                    computed, changes = self._changes(records, stored[case_id], today,
                                                      events_changed is None or case_id in events_changed)
                    changed_ids = {c.deadline.deadline_id if c.deadline else c.previous.deadline_id  # type: ignore[union-attr]
                                   for c in changes}
                    for d in computed:
                        # every row is written: its explanation (an exception, a flag) can change while
                        # its date and status do not; only changed deadlines get new timers
                        case_upserts.append(self._deadline_row(d, team_id, caseworker_id, now))
                        if d.deadline_id in changed_ids or d.deadline_id not in stored[case_id]:
                            if d.deadline_id in stored[case_id]:  # a new deadline has no timers to drop
                                case_retimed.append(d.deadline_id)
                            case_timers.extend((d.deadline_id, case_id, t)
                                               for t in plan_timers(d, self._engine.calendar, self._reminders, now))
                except DateOutOfRange as exc:  # valid input the calendar cannot reach: the case's problem
                    problem = str(exc)
            if problem is not None:
                # The case keeps the deadlines it had; the problem is recorded and shown, nothing stops.
                log.warning("deadlines.case_data_problem", case_id=case_id, problem=problem)
                self._on_problem()
                computed, changes, case_upserts, case_retimed, case_timers = [], [], [], [], []
            version = computed[0].ruleset_version if computed else None
            warnings = [w.to_dict() for w in case_warnings(records, problem)]
            if warnings != quality_before.get(case_id, []):
                quality_events.append(self._data_quality_event(case_id, rows, warnings, routing, now, result))
            case_rows.append({"case_id": case_id, "team_id": team_id, "caseworker_id": caseworker_id,
                              "area_id": area_id, "ruleset_version": version, "problem": problem,
                              "data_quality": warnings, "updated_at": now})
            if case_id in routing_before and routing_before[case_id] != (team_id, caseworker_id):
                rerouted.append((case_id, team_id, caseworker_id))
            upserts.extend(case_upserts)
            retimed.extend(case_retimed)
            new_timers.extend(case_timers)
            pending.extend((change, case_id, routing) for change in changes)
            result.cases += 1
        for case_id, team_id, caseworker_id in rerouted:
            await repo.set_routing(case_id, team_id, caseworker_id)
        vanished = [c.previous.deadline_id for c, _, _ in pending if c.deadline is None and c.previous is not None]
        explained = await repo.deadlines_by_id(vanished) if vanished else {}
        outgoing = [self._change_event(change, routing, explained, now, result) for change, _, routing in pending]
        await add_many_to_outbox(session, tables.outbox, self._topic, [*outgoing, *quality_events])
        await repo.write_recomputed(case_rows, upserts, vanished, [*retimed, *vanished], new_timers)

    def _deadline_row(self, d: Any, team_id: str | None, caseworker_id: str | None, now: datetime) -> dict[str, Any]:
        return {"deadline_id": d.deadline_id, "case_id": d.case_id, "rule_id": d.rule_id, "due_on": d.due_on,
                "status": str(d.status), "responsible": str(d.responsible), "kind": str(d.kind),
                "team_id": team_id, "caseworker_id": caseworker_id, "explanation": d.to_dict(), "updated_at": now,
                # the explanation's facts the reports count, as columns (the 20-week figures read dates)
                "trigger_date": d.trigger_date, "completed_on": d.completed_on, "exception": d.exception}

    def _change_event(self, change: Change, routing: tuple[str | None, str | None, str | None],
                      explained: dict[str, Any], now: datetime, result: BatchResult) -> EncodedEvent:
        team_id, caseworker_id, area_id = routing
        result.count(change.event_type)
        if change.deadline is not None:  # the hot path: the engine's own values, encoded without pydantic
            self._on_published(change.event_type)
            return computed_event(change, routing, now)
        assert change.previous is not None
        row = explained[change.previous.deadline_id]
        return self._event(change.event_type, {
            **row.explanation, "status": "cancelled", "previous_due_on": change.previous.due_on,
            "previous_status": change.previous.status, "change_reason": change.reason,
            "change_detail": change.detail or None}, routing, now, discriminator=_discriminator(change.previous))

    def _data_quality_event(self, case_id: str, rows: Sequence[Any], warnings: list[dict[str, Any]],
                            routing: tuple[str | None, str | None, str | None], now: datetime,
                            result: BatchResult) -> CaseDataQualityEvent:
        """The case's whole current set of warnings. Its id is deterministic (the same history giving
        the same warnings, recomputed again, has the same id), and new whenever the history moved on."""
        team_id, caseworker_id, area_id = routing
        history = hashlib.sha256("\n".join(sorted(r.event_id for r in rows)).encode()).hexdigest()
        event_id = uuid.uuid5(EVENT_NAMESPACE, "|".join(
            [case_id, DATA_QUALITY_EVENT_TYPE, history, json.dumps(warnings, sort_keys=True)]))
        result.count(DATA_QUALITY_EVENT_TYPE)
        self._on_published(DATA_QUALITY_EVENT_TYPE)
        data = CaseDataQualityData(case_id=case_id, warnings=warnings, team_id=team_id,  # type: ignore[arg-type]
                                   caseworker_id=caseworker_id, area_id=area_id)
        return CaseDataQualityEvent(id=str(event_id), source="ehc/deadlines", subject=case_id, time=now,
                                    type=DATA_QUALITY_EVENT_TYPE, data=data)

    def _event(self, event_type: str, explained: dict[str, Any], routing: tuple[str | None, str | None, str | None],
               now: datetime, discriminator: str = "") -> EncodedEvent:
        """A stored deadline's event (a timer's, a cancellation's), encoded without pydantic.
        Deterministic ids: the same change computed twice (a rebuild, a redelivery) has the same id."""
        self._on_published(event_type)
        return stored_event(event_type, explained, routing, now, discriminator)

    # --- timers ------------------------------------------------------------------------------
    async def fire_due_timers(self, limit: int = 1000) -> int:
        """Fire the due timers of up to ``limit // 4`` deadlines (about ``limit`` timers: a deadline has
        up to four, its reminders and breach); returns how many timers were handled.

        Each deadline's due timers are handled together, in order, by the replica that locked the
        deadline. When several are due at once (after an outage) only the latest speaks: a reminder
        whose later reminder or breach is also due is marked fired without an event, so a breached
        deadline does not also get "due in 10 days"."""
        now = self.clock.now()
        async with self._sessions() as session, session.begin():
            repo = DeadlinesRepository(session)
            claim = max(1, limit // 4)
            deadlines = await repo.claim_due_deadlines(now, claim)
            due = await repo.due_timers(deadlines, now) if deadlines else []
            if not due:
                orphans = await repo.orphan_timers(now, claim)  # among the due timers the claim looked at
                await repo.mark_fired(orphans, now)
                return len(orphans)
            fired: list[int] = []
            statuses: dict[str, list[str]] = {}
            follow_ups: list[tuple[str, str, TimerSpec]] = []
            outgoing: list[EncodedEvent] = []
            last_of_deadline = {t.deadline_id: t.id for t in due}  # ordered by fire_at within a deadline
            for timer in due:
                row = deadlines[timer.deadline_id]
                fired.append(timer.id)
                if timer.kind == "reminder" and last_of_deadline[timer.deadline_id] != timer.id:
                    continue  # superseded by a later timer of the same deadline, also due now
                event = self._timer_event(timer, row)
                if event is None:
                    continue  # stale: the deadline moved or was completed since the timer was planned
                event_type, stored, new_status = event
                outgoing.append(self._event(event_type, stored, (row.team_id, row.caseworker_id, None), now,
                                            discriminator=f"timer:{timer.kind}:{timer.fire_at}"))
                if new_status and new_status != row.status:
                    statuses.setdefault(new_status, []).append(row.deadline_id)
                if timer.kind == "nudge":
                    follow_ups.append((row.deadline_id, row.case_id, TimerSpec(
                        "nudge", 7, timer.due_on, london(london_today(now) + timedelta(days=7)))))
            await add_many_to_outbox(session, tables.outbox, self._topic, outgoing)
            await repo.set_timer_statuses(statuses)
            await repo.mark_fired(fired, now)
            await repo.add_timers(follow_ups)
            return len(fired)

    async def has_due_timers(self) -> bool:
        """Whether any timer is due and not yet fired (whoever holds it)."""
        async with self._sessions() as session:
            return await DeadlinesRepository(session).has_due_timers(self.clock.now())

    def _timer_event(self, timer: Any, row: Any) -> tuple[str, dict[str, Any], str | None] | None:
        if row.due_on != timer.due_on:
            return None
        if timer.kind in ("reminder", "breach") and row.status not in ("open", "due_soon"):
            return None
        if timer.kind == "nudge" and row.status != "exception":
            return None
        stored = {**row.explanation, "case_id": row.case_id, "deadline_id": row.deadline_id, "rule_id": row.rule_id,
                  "due_on": row.due_on, "status": row.status, "responsible": row.responsible, "kind": row.kind,
                  "reminder_offset_days": None}
        if timer.kind == "nudge":
            event_type, new_status = "deadline.exception", None
        elif timer.kind == "breach":
            event_type, new_status = "deadline.breached", "breached"
            stored["status"] = "breached"
        else:
            event_type = "deadline.due_soon"
            new_status = "due_soon" if timer.offset_days <= self._due_soon else row.status
            stored.update(status=new_status, reminder_offset_days=timer.offset_days)
        return event_type, stored, new_status


def _discriminator(previous: Any) -> str:
    """The previous state as it entered event ids before StoredDeadline grew more fields (stable ids)."""
    if previous is None:
        return "None"
    return (f"StoredDeadline(deadline_id={previous.deadline_id!r}, due_on={previous.due_on!r}, "
            f"status={previous.status!r})")


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


def _event_id(deadline_id: str, event_type: str, due_on: date | str, status: str, reminder_offset_days: int | None,
              discriminator: str) -> str:
    day = due_on if type(due_on) is str else due_on.isoformat()
    return _uuid5("|".join([deadline_id, event_type, day, status, str(reminder_offset_days), discriminator]))


_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(EVENT_NAMESPACE, name))`` without building a UUID object (the hot path makes
    one per deadline event)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An outgoing event already in its wire form (what the outbox needs: key and JSON)."""

    subject: str
    value: bytes

    def key(self) -> bytes:
        return self.subject.encode()

    def to_json(self) -> bytes:
        return self.value


_DATA_FIELDS = tuple(DeadlineData.model_fields)


def _plain(value: Any) -> Any:
    """A str field's value as validation gives it: a plain str (a str enum becomes its value)."""
    return value if value is None or type(value) is str else str(value)


def _or(value: Any, default: str) -> Any:
    return default if value is None else _plain(value)


_last_time: tuple[datetime | None, str] = (None, "")  # the last timestamp written, and its text


def _json_time(value: datetime) -> str:
    """A timestamp as pydantic writes it in JSON (UTC as ``Z``); a batch's events share one ``now``,
    written once (the same object: an equal one may be at another offset, another text)."""
    global _last_time
    last = _last_time
    if value is last[0]:
        return last[1]
    text = value.isoformat()
    text = text[:-6] + "Z" if text.endswith("+00:00") else text
    _last_time = (value, text)
    return text


def computed_event(change: Change, routing: tuple[str | None, str | None, str | None], now: datetime) -> EncodedEvent:
    """A change's event from the engine's Deadline, encoded straight to JSON: the same bytes as the
    pydantic-built :class:`DeadlineEvent` (``deadline_data(d.to_dict(), ...)``, then ``to_json()``)
    without validating what the engine built (tests/deadlines/unit/test_fast_events.py proves them
    equal on generated histories; fields in the contracts' order, None left out). The hot path of a
    batch (one call per deadline event): its data is built in the contract's order at once."""
    d, previous = change.deadline, change.previous
    team_id, caseworker_id, area_id = routing
    status = d.status.value
    due_on = d.due_on.isoformat()
    trigger_date, completed_on, exception = d.trigger_date, d.completed_on, d.exception
    responsible, trigger_event_id, period_text, ruleset_version, kind = (
        d.responsible, d.trigger_event_id, d.period_text, d.ruleset_version, d.kind)
    data = {
        "case_id": d.case_id, "deadline_id": d.deadline_id, "rule_id": d.rule_id, "due_on": due_on,
        "status": status, "responsible": "la" if responsible is None else _plain(responsible),
        "trigger_event_id": "" if trigger_event_id is None else _plain(trigger_event_id),
        "trigger_date": None if trigger_date is None else trigger_date.isoformat(), "legal_source": d.legal_source,
        "period_text": "" if period_text is None else _plain(period_text),
        "ruleset_version": "" if ruleset_version is None else _plain(ruleset_version), "team_id": team_id,
        "caseworker_id": caseworker_id, "area_id": area_id, "kind": "duty" if kind is None else _plain(kind),
        "flags": list(d.flags or ()), "exception": None if exception is None else _plain(exception),
        "completed_on": None if completed_on is None else completed_on.isoformat(),
        "previous_due_on": None if previous is None else previous.due_on.isoformat(),
        "previous_status": None if previous is None else previous.status,
        "change_reason": change.reason, "change_detail": change.detail or None, "reminder_offset_days": None,
    }
    event_id = _event_id(d.deadline_id, change.event_type, due_on, status, None, _discriminator(previous))
    return _encoded_data(change.event_type, event_id, now, {k: v for k, v in data.items() if v is not None})


def _encoded(event_type: str, event_id: str, now: datetime, values: dict[str, Any]) -> EncodedEvent:
    """A deadline event's JSON from its data's JSON-ready values (every field of DeadlineData; None
    left out), the envelope's fields in the contract's order, as pydantic writes them."""
    return _encoded_data(event_type, event_id, now, {k: v for k in _DATA_FIELDS if (v := values[k]) is not None})


def _encoded_data(event_type: str, event_id: str, now: datetime, data: dict[str, Any]) -> EncodedEvent:
    """The event's JSON from its data as written (fields in DeadlineData's order, no None)."""
    case_id = data["case_id"]
    # the envelope's fields in the contract's order (tests/deadlines/unit/test_fast_events.py compares
    # the bytes with pydantic's); orjson writes what json.dumps(ensure_ascii=False, separators=(",",
    # ":")) writes for these values (strings, lists of strings, None), several times faster
    return EncodedEvent(case_id, orjson.dumps({
        "specversion": "1.0", "id": event_id, "source": "ehc/deadlines", "subject": case_id,
        "time": _json_time(now), "datacontenttype": "application/json", "dataversion": "1", "type": event_type,
        "data": data}))


def _day(value: date | str | None) -> str | None:
    """A date as the contract writes it, from a date or the ISO string a stored explanation holds."""
    return value if value is None or type(value) is str else value.isoformat()


def stored_event(event_type: str, explained: dict[str, Any], routing: tuple[str | None, str | None, str | None],
                 now: datetime, discriminator: str) -> EncodedEvent:
    """A stored deadline's event (``explained``: its stored explanation with the event's changes), encoded
    straight to JSON: the same bytes as the pydantic-built one (``deadline_data(explained, *routing)`` in a
    :class:`DeadlineEvent`, then ``to_json()``; tests/deadlines/unit/test_fast_events.py proves them equal)."""
    get = explained.get
    team_id, caseworker_id, area_id = routing
    due_on, status, offset = _day(get("due_on")), _plain(get("status")), get("reminder_offset_days")
    values = {
        "case_id": get("case_id"), "deadline_id": get("deadline_id"), "rule_id": get("rule_id"), "due_on": due_on,
        "status": status, "responsible": _or(get("responsible"), "la"),
        "trigger_event_id": _or(get("trigger_event_id"), ""), "trigger_date": _day(get("trigger_date")),
        "legal_source": get("legal_source"), "period_text": _or(get("period_text"), ""),
        "ruleset_version": _or(get("ruleset_version"), ""), "team_id": team_id, "caseworker_id": caseworker_id,
        "area_id": area_id, "kind": _or(get("kind"), "duty"), "flags": list(get("flags") or ()),
        "exception": _plain(get("exception")), "completed_on": _day(get("completed_on")),
        "previous_due_on": _day(get("previous_due_on")), "previous_status": _plain(get("previous_status")),
        "change_reason": get("change_reason"), "change_detail": get("change_detail"), "reminder_offset_days": offset,
    }
    return _encoded(event_type, _event_id(values["deadline_id"], event_type, due_on, status, offset, discriminator),
                    now, values)
