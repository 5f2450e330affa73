"""Notification rows: planned once under an idempotency key, moved only by guarded transitions,
every change audited on ``ehc.notification-events`` through the outbox, final failures reported
to the caseworker.

Shared by the use cases (deadline events, digests, the sender, delivery receipts). Every function
takes the caller's session: the row, its audit events and any alert are one transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.adapters import tables
from services.notifier.adapters.crypto import Crypto
from services.notifier.domain.digests import case_url
from services.notifier.domain.policy import (
    HISTORICAL_REASON,
    InvalidPhoneNumber,
    NotificationStatus,
    RetryPolicy,
    is_quiet_hours_channel,
    normalise_uk_mobile,
    quiet_hours_defer,
    transition,
)
from services.notifier.domain.recipients import Recipient
from shared.contracts import NotificationData, NotificationEvent
from shared.db import upsertable_insert
from shared.logging import get_logger, scrub
from shared.settings import NotifierSettings

log = get_logger(__name__)
S = NotificationStatus
SMS_CHANNELS = frozenset({"notify_sms", "sms_gateway"})


@dataclass(frozen=True)
class ChannelRoute:
    email: str  # smtp | notify_email | file
    sms: str  # notify_sms | sms_gateway | file

    @classmethod
    def from_settings(cls, cfg: NotifierSettings) -> ChannelRoute:
        email = {"smtp": "smtp", "notify": "notify_email", "file": "file"}[cfg.email_channel]
        sms = {"notify": "notify_sms", "sms_gateway": "sms_gateway", "file": "file"}[cfg.sms_channel]
        return cls(email=email, sms=sms)

    def channel_for(self, recipient_channel: str) -> str:
        return self.sms if recipient_channel == "sms" else self.email


def channel_kind(channel: str, address: str | None = None) -> str:
    """sms or email: the channel says it, except the file sink, which takes both."""
    if channel in SMS_CHANNELS:
        return "sms"
    if channel == "file" and address is not None and "@" not in address:
        return "sms"
    return "email"


@dataclass
class Deps:
    """What every use case of the notifier needs (built once, in bootstrap)."""

    sessions: async_sessionmaker[AsyncSession]
    crypto: Crypto
    cfg: NotifierSettings
    clock: Callable[[], datetime]
    audit_topic: str
    route: ChannelRoute
    retry: RetryPolicy
    wakeup: asyncio.Event


def is_postgres(session: AsyncSession) -> bool:
    """PostgreSQL (FOR UPDATE SKIP LOCKED, row locks) or SQLite (one writer at a time, no locks needed)."""
    return bool(session.get_bind().dialect.name == "postgresql")


async def lock_cases(session: AsyncSession, case_ids: Iterable[str]) -> None:
    """Hold the cases until the transaction ends (PostgreSQL advisory locks, taken in one order).
    Deadline events and contacts of one case are handled by different consumers: each must see what
    the other committed, or a family text is planned by neither. (SQLite has one writer at a time.)"""
    ids = sorted({c for c in case_ids if c})
    if not ids or not is_postgres(session):
        return
    await session.execute(text(
        "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(c, 0) AS k "
        "FROM unnest(CAST(:ids AS text[])) AS c ORDER BY k) AS keys"), {"ids": ids})


def insert_stmt(session: AsyncSession, table: Any) -> Any:
    return upsertable_insert(session, table)


def upsert_stmt(session: AsyncSession, table: Any, values: dict[str, Any], keys: list[str],
                update_keys: Iterable[str] | None = None, where: Any = None) -> Any:
    stmt = insert_stmt(session, table).values(**values)
    names = [k for k in (update_keys if update_keys is not None else values) if k not in keys]
    return stmt.on_conflict_do_update(index_elements=keys, set_={k: stmt.excluded[k] for k in names}, where=where)


# --------------------------------------------------------------------------------------------
# Audit
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    row: Any  # anything with notification_id, case_id, deadline_id, kind, recipient_kind, recipient_ref, channel
    status: str
    attempt: int
    error: str | None = None
    provider_reference: str | None = None


def audit_event(deps: Deps, entry: AuditEntry) -> NotificationEvent:
    row = entry.row
    return NotificationEvent(
        id=str(uuid.uuid4()), source="ehc/notifier", subject=row.case_id or "none", time=deps.clock(),
        data=NotificationData(notification_id=row.notification_id, case_id=row.case_id, deadline_id=row.deadline_id,
                              kind=row.kind, recipient_kind=row.recipient_kind, recipient_ref=row.recipient_ref,
                              channel=row.channel, status=entry.status, attempt=entry.attempt,  # type: ignore[arg-type]
                              error=entry.error, provider_reference=entry.provider_reference))


async def audit(session: AsyncSession, deps: Deps, entries: Sequence[AuditEntry]) -> None:
    """Publish status changes through the outbox (one INSERT for the lot)."""
    if not entries:
        return
    values = []
    for entry in entries:
        event = audit_event(deps, entry)
        values.append({"topic": deps.audit_topic, "key": event.key(), "value": event.to_json(), "headers": None})
    await session.execute(tables.outbox.insert(), values)


# --------------------------------------------------------------------------------------------
# Planning a notification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewRow:
    """The audit view of a row being inserted (the same attribute names as a notifications row)."""

    notification_id: str
    case_id: str | None
    deadline_id: str | None
    kind: str
    recipient_kind: str
    recipient_ref: str
    channel: str
    template: str


@dataclass(frozen=True)
class PlanItem:
    """One notification to plan: its idempotency key, what it is about, whom, which template."""

    key: str
    case_id: str | None
    deadline_id: str | None
    kind: str
    recipient: Recipient
    template: str
    context: dict[str, Any]
    historical: bool = False  # about the past (policy.is_historical): recorded, never sent
    not_before: datetime | None = None  # held until then (e.g. a decision waits for its deadlines)


async def plan_notifications(session: AsyncSession, deps: Deps, items: Sequence[PlanItem]) -> list[str]:
    """Insert notifications under their idempotency keys (one statement for the lot); returns the ids
    of those that were new: a key planned before, by this batch or an earlier one, plans nothing.

    A text's number is normalised here; a number that cannot take texts fails at once (and the
    caseworker is told). A text to a family in quiet hours starts deferred to the morning. The row
    is written with its starting status; the audit trail shows each step (pending, then deferred or
    failed) as the guarded transitions allow.
    """
    if not items:
        return []
    now = deps.clock()
    quiet_until = quiet_hours_defer(now, deps.cfg.quiet_hours_start, deps.cfg.quiet_hours_end)
    planned: dict[str, tuple[NewRow, list[AuditEntry], str | None, str]] = {}
    values: list[dict[str, Any]] = []
    keys: set[str] = set()
    for item in items:
        if item.key in keys:
            continue
        keys.add(item.key)
        recipient = item.recipient
        channel = deps.route.channel_for(recipient.channel)
        row = NewRow(str(uuid.uuid4()), item.case_id, item.deadline_id, item.kind, recipient.kind, recipient.ref,
                     channel, item.template)
        address, error, status, next_at = recipient.address, None, S.PENDING, now
        entries = [AuditEntry(row, str(status), 0)]
        if item.not_before is not None and item.not_before > next_at:
            next_at = item.not_before
        if item.historical:
            status = transition(status, S.HISTORICAL)
            entries.append(AuditEntry(row, str(status), 0, HISTORICAL_REASON))
        elif recipient.channel == "sms":
            try:
                address = normalise_uk_mobile(address)
            except InvalidPhoneNumber as exc:
                error = exc.reason
        if error is not None:
            status = transition(status, S.FAILED)
            entries.append(AuditEntry(row, str(status), 0, error))
        elif status is S.HISTORICAL:
            pass
        elif quiet_until is not None and next_at < quiet_until and is_quiet_hours_channel(recipient.kind,
                                                                                          recipient.channel):
            status, next_at = transition(status, S.DEFERRED), quiet_until
            entries.append(AuditEntry(row, str(status), 0, "quiet hours"))
        planned[row.notification_id] = (row, entries, error, address)
        values.append({
            "notification_id": row.notification_id, "idempotency_key": item.key, "case_id": item.case_id,
            "deadline_id": item.deadline_id, "kind": item.kind, "recipient_kind": recipient.kind,
            "recipient_ref": recipient.ref, "channel": channel, "address_encrypted": deps.crypto.encrypt(address),
            "template": item.template, "language": recipient.language, "context": item.context,
            "status": str(status), "attempts": 0, "next_attempt_at": next_at, "last_error": error,
            "created_at": now, "updated_at": now})
    n = tables.notifications
    if values and not is_postgres(session):  # PostgreSQL numbers the rows (seq) itself, in this order
        last = int(await session.scalar(select(func.max(n.c.seq))) or 0)  # SQLite: one writer at a time
        for number, value in enumerate(values, start=last + 1):
            value["seq"] = number
    # executemany (compiled once, sent as multi-row batches by SQLAlchemy's insertmanyvalues)
    stmt = insert_stmt(session, n).on_conflict_do_nothing().returning(n.c.notification_id)
    inserted = set((await session.execute(stmt, values)).scalars().all())
    new = [nid for nid in planned if nid in inserted]
    await audit(session, deps, [e for nid in new for e in planned[nid][1]])
    for nid in new:
        row, _, error, address = planned[nid]
        if error is not None:
            await alert_caseworker_of_failure(session, deps, row, error, address)
    return new


async def plan_notification(session: AsyncSession, deps: Deps, *, key: str, case_id: str | None,
                            deadline_id: str | None, kind: str, recipient: Recipient, template: str,
                            context: dict[str, Any]) -> str | None:
    """Plan one notification (see plan_notifications); None if it was already planned."""
    new = await plan_notifications(session, deps, [PlanItem(key, case_id, deadline_id, kind, recipient, template,
                                                            context)])
    return new[0] if new else None


# --------------------------------------------------------------------------------------------
# Recipients
# --------------------------------------------------------------------------------------------


def _address_key(channel: str, address: str) -> str:
    if channel == "sms":
        try:
            return normalise_uk_mobile(address)
        except InvalidPhoneNumber:
            return address.strip()
    return address.strip().lower()


def family_recipients(crypto: Crypto, case_id: str, contacts: dict[str, Any]) -> list[Recipient]:
    """The family members who may be told, from a case's decrypted ``ehc.contacts`` data: only with
    recorded consent, by the channel they chose, in their language. Each is referred to by a keyed
    fingerprint of (case, channel, address), so one person is one recipient however the list is
    ordered, and two entries with the same address get one message."""
    found: dict[str, Recipient] = {}
    for c in contacts.get("contacts", []):
        channel = c.get("channel")
        if not c.get("consent") or channel not in ("sms", "email"):
            continue
        address = c.get("phone") if channel == "sms" else c.get("email")
        if not address:
            continue
        ref = crypto.fingerprint("family", case_id, channel, _address_key(channel, address))
        found.setdefault(ref, Recipient("family", ref, channel, address, c.get("language") or "en"))
    return list(found.values())


# --------------------------------------------------------------------------------------------
# The case's caseworker, and telling them about a failure
# --------------------------------------------------------------------------------------------


async def caseworker_of_case(session: AsyncSession, case_id: str) -> str | None:
    """The latest assignment (ehc.case.assigned), else what the deadline events said."""
    routing = await session.scalar(select(tables.case_routing.c.caseworker_id)
                                   .where(tables.case_routing.c.case_id == case_id))
    if routing:
        return str(routing)
    view = await session.scalar(select(tables.deadline_view.c.caseworker_id)
                                .where(tables.deadline_view.c.case_id == case_id,
                                       tables.deadline_view.c.caseworker_id.is_not(None))
                                .order_by(tables.deadline_view.c.event_time.desc()).limit(1))
    return str(view) if view else None


async def caseworker_recipient(session: AsyncSession, crypto: Crypto, caseworker_id: str | None,
                               cache: dict[str, Recipient | None] | None = None) -> Recipient | None:
    if not caseworker_id:
        return None
    if cache is not None and caseworker_id in cache:
        return cache[caseworker_id]
    token = await session.scalar(select(tables.caseworkers.c.email_encrypted)
                                 .where(tables.caseworkers.c.caseworker_id == caseworker_id))
    recipient = Recipient("caseworker", caseworker_id, "email", crypto.decrypt(token)) if token is not None else None
    if recipient is None:
        log.warning("notifier.caseworker_unknown", caseworker_id=caseworker_id)
    if cache is not None:
        cache[caseworker_id] = recipient
    return recipient


async def caseworker_recipients(session: AsyncSession, crypto: Crypto, caseworker_ids: Iterable[str | None],
                                ) -> dict[str, Recipient]:
    """The caseworkers whose work email is known, by id (one query)."""
    wanted = {c for c in caseworker_ids if c}
    if not wanted:
        return {}
    cw = tables.caseworkers
    rows = (await session.execute(select(cw.c.caseworker_id, cw.c.email_encrypted)
                                  .where(cw.c.caseworker_id.in_(wanted)))).all()
    found = {r.caseworker_id: Recipient("caseworker", r.caseworker_id, "email", crypto.decrypt(r.email_encrypted))
             for r in rows}
    for missing in sorted(wanted - set(found)):
        log.warning("notifier.caseworker_unknown", caseworker_id=missing)
    return found


def safe_reason(reason: str, address: str | None) -> str:
    """A failure reason fit for a caseworker's email and the audit trail: never the address itself."""
    text = reason or "no reason given"
    if address:
        text = text.replace(address, "[address]")
    return scrub(text)[:300]


async def alert_caseworker_of_failure(session: AsyncSession, deps: Deps, row: Any, reason: str,
                                      address: str | None, *, interrupted: bool = False) -> bool:
    """A family's or a manager's message about a case could not be delivered: tell the case's
    caseworker (once per failed notification; the email names the message, never the address).
    An ``interrupted`` send to the caseworker themselves (a breach alert cut off by a crash) is
    reported to them too: their address works, the message may not have arrived."""
    told = ("family", "manager", "caseworker") if interrupted else ("family", "manager")
    if row.recipient_kind not in told or row.kind == "caseworker_delivery_failed" or not row.case_id:
        return False
    caseworker = await caseworker_recipient(session, deps.crypto, await caseworker_of_case(session, row.case_id))
    if caseworker is None:
        log.error("notifier.failure_not_reported", notification_id=row.notification_id, case_id=row.case_id,
                  reason="the case has no caseworker with a known email address")
        return False
    about = getattr(row, "context", None) or {}  # the failed message's deadline (and sealed case reference)
    context = {**{k: about[k] for k in ("rule_id", "due_on", "case_reference_encrypted") if about.get(k)},
               "case_id": row.case_id, "failed_template": row.template,
               "channel_kind": channel_kind(row.channel, address), "reason": safe_reason(reason, address),
               "case_url": case_url(deps.cfg.case_url_base, row.case_id)}
    planned = await plan_notification(
        session, deps, key=f"{row.notification_id}|caseworker_delivery_failed|{caseworker.ref}", case_id=row.case_id,
        deadline_id=row.deadline_id, kind="caseworker_delivery_failed", recipient=caseworker,
        template="caseworker_delivery_failed", context=context)
    if planned:
        log.info("notifier.failure_reported", notification_id=row.notification_id, alert_id=planned,
                 case_id=row.case_id)
        deps.wakeup.set()
    return planned is not None


__all__ = [
    "AuditEntry",
    "ChannelRoute",
    "Deps",
    "NewRow",
    "PlanItem",
    "alert_caseworker_of_failure",
    "audit",
    "caseworker_of_case",
    "caseworker_recipient",
    "caseworker_recipients",
    "channel_kind",
    "family_recipients",
    "insert_stmt",
    "is_postgres",
    "lock_cases",
    "plan_notification",
    "plan_notifications",
    "safe_reason",
    "upsert_stmt",
]
