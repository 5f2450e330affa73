"""The notifier's use cases.

Deadline events keep the notifier's own projection of the deadlines (for digests) and become rows
in ``notifications`` keyed by (deadline, kind, recipient): a redelivered event or a restarted
notifier finds the row already there and sends nothing twice. The sender (``sending``) claims due
rows and sends them; delivery receipts (``receipts``) settle them; digests (``digests``) are
planned by the morning job; subscriptions (``subscriptions``) say which managers hear what.
Every status change is published on ``ehc.notification-events`` through the outbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.adapters import tables
from services.notifier.adapters.channels import Channel
from services.notifier.adapters.crypto import Crypto
from services.notifier.adapters.notify import DeliveryReceipt
from services.notifier.domain.digests import WorkingDays, case_url, scope_name
from services.notifier.domain.policy import RateLimiter, RetryPolicy, is_historical, quiet_hours_defer
from services.notifier.domain.recipients import (
    CURRENT_EVENTS,
    DECISION_FOLLOWERS,
    DECISION_TEMPLATES,
    FAMILY_MILESTONES,
    Recipient,
    decision_facts,
    is_council_duty,
    may_tell_family,
    plan_for_deadline_event,
)
from services.notifier.domain.subscriptions import BREACH_KINDS
from services.notifier.service_layer.data_quality import store_data_quality
from services.notifier.service_layer.digests import DigestJobs, case_references, sealed, view_of
from services.notifier.service_layer.notifications import (
    ChannelRoute,
    Deps,
    PlanItem,
    caseworker_recipients,
    family_recipients,
    insert_stmt,
    lock_cases,
    plan_notifications,
    upsert_stmt,
)
from services.notifier.service_layer.receipts import ReceiptResult, handle_delivery_receipt
from services.notifier.service_layer.sending import Limits, Sender
from services.notifier.service_layer.subscriptions import SubscriptionService
from shared import topics
from shared.contracts import CaseDataQualityEvent, ContactsUpdated, DeadlineEvent
from shared.contracts.case_events import CaseEventEnvelope
from shared.logging import get_logger
from shared.messaging.inbox import mark_processed, mark_processed_many
from shared.settings import KafkaSettings, NotifierSettings

log = get_logger(__name__)
CONSUMER = "notifier"
SCOPE_ORDER = {"team": 0, "area": 1, "all": 2}  # the most specific subscription names the alert's scope


def _system_clock() -> datetime:
    return datetime.now(UTC)


def limits_from_settings(cfg: NotifierSettings, clock: Callable[[], datetime]) -> Limits:
    texts = cfg.texts_per_number_per_hour
    return Limits(
        notify=RateLimiter(per_minute=cfg.notify_rate_per_minute, burst=cfg.notify_rate_burst,
                           per_number_per_hour=texts, clock=clock),
        # other text channels: no provider-wide limit here, only the per-number one
        texts=RateLimiter(per_minute=10**9, burst=10**9, per_number_per_hour=texts, clock=clock),
    )


class NotifierService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], kafka: KafkaSettings, cfg: NotifierSettings,
                 crypto: Crypto, channels: Mapping[str, Channel], render: Callable[..., Any],
                 clock: Callable[[], datetime] = _system_clock, retry: RetryPolicy | None = None,
                 calendar: WorkingDays | None = None, limits: Limits | None = None) -> None:
        self.wakeup = asyncio.Event()
        self.deps = Deps(sessions=sessions, crypto=crypto, cfg=cfg, clock=clock,
                         audit_topic=kafka.topic(topics.NOTIFICATION_EVENTS), route=ChannelRoute.from_settings(cfg),
                         retry=retry or RetryPolicy(), wakeup=self.wakeup)
        self.sender = Sender(self.deps, channels, render, limits or limits_from_settings(cfg, clock),
                             batch=cfg.sender_batch, concurrency=cfg.sender_concurrency, workers=cfg.sender_workers,
                             lease_seconds=cfg.sender_lease_seconds, sweep_seconds=cfg.sender_sweep_seconds)
        self.digests = DigestJobs(self.deps, calendar if calendar is not None else _WeekdaysOnly())
        self.subscriptions = SubscriptionService(sessions, crypto, clock)
        self._sessions = sessions
        self.timeline_link: Callable[[str], str] | None = None  # a family's signed link (set by bootstrap)
        self._crypto = crypto
        self._cfg = cfg

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.deps.clock

    # --- inputs ------------------------------------------------------------------------------
    async def handle_case_events(self, events: Sequence[CaseEventEnvelope]) -> int:
        """Keep each case's caseworker, team and area (from ehc.case.assigned), also in the projection."""
        n = 0
        async with self._sessions() as session, session.begin():
            for event in events:
                if event.type != "ehc.case.assigned":  # type: ignore[attr-defined]
                    continue
                if not await mark_processed(session, tables.processed_events, CONSUMER, event.id):
                    continue
                d = event.data  # type: ignore[attr-defined]
                routing = {"caseworker_id": d.caseworker_id, "team_id": d.team_id, "area_id": d.area_id}
                await session.execute(upsert_stmt(session, tables.case_routing,
                                                  {"case_id": event.subject, **routing, "updated_at": self.clock()},
                                                  ["case_id"]))
                await session.execute(update(tables.deadline_view)
                                      .where(tables.deadline_view.c.case_id == event.subject).values(**routing))
                n += 1
        return n

    async def handle_contacts(self, items: Sequence[tuple[str, ContactsUpdated | None]]) -> int:
        """Store contacts encrypted; a tombstone (None) erases them (and nothing more goes to the family:
        the sender checks consent again before every send).

        Contacts may reach the notifier after the deadline events of their case (a council records
        them after the request, or the notifier was down or behind): the family milestones still
        current in the notifier's projection are planned now, under the same idempotency keys as
        the events plan them, so whichever arrives first, each text is planned once. Returns how
        many notifications were planned."""
        stored: set[str] = set()
        async with self._sessions() as session, session.begin():
            await lock_cases(session, {case_id for case_id, _ in items})
            for case_id, update_ in items:
                if update_ is None:
                    await session.execute(delete(tables.contacts).where(tables.contacts.c.case_id == case_id))
                    stored.discard(case_id)
                    continue
                blob = self._crypto.encrypt_json(update_.data.model_dump(mode="json"))
                await session.execute(upsert_stmt(session, tables.contacts,
                                                  {"case_id": case_id, "payload_encrypted": blob,
                                                   "updated_at": self.clock()}, ["case_id"]))
                stored.add(case_id)
            planned = len(await plan_notifications(session, self.deps, await self._current_milestones(session,
                                                                                                     stored)))
        if planned:
            self.wakeup.set()
        return planned

    async def _current_milestones(self, session: AsyncSession, case_ids: set[str]) -> list[PlanItem]:
        """The family texts of the cases' deadlines as the projection has them now (see CURRENT_EVENTS),
        planned as the deadline events that told of them plan them (family recipients only; the same
        test of what is history)."""
        families = await self._families(session, case_ids)
        if not families:
            return []
        v = tables.deadline_view
        rows = (await session.execute(select(v).where(v.c.case_id.in_(list(families)))
                                      .order_by(v.c.case_id, v.c.deadline_id))).all()
        views: dict[str, list[Any]] = {}
        for row in rows:
            views.setdefault(row.case_id, []).append(view_of(row))
        now = self.clock()
        items: list[PlanItem] = []
        for row in rows:
            deadline = _ProjectedDeadline.of(row)
            family, sendiass, child = families[row.case_id]
            for event_type in CURRENT_EVENTS.get(row.status, ()):
                event = _ProjectedEvent(event_type, deadline)
                if not family or not self._may_tell_family(event):
                    continue
                context = self._family_context(deadline, family, sendiass, child)
                items.extend(self._plan_items(event, None, family, [], context, now, views, hold=None))
        return items

    def _family_context(self, d: Any, family: list[Recipient], sendiass: str | None,
                        child: str | None) -> dict[str, Any]:
        context = self._context(d, sendiass)
        if child and family:  # family emails only (a council setting); sealed while stored
            context["child_first_name_encrypted"] = sealed(self._crypto, child)
        return context

    def _plan_items(self, event: Any, caseworker: Recipient | None, family: list[Recipient],
                    managers: list[Recipient], context: dict[str, Any], now: datetime,
                    views: dict[str, list[Any]], hold: datetime | None) -> list[PlanItem]:
        """What one deadline event (or a deadline's current state) calls for, as rows to plan; what
        happened long ago is recorded as historical (policy.is_historical), never sent."""
        d = event.data
        historical = is_historical(event.type, d, now, self._cfg.historical_after_days,
                                   event_time=getattr(event, "time", None))
        items = []
        for item in plan_for_deadline_event(event, caseworker, family, managers, context,
                                            self._cfg.caseworker_reminders, self._cfg.family_reminder_days):
            not_before = None
            if item.template in DECISION_TEMPLATES:  # what was decided, and the family's deadlines
                item.context.update(decision_facts(d.rule_id, d.completed_on, views.get(d.case_id, [])))
                not_before = hold
            items.append(PlanItem(item.idempotency_key(d.deadline_id), d.case_id, d.deadline_id, item.kind,
                                  item.recipient, item.template, item.context, historical=historical,
                                  not_before=not_before))
        return items

    async def set_caseworker_email(self, caseworker_id: str, email: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(upsert_stmt(session, tables.caseworkers,
                                              {"caseworker_id": caseworker_id,
                                               "email_encrypted": self._crypto.encrypt(email),
                                               "updated_at": self.clock()}, ["caseworker_id"]))

    async def handle_deadline_events(self, events: Sequence[DeadlineEvent]) -> int:
        """Project each event and plan the notifications it calls for, a batch at a time (each read
        and write is one statement for the whole batch). Returns how many notifications were planned."""
        if not events:
            return 0
        async with self._sessions() as session, session.begin():
            await lock_cases(session, {e.data.case_id for e in events})
            fresh = await mark_processed_many(session, tables.processed_events, CONSUMER, [e.id for e in events])
            events = [e for e in dict((e.id, e) for e in events).values() if e.id in fresh]
            if not events:
                return 0
            cases = await self._routing(session, {e.data.case_id for e in events})
            await self._project(session, events, cases)
            caseworkers = await caseworker_recipients(
                session, self._crypto, (_assignment(e.data, cases.get(e.data.case_id))[0] for e in events))
            told = [e for e in events if self._may_tell_family(e)]
            told_ids = {e.id for e in told}
            families = await self._families(session, {e.data.case_id for e in told})
            breach_subs = await self._breach_subscriptions(session, events)
            views = await self._case_views(session, {e.data.case_id for e in events if _about_a_decision(e)})
            references = await case_references(session, self._crypto, {e.data.case_id for e in events})
            items: list[PlanItem] = []
            now = self.clock()
            hold = now + timedelta(seconds=self._cfg.decision_hold_seconds)
            for event in events:
                d = event.data
                caseworker_id, team_id, area_id = _assignment(d, cases.get(d.case_id))
                family, sendiass, child = families.get(d.case_id, ([], None, None)) if event.id in told_ids \
                    else ([], None, None)
                managers = self._managers(event, breach_subs, team_id, area_id, now)
                context = self._family_context(d, family, sendiass, child)
                if d.case_id in references:  # for staff only; kept sealed in the stored context
                    context["case_reference_encrypted"] = sealed(self._crypto, references[d.case_id])
                items.extend(self._plan_items(event, caseworkers.get(caseworker_id or ""), family, managers,
                                              context, now, views, hold))
            planned = len(await plan_notifications(session, self.deps, items))
            await self._complete_held_decisions(session, events, views)
        if planned:
            self.wakeup.set()
        return planned

    def _may_tell_family(self, event: DeadlineEvent) -> bool:
        return may_tell_family(event, self._cfg.family_reminder_days)

    async def _case_views(self, session: AsyncSession, case_ids: set[str]) -> dict[str, list[Any]]:
        """The projected deadlines of these cases (after this batch), for decision texts."""
        if not case_ids:
            return {}
        v = tables.deadline_view
        found: dict[str, list[Any]] = {}
        for row in (await session.execute(select(v).where(v.c.case_id.in_(case_ids)))).all():
            found.setdefault(row.case_id, []).append(view_of(row))
        return found

    async def _complete_held_decisions(self, session: AsyncSession, events: list[DeadlineEvent],
                                       views: dict[str, list[Any]]) -> None:
        """A decision text still held when the deadlines its notice started arrive (a later batch): fill
        them in. Only rows not yet sent (pending or deferred) change."""
        cases = {e.data.case_id for e in events if e.data.rule_id in DECISION_FOLLOWERS}
        if not cases:
            return
        n = tables.notifications
        held = (await session.execute(select(n.c.notification_id, n.c.case_id, n.c.context, n.c.deadline_id).where(
            n.c.case_id.in_(cases), n.c.template.in_(sorted(DECISION_TEMPLATES)),
            n.c.status.in_(["pending", "deferred"])))).all()
        for row in held:
            context = dict(row.context)
            rule_id, notice_on = context.get("rule_id"), context.get("completed_on")
            facts = decision_facts(str(rule_id), date.fromisoformat(notice_on) if notice_on else None,
                                   views.get(row.case_id, []))
            if {k: context.get(k) for k in facts} != facts:
                await session.execute(update(n).where(n.c.notification_id == row.notification_id)
                                      .values(context={**context, **facts}))

    async def _routing(self, session: AsyncSession, case_ids: set[str]) -> dict[str, tuple[Any, Any, Any]]:
        r = tables.case_routing
        rows = (await session.execute(select(r.c.case_id, r.c.caseworker_id, r.c.team_id, r.c.area_id)
                                      .where(r.c.case_id.in_(case_ids)))).all()
        return {row.case_id: (row.caseworker_id, row.team_id, row.area_id) for row in rows}

    async def _project(self, session: AsyncSession, events: list[DeadlineEvent],
                       cases: dict[str, tuple[Any, Any, Any]]) -> None:
        """The notifier's own projection of the deadlines (one upsert for the batch); an event older
        than the one stored for its deadline changes nothing."""
        now = self.clock()
        newest: dict[str, DeadlineEvent] = {}
        started: dict[str, Any] = {}
        for event in events:  # a deadline twice in one batch: the newest event wins
            seen = newest.get(event.data.deadline_id)
            if seen is None or seen.time <= event.time:
                newest[event.data.deadline_id] = event
            if event.data.trigger_date is not None:  # ... but the legal start, once given, is kept
                started.setdefault(event.data.deadline_id, event.data.trigger_date)
        values = []
        for event in newest.values():
            d = event.data
            caseworker_id, team_id, area_id = _assignment(d, cases.get(d.case_id))
            values.append({"deadline_id": d.deadline_id, "case_id": d.case_id, "rule_id": d.rule_id,
                           "due_on": d.due_on, "status": d.status, "responsible": d.responsible, "kind": d.kind,
                           "flags": list(d.flags), "legal_source": d.legal_source[:200], "team_id": team_id,
                           "caseworker_id": caseworker_id, "area_id": area_id,
                           "opened_on": d.trigger_date or started.get(d.deadline_id),
                           "completed_on": d.completed_on, "first_seen_at": now,
                           "event_time": event.time.astimezone(UTC),  # one offset, so SQLite compares right
                           "updated_at": now})
        v = tables.deadline_view
        stmt = insert_stmt(session, v)
        changed = {k: stmt.excluded[k] for k in values[0] if k not in ("deadline_id", "first_seen_at", "opened_on")}
        changed["opened_on"] = func.coalesce(stmt.excluded.opened_on, v.c.opened_on)  # the legal start, once known
        await session.execute(stmt.on_conflict_do_update(index_elements=["deadline_id"], set_=changed,
                                                         where=v.c.event_time <= stmt.excluded.event_time), values)

    async def _families(self, session: AsyncSession, case_ids: set[str]
                        ) -> dict[str, tuple[list[Recipient], str | None, str | None]]:
        """case_id -> (the family members who consent, the SENDIASS contact, the child's first name)."""
        if not case_ids:
            return {}
        c = tables.contacts
        rows = (await session.execute(select(c).where(c.c.case_id.in_(case_ids)))).all()
        found = {}
        for row in rows:
            payload = self._crypto.decrypt_json(row.payload_encrypted)
            child = payload.get("child_first_name") if self._cfg.use_child_first_name else None
            found[row.case_id] = (family_recipients(self._crypto, row.case_id, payload),
                                  payload.get("sendiass_contact"), child)
        return found

    async def _breach_subscriptions(self, session: AsyncSession, events: list[DeadlineEvent]) -> list[Any]:
        if not any(e.type == "deadline.breached" and is_council_duty(e.data) for e in events):
            return []
        s = tables.subscriptions
        return list((await session.execute(select(s).where(s.c.active.is_(True),
                                                          s.c.kind.in_(BREACH_KINDS)))).all())

    def _managers(self, event: DeadlineEvent, subs: list[Any], team_id: str | None,
                  area_id: str | None, now: datetime) -> list[Recipient]:
        if event.type != "deadline.breached" or not is_council_duty(event.data):
            return []
        if quiet_hours_defer(now, self._cfg.manager_quiet_hours_start, self._cfg.manager_quiet_hours_end):
            subs = [sub for sub in subs if sub.kind == "breach_immediate"]  # the others: the morning roll-up
        matching = [sub for sub in subs if sub.scope == "all" or (sub.scope == "team" and sub.scope_id == team_id)
                    or (sub.scope == "area" and sub.scope_id == area_id)]
        managers: dict[str, Recipient] = {}
        for sub in sorted(matching, key=lambda x: (SCOPE_ORDER.get(x.scope, 9), x.subscription_id)):
            # one alert per manager and channel, however many of their subscriptions match
            ref = self._crypto.fingerprint("manager", sub.manager_ref, sub.channel)
            if ref not in managers:
                name = scope_name(sub.scope, sub.scope_id, self._cfg.council_name, self._cfg.team_names,
                                  self._cfg.area_names)
                managers[ref] = Recipient("manager", ref, sub.channel, self._crypto.decrypt(sub.address_encrypted),
                                          scope_name=name)
        return list(managers.values())

    def _context(self, d: Any, sendiass: str | None = None) -> dict[str, Any]:
        """Template variables of a deadline (an event's data, or the projection's): dates, rule, legal
        source, council links: never names or contact details. Each template takes only the fields
        its spec allows (a family text fewer still)."""
        cfg = self._cfg
        return {"case_id": d.case_id, "rule_id": d.rule_id, "due_on": d.due_on.isoformat(), "status": d.status,
                "legal_source": d.legal_source, "period_text": d.period_text, "flags": list(d.flags),
                "exception": d.exception, "case_url": case_url(cfg.case_url_base, d.case_id),
                "working_days_left": d.reminder_offset_days, "council_name": cfg.council_name,
                "council_phone": cfg.council_phone or None, "info_url": cfg.info_url,
                "sendiass_contact": sendiass or cfg.sendiass_contact or None, "breaches_url": cfg.breaches_url,
                "comments_by": d.due_on.isoformat() if d.rule_id == "draft.representations" else None,
                "received_on": d.trigger_date.isoformat() if d.trigger_date else None,
                "completed_on": d.completed_on.isoformat() if d.completed_on else None,
                "link": cfg.family_link_base or cfg.info_url,
                **_date_change(d),
                "timeline_url": self.timeline_link(d.case_id) if self.timeline_link else None}

    # --- data quality (issue 11 item 5) -------------------------------------------------------------
    async def handle_data_quality_events(self, events: Sequence[CaseDataQualityEvent]) -> int:
        """Keep each case's data-quality warnings for the caseworker's digest ("Data to check")."""
        return await store_data_quality(self._sessions, CONSUMER, events, self.clock())

    # --- receipts, sending, digests ----------------------------------------------------------------
    async def handle_delivery_receipt(self, receipt: DeliveryReceipt) -> ReceiptResult:
        return await handle_delivery_receipt(self.deps, receipt)

    async def send_due(self, limit: int | None = None) -> int:
        return await self.sender.send_due(limit)

    async def sweep_stuck(self) -> int:
        return await self.sender.sweep_stuck()

    async def run_sender(self, idle_seconds: float = 0.5) -> None:
        await self.sender.run(idle_seconds)

    async def stop_sender(self) -> None:
        await self.sender.stop(self._cfg.sender_stop_seconds)

    async def run_morning(self, now: datetime | None = None, *, catch_up: bool = False) -> int:
        return await self.digests.run_morning(now, catch_up=catch_up)


def _about_a_decision(event: DeadlineEvent) -> bool:
    d = event.data
    return FAMILY_MILESTONES.get((event.type, d.rule_id)) in DECISION_TEMPLATES or d.rule_id in DECISION_FOLLOWERS


def _date_change(d: Any) -> dict[str, Any]:
    """A moved date (deadline.changed): the date before and why (a closed word; the detail for staff)."""
    previous = getattr(d, "previous_due_on", None)
    return {"previous_due_on": previous.isoformat() if previous else None,
            "change_reason": getattr(d, "change_reason", None), "change_detail": getattr(d, "change_detail", None)}


def _assignment(data: Any, routing: tuple[Any, Any, Any] | None) -> tuple[str | None, str | None, str | None]:
    """The case's caseworker, team and area: the latest ehc.case.assigned, else the deadline event's."""
    caseworker_id, team_id, area_id = routing or (None, None, None)
    return caseworker_id or data.caseworker_id, team_id or data.team_id, area_id or data.area_id


@dataclass(frozen=True)
class _ProjectedDeadline:
    """A deadline as the notifier's projection (``deadline_view``) has it, with the attribute names of
    an event's data that planning, the stale test and the templates' context read."""

    case_id: str
    deadline_id: str
    rule_id: str
    due_on: date
    status: str
    responsible: str
    flags: list[str]
    legal_source: str
    trigger_date: date | None
    completed_on: date | None
    period_text: str = ""
    exception: str | None = None
    reminder_offset_days: int | None = None

    @classmethod
    def of(cls, row: Any) -> _ProjectedDeadline:
        return cls(row.case_id, row.deadline_id, row.rule_id, row.due_on, row.status, row.responsible,
                   list(row.flags or []), row.legal_source, row.opened_on, row.completed_on)


@dataclass(frozen=True)
class _ProjectedEvent:
    """What a deadline event would say of a deadline's current state: planning reads its type and data."""

    type: str
    data: _ProjectedDeadline

    @property
    def id(self) -> str:  # only an exception nudge's kind uses it, and CURRENT_EVENTS has none
        return f"{self.data.deadline_id}:{self.type}"


class _WeekdaysOnly:
    """Used only when no calendar is handed in (unit tests of other use cases): Monday to Friday."""

    def is_working_day(self, day: Any) -> bool:
        return bool(day.weekday() < 5)


__all__ = ["CONSUMER", "NotifierService", "limits_from_settings"]
