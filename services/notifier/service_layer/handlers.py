"""The notifier's use cases.

Deadline events become rows in ``notifications`` keyed by (deadline, kind, recipient): a
redelivered event or a restarted notifier finds the row already there and sends nothing twice.
A sender loop claims due rows (FOR UPDATE SKIP LOCKED on PostgreSQL), marks them ``sending``,
sends outside the transaction, then records the outcome; every status change is published on
``ehc.notification-events`` through the outbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.adapters import tables
from services.notifier.adapters.channels import Channel, OutgoingMessage, PermanentSendError, SendError
from services.notifier.adapters.crypto import Crypto
from services.notifier.domain.policy import (
    InvalidPhoneNumber,
    NotificationStatus,
    RetryPolicy,
    is_quiet_hours_channel,
    normalise_uk_mobile,
    quiet_hours_defer,
)
from services.notifier.domain.recipients import PlannedNotification, Recipient, plan_for_deadline_event
from shared import topics
from shared.contracts import ContactsUpdated, DeadlineEvent, NotificationData, NotificationEvent
from shared.contracts.case_events import CaseEventEnvelope
from shared.logging import get_logger
from shared.messaging.inbox import mark_processed
from shared.messaging.outbox import add_to_outbox
from shared.settings import KafkaSettings, NotifierSettings

log = get_logger(__name__)
CONSUMER = "notifier"
STUCK_AFTER = timedelta(minutes=10)


def pseudonym(*parts: str) -> str:
    """A stable reference for a recipient that reveals nothing (for keys, logs and audit)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class ChannelRoute:
    email: str  # smtp | notify_email | file
    sms: str  # notify_sms | sms_gateway | file


class NotifierService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], kafka: KafkaSettings, cfg: NotifierSettings,
                 crypto: Crypto, channels: dict[str, Channel], render: Callable[..., Any],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 retry: RetryPolicy | None = None) -> None:
        self._sessions = sessions
        self._audit_topic = kafka.topic(topics.NOTIFICATION_EVENTS)
        self._cfg = cfg
        self._crypto = crypto
        self._channels = channels
        self._render = render
        self.clock = clock
        self._retry = retry or RetryPolicy()
        email = {"smtp": "smtp", "notify": "notify_email", "file": "file"}[cfg.email_channel]
        sms = {"notify": "notify_sms", "sms_gateway": "sms_gateway", "file": "file"}[cfg.sms_channel]
        self._route = ChannelRoute(email=email, sms=sms)
        self.wakeup = asyncio.Event()

    # --- inputs ------------------------------------------------------------------------------
    async def handle_case_events(self, events: Sequence[CaseEventEnvelope]) -> int:
        """Keep each case's caseworker and team (from ehc.case.assigned)."""
        n = 0
        async with self._sessions() as session, session.begin():
            for event in events:
                if event.type != "ehc.case.assigned":
                    continue
                if not await mark_processed(session, tables.processed_events, CONSUMER, event.id):
                    continue
                d = event.data
                values = {"case_id": event.subject, "caseworker_id": d.caseworker_id,  # type: ignore[attr-defined]
                          "team_id": d.team_id, "area_id": d.area_id,  # type: ignore[attr-defined]
                          "updated_at": self.clock()}
                await session.execute(_upsert(session, tables.case_routing, values, ["case_id"]))
                n += 1
        return n

    async def handle_contacts(self, items: Sequence[tuple[str, ContactsUpdated | None]]) -> None:
        """Store contacts encrypted; a tombstone (None) erases them."""
        async with self._sessions() as session, session.begin():
            for case_id, update_ in items:
                if update_ is None:
                    await session.execute(delete(tables.contacts).where(tables.contacts.c.case_id == case_id))
                    continue
                blob = self._crypto.encrypt_json(update_.data.model_dump(mode="json"))
                await session.execute(_upsert(session, tables.contacts,
                                              {"case_id": case_id, "payload_encrypted": blob,
                                               "updated_at": self.clock()}, ["case_id"]))

    async def set_caseworker_email(self, caseworker_id: str, email: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(_upsert(session, tables.caseworkers,
                                          {"caseworker_id": caseworker_id,
                                           "email_encrypted": self._crypto.encrypt(email),
                                           "updated_at": self.clock()}, ["caseworker_id"]))

    async def handle_deadline_events(self, events: Sequence[DeadlineEvent]) -> int:
        """Plan the notifications each event calls for. Returns how many new rows were planned."""
        planned = 0
        async with self._sessions() as session, session.begin():
            for event in events:
                if not await mark_processed(session, tables.processed_events, CONSUMER, event.id):
                    continue
                caseworker, family, managers, sendiass = await self._recipients(session, event)
                context = self._context(event, sendiass)
                for item in plan_for_deadline_event(event, caseworker, family, managers, context):
                    planned += await self._insert_notification(session, event, item)
        if planned:
            self.wakeup.set()
        return planned

    async def _recipients(self, session: AsyncSession, event: DeadlineEvent
                          ) -> tuple[Recipient | None, list[Recipient], list[Recipient], str | None]:
        d = event.data
        routing = (await session.execute(select(tables.case_routing)
                                         .where(tables.case_routing.c.case_id == d.case_id))).first()
        caseworker_id = d.caseworker_id or (routing.caseworker_id if routing else None)
        team_id = d.team_id or (routing.team_id if routing else None)
        area_id = d.area_id or (routing.area_id if routing else None)
        caseworker = None
        if caseworker_id:
            row = (await session.execute(select(tables.caseworkers)
                                         .where(tables.caseworkers.c.caseworker_id == caseworker_id))).first()
            if row is not None:
                caseworker = Recipient("caseworker", caseworker_id, "email", self._crypto.decrypt(row.email_encrypted))
            else:
                log.warning("notifier.caseworker_unknown", case_id=d.case_id, caseworker_id=caseworker_id)
        family: list[Recipient] = []
        sendiass: str | None = None
        contacts = (await session.execute(select(tables.contacts)
                                          .where(tables.contacts.c.case_id == d.case_id))).first()
        if contacts is not None:
            payload = self._crypto.decrypt_json(contacts.payload_encrypted)
            sendiass = payload.get("sendiass_contact")
            for i, c in enumerate(payload.get("contacts", [])):
                if not c.get("consent") or c.get("channel") == "none":
                    continue  # only with recorded consent
                address = c.get("phone") if c.get("channel") == "sms" else c.get("email")
                if address:
                    family.append(Recipient("family", pseudonym("family", d.case_id, str(i)), c["channel"], address,
                                            c.get("language", "en")))
        managers: list[Recipient] = []
        subs = (await session.execute(select(tables.subscriptions).where(and_(
            tables.subscriptions.c.active.is_(True), tables.subscriptions.c.kind == "breach",
            or_(tables.subscriptions.c.scope == "all",
                and_(tables.subscriptions.c.scope == "team", tables.subscriptions.c.scope_id == team_id),
                and_(tables.subscriptions.c.scope == "area", tables.subscriptions.c.scope_id == area_id)))))).all()
        for s in subs:
            address = self._crypto.decrypt(s.address_encrypted)
            managers.append(Recipient("manager", s.subscription_id, s.channel, address))
        return caseworker, family, managers, sendiass

    def _context(self, event: DeadlineEvent, sendiass: str | None = None) -> dict[str, Any]:
        """Template variables: dates, rule, legal source, council links: never names or contact details.
        Each template takes only the fields its spec allows (a family text fewer still)."""
        d = event.data
        cfg = self._cfg
        return {"case_id": d.case_id, "rule_id": d.rule_id, "due_on": d.due_on.isoformat(), "status": d.status,
                "legal_source": d.legal_source, "period_text": d.period_text, "flags": list(d.flags),
                "exception": d.exception, "case_url": f"{cfg.case_url_base.rstrip('/')}/{d.case_id}/deadlines",
                "working_days_left": d.reminder_offset_days, "council_name": cfg.council_name,
                "council_phone": cfg.council_phone or None, "info_url": cfg.info_url,
                "sendiass_contact": sendiass or cfg.sendiass_contact or None,
                "comments_by": d.due_on.isoformat() if d.rule_id == "draft.representations" else None,
                "received_on": d.trigger_date.isoformat() if d.trigger_date else None}

    async def _insert_notification(self, session: AsyncSession, event: DeadlineEvent,
                                   item: PlannedNotification) -> int:
        now = self.clock()
        recipient = item.recipient
        channel = self._route.sms if recipient.channel == "sms" else self._route.email
        address = recipient.address
        status = NotificationStatus.PENDING
        next_at = now
        error = None
        if recipient.channel == "sms":
            try:
                address = normalise_uk_mobile(address)
            except InvalidPhoneNumber as exc:
                status, error = NotificationStatus.FAILED, exc.reason
            if status is NotificationStatus.PENDING and is_quiet_hours_channel(recipient.kind, "sms"):
                deferred = quiet_hours_defer(now, self._cfg.quiet_hours_start, self._cfg.quiet_hours_end)
                if deferred is not None:
                    status, next_at = NotificationStatus.DEFERRED, deferred
        notification_id = str(uuid.uuid4())
        key = item.idempotency_key(event.data.deadline_id)
        result = await session.execute(_insert(session, tables.notifications).values(
            notification_id=notification_id, idempotency_key=key, case_id=event.data.case_id,
            deadline_id=event.data.deadline_id, kind=item.kind, recipient_kind=recipient.kind,
            recipient_ref=recipient.ref, channel=channel, address_encrypted=self._crypto.encrypt(address),
            template=item.template, language=recipient.language, context=item.context, status=str(status),
            attempts=0, next_attempt_at=next_at, last_error=error, created_at=now, updated_at=now,
        ).on_conflict_do_nothing())
        if not result.rowcount:  # type: ignore[attr-defined]
            return 0
        await self._audit(session, notification_id, event.data.case_id, event.data.deadline_id, item.kind,
                          recipient.kind, recipient.ref, channel, str(status), 0, error)
        return 1

    async def _audit(self, session: AsyncSession, notification_id: str, case_id: str | None,
                     deadline_id: str | None, kind: str, recipient_kind: str, recipient_ref: str, channel: str,
                     status: str, attempt: int, error: str | None, provider_reference: str | None = None) -> None:
        event = NotificationEvent(
            id=str(uuid.uuid4()), source="ehc/notifier", subject=case_id or "none", time=self.clock(),
            data=NotificationData(notification_id=notification_id, case_id=case_id, deadline_id=deadline_id,
                                  kind=kind, recipient_kind=recipient_kind, recipient_ref=recipient_ref,  # type: ignore[arg-type]
                                  channel=channel, status=status, attempt=attempt, error=error,  # type: ignore[arg-type]
                                  provider_reference=provider_reference))
        await add_to_outbox(session, tables.outbox, self._audit_topic, event)

    # --- sending -----------------------------------------------------------------------------
    async def send_due(self, limit: int = 200, concurrency: int = 50) -> int:
        """Claim due notifications, send them, record the outcome. Returns how many were attempted."""
        now = self.clock()
        n = tables.notifications
        async with self._sessions() as session, session.begin():
            q = (select(n).where(and_(n.c.status.in_(["pending", "deferred", "temporary-failure"]),
                                      n.c.next_attempt_at <= now))
                 .order_by(n.c.next_attempt_at).limit(limit))
            if session.bind.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            rows = (await session.execute(q)).all()
            if not rows:
                return 0
            await session.execute(update(n).where(n.c.notification_id.in_([r.notification_id for r in rows]))
                                  .values(status="sending", attempts=n.c.attempts + 1, updated_at=now))
        semaphore = asyncio.Semaphore(concurrency)

        async def one(row: Any) -> tuple[Any, Any, Any]:
            async with semaphore:
                return row, *(await self._send_one(row))

        outcomes = await asyncio.gather(*(one(r) for r in rows))
        async with self._sessions() as session, session.begin():
            for row, result, error in outcomes:
                await self._record_outcome(session, row, result, error)
        return len(rows)

    async def _send_one(self, row: Any) -> tuple[Any, SendError | None]:
        try:
            channel_kind = "sms" if row.channel in ("notify_sms", "sms_gateway") else "email"
            rendered = self._render(row.template, row.language, channel_kind, row.context)
            message = OutgoingMessage(notification_id=row.notification_id, channel=row.channel,
                                      to=self._crypto.decrypt(row.address_encrypted), template=row.template,
                                      personalisation=rendered.personalisation,
                                      subject=rendered.subject, body=rendered.body, language=row.language)
            return await self._channels[row.channel].send(message), None
        except SendError as exc:
            return None, exc
        except Exception as exc:  # a template or configuration bug: final, and visible
            return None, PermanentSendError(f"{type(exc).__name__}: {exc}"[:300])

    async def _record_outcome(self, session: AsyncSession, row: Any, result: Any, error: SendError | None) -> None:
        n = tables.notifications
        now = self.clock()
        attempt = row.attempts + 1
        if error is None:
            status, next_at, reason, ref = str(result.status), row.next_attempt_at, None, result.provider_reference
        else:
            retry_at = self._retry.next_attempt_at(attempt, error, now)
            status = "temporary-failure" if retry_at else "failed"
            next_at, reason, ref = retry_at or now, error.reason[:300], None
        await session.execute(update(n).where(n.c.notification_id == row.notification_id).values(
            status=status, next_attempt_at=next_at, last_error=reason, provider_reference=ref, updated_at=now))
        await self._audit(session, row.notification_id, row.case_id, row.deadline_id, row.kind, row.recipient_kind,
                          row.recipient_ref, row.channel, status, attempt, reason, ref)
        log.info("notifier.attempt", notification_id=row.notification_id, kind=row.kind, channel=row.channel,
                 status=status, attempt=attempt)

    async def sweep_stuck(self) -> int:
        """A crash between claiming and recording leaves rows in ``sending``. We cannot know whether
        the provider got them, and a family must never be told twice: mark them technical-failure
        (visible, audited) rather than resend."""
        n = tables.notifications
        cutoff = self.clock() - STUCK_AFTER
        async with self._sessions() as session, session.begin():
            stuck = and_(n.c.status == "sending", n.c.updated_at < cutoff)
            rows = (await session.execute(select(n).where(stuck))).all()
            for row in rows:
                await session.execute(update(n).where(n.c.notification_id == row.notification_id)
                                      .values(status="technical-failure", last_error="interrupted while sending"))
                await self._audit(session, row.notification_id, row.case_id, row.deadline_id, row.kind,
                                  row.recipient_kind, row.recipient_ref, row.channel, "technical-failure",
                                  row.attempts, "interrupted while sending")
        return len(rows)

    async def run_sender(self, idle_seconds: float = 0.5) -> None:
        while True:
            try:
                if await self.send_due():
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notifier.sender_failed", error=type(exc).__name__)
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), idle_seconds)
            except TimeoutError:
                pass


def _insert(session: AsyncSession, table: Any) -> Any:
    return pg_insert(table) if session.bind.dialect.name == "postgresql" else sqlite_insert(table)


def _upsert(session: AsyncSession, table: Any, values: dict[str, Any], keys: list[str]) -> Any:
    stmt = _insert(session, table).values(**values)
    return stmt.on_conflict_do_update(index_elements=keys, set_={k: v for k, v in values.items() if k not in keys})
