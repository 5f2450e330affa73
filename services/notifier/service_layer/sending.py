"""The sender: claims due notifications, sends them, records what happened.

One pass: in a transaction, claim up to ``batch`` due rows (FOR UPDATE SKIP LOCKED, so replicas
never take the same row) and decide for each, under its row lock:

* a family's text in quiet hours: ``deferred`` to the morning;
* a family whose consent was withdrawn (or whose contact was removed) since it was planned:
  ``failed``, nothing sent;
* a rate limit says wait (GOV.UK Notify's per-key limit, a few texts per number an hour): the row
  keeps its status and gets ``next_attempt_at`` = the instant the limiter gives;
* otherwise ``sending`` (one attempt more).

Then the sends run outside any transaction (bounded concurrency), and a second transaction
records each outcome with a guarded transition: ``sent``/``delivered``; ``temporary-failure``
with the next attempt after a capped exponential backoff for network errors, timeouts, 5xx and
429 (the channels sort their errors); ``failed`` when the error is final or no attempt is left,
and then the caseworker is told. Every status change is audited through the outbox.

A crash between claim and record leaves rows in ``sending``: ``sweep_stuck`` marks them
``technical-failure`` (visible, audited, the caseworker told) rather than sending them again,
because we cannot know whether the provider got them and a family must never be told twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, select, update

from services.notifier.adapters import tables
from services.notifier.adapters.channels import Channel, OutgoingMessage, PermanentSendError, SendError, SendResult
from services.notifier.domain.policy import (
    InvalidStatusTransition,
    NotificationStatus,
    RateLimiter,
    is_quiet_hours_channel,
    quiet_hours_defer,
    transition,
)
from services.notifier.service_layer.notifications import (
    AuditEntry,
    Deps,
    alert_caseworker_of_failure,
    audit,
    channel_kind,
    family_recipients,
    is_postgres,
    safe_reason,
)
from shared.logging import get_logger

log = get_logger(__name__)
S = NotificationStatus
CLAIMABLE = (str(S.PENDING), str(S.DEFERRED), str(S.TEMPORARY_FAILURE))
STUCK_AFTER = timedelta(minutes=10)
NOTIFY_CHANNELS = frozenset({"notify_sms", "notify_email"})


@dataclass
class Limits:
    """Client-side rate limits: GOV.UK Notify's per-key limit for its channels, and a few texts per
    number an hour for every text channel. Other channels (SMTP, the file sink) are not limited."""

    notify: RateLimiter
    texts: RateLimiter

    def wait_until(self, channel: str, kind: str, address: str) -> Any:
        number = address if kind == "sms" else None
        if channel in NOTIFY_CHANNELS:
            return self.notify.try_acquire(number)
        if number is not None:
            return self.texts.try_acquire(number)
        return None


@dataclass
class _Claimed:
    row: Any
    address: str
    kind: str  # sms | email


class Sender:
    def __init__(self, deps: Deps, channels: Mapping[str, Channel], render: Callable[..., Any], limits: Limits,
                 *, batch: int = 200, concurrency: int = 50, workers: int = 2) -> None:
        self._deps = deps
        self._channels = channels
        self._render = render
        self._limits = limits
        self._batch = batch
        self._concurrency = concurrency
        self._workers = max(1, workers)

    # --- one pass ------------------------------------------------------------------------------
    async def send_due(self, limit: int | None = None) -> int:
        """Claim due notifications, send them, record the outcome. Returns how many were claimed."""
        claimed, count = await self._claim(limit or self._batch)
        if claimed:
            semaphore = asyncio.Semaphore(self._concurrency)

            async def one(item: _Claimed) -> tuple[_Claimed, SendResult | None, SendError | None]:
                async with semaphore:
                    return (item, *(await self._send_one(item)))

            outcomes = await asyncio.gather(*(one(c) for c in claimed))
            await self._record(outcomes)
        return count

    async def _claim(self, limit: int) -> tuple[list[_Claimed], int]:
        deps = self._deps
        n = tables.notifications
        now = deps.clock()
        async with deps.sessions() as session, session.begin():
            q = (select(n).where(and_(n.c.status.in_(CLAIMABLE), n.c.next_attempt_at <= now))
                 .order_by(n.c.next_attempt_at).limit(limit))
            if is_postgres(session):
                q = q.with_for_update(skip_locked=True)
            rows = (await session.execute(q)).all()
            if not rows:
                return [], 0
            consenting = await self._consenting_family(session, rows)
            changes: list[dict[str, Any]] = []
            entries: list[AuditEntry] = []
            withdrawn: list[Any] = []
            claimed: list[_Claimed] = []
            for row in rows:
                address = deps.crypto.decrypt(row.address_encrypted)
                kind = channel_kind(row.channel, address)
                if row.recipient_kind == "family" and row.recipient_ref not in consenting.get(row.case_id, ()):
                    status = transition(row.status, S.FAILED)
                    changes.append(_change(row, status, row.next_attempt_at, row.attempts, "no consent"))
                    entries.append(AuditEntry(row, str(status), row.attempts, "consent withdrawn or contact removed"))
                    withdrawn.append(row)
                    continue
                if is_quiet_hours_channel(row.recipient_kind, kind):
                    resume = quiet_hours_defer(now, deps.cfg.quiet_hours_start, deps.cfg.quiet_hours_end)
                    if resume is not None:
                        status = transition(row.status, S.DEFERRED)
                        changes.append(_change(row, status, resume, row.attempts, row.last_error))
                        if status != row.status:
                            entries.append(AuditEntry(row, str(status), row.attempts, "quiet hours"))
                        continue
                wait = self._limits.wait_until(row.channel, kind, address)
                if wait is not None:  # keeps its status; comes back when the limiter says
                    changes.append(_change(row, S(row.status), wait, row.attempts, row.last_error))
                    continue
                status = transition(row.status, S.SENDING)
                changes.append(_change(row, status, row.next_attempt_at, row.attempts + 1, row.last_error))
                entries.append(AuditEntry(row, str(status), row.attempts + 1))
                claimed.append(_Claimed(row, address, kind))
            await _apply(session, changes, now)
            await audit(session, deps, entries)
        for row in withdrawn:
            log.info("notifier.not_sent_without_consent", notification_id=row.notification_id, case_id=row.case_id)
        return claimed, len(rows)

    async def _consenting_family(self, session: Any, rows: Sequence[Any]) -> dict[str, set[str]]:
        """case_id -> refs of the family members who consent now (checked again at send time)."""
        case_ids = {r.case_id for r in rows if r.recipient_kind == "family" and r.case_id}
        if not case_ids:
            return {}
        found = (await session.execute(select(tables.contacts).where(tables.contacts.c.case_id.in_(case_ids)))).all()
        return {c.case_id: {r.ref for r in family_recipients(self._deps.crypto, c.case_id,
                                                               self._deps.crypto.decrypt_json(c.payload_encrypted))}
                for c in found}

    async def _send_one(self, item: _Claimed) -> tuple[SendResult | None, SendError | None]:
        row = item.row
        try:
            rendered = self._render(row.template, row.language, item.kind, row.context)
            message = OutgoingMessage(notification_id=row.notification_id, channel=row.channel, to=item.address,
                                      template=row.template, personalisation=rendered.personalisation,
                                      subject=rendered.subject, body=rendered.body, language=row.language)
            return await self._channels[row.channel].send(message), None
        except SendError as exc:
            return None, exc
        except Exception as exc:  # a template or configuration bug: final, and visible
            return None, PermanentSendError(f"{type(exc).__name__}: {exc}"[:300])

    async def _record(self, outcomes: list[tuple[_Claimed, SendResult | None, SendError | None]]) -> None:
        deps = self._deps
        n = tables.notifications
        now = deps.clock()
        async with deps.sessions() as session, session.begin():
            ids = [item.row.notification_id for item, _, _ in outcomes]
            q = select(n.c.notification_id, n.c.status).where(n.c.notification_id.in_(ids))
            if is_postgres(session):
                q = q.with_for_update()
            current = {r.notification_id: r.status for r in (await session.execute(q)).all()}
            changes: list[dict[str, Any]] = []
            entries: list[AuditEntry] = []
            failures: list[tuple[_Claimed, str]] = []
            for item, result, error in outcomes:
                row, attempt = item.row, item.row.attempts + 1
                if error is None:
                    assert result is not None
                    wanted, next_at, reason, ref = result.status, row.next_attempt_at, None, result.provider_reference
                else:
                    retry_at = deps.retry.next_attempt_at(attempt, error, now)
                    wanted = S.TEMPORARY_FAILURE if retry_at else S.FAILED
                    next_at, reason, ref = retry_at or now, safe_reason(error.reason, item.address), None
                try:
                    status = transition(current.get(row.notification_id, S.SENDING), wanted)
                except InvalidStatusTransition:
                    # a delivery receipt got here first (sending -> delivered): keep its word
                    log.info("notifier.outcome_overtaken", notification_id=row.notification_id,
                             status=current.get(row.notification_id), outcome=str(wanted))
                    if ref:
                        await session.execute(update(n).where(n.c.notification_id == row.notification_id)
                                              .values(provider_reference=ref))
                    continue
                changes.append(_change(row, status, next_at, attempt, reason, ref))
                entries.append(AuditEntry(row, str(status), attempt, reason, ref))
                if status is S.FAILED:
                    failures.append((item, reason or ""))
                # the one line per attempt (the channels log their successes at DEBUG only)
                log.info("notifier.attempt", notification_id=row.notification_id, kind=row.kind, channel=row.channel,
                         status=str(status), attempt=attempt, provider_reference=ref,
                         retry_at=next_at.isoformat() if status is S.TEMPORARY_FAILURE else None)
            await _apply(session, changes, now)
            await audit(session, deps, entries)
            for item, reason in failures:
                await alert_caseworker_of_failure(session, deps, item.row, reason, item.address)

    # --- stuck rows and the loop -------------------------------------------------------------------
    async def sweep_stuck(self) -> int:
        """Rows left in ``sending`` by a crash: technical-failure, never sent again (see the module)."""
        deps = self._deps
        n = tables.notifications
        now = deps.clock()
        reason = "interrupted while sending: it may not have arrived"
        async with deps.sessions() as session, session.begin():
            q = select(n).where(and_(n.c.status == str(S.SENDING), n.c.updated_at < now - STUCK_AFTER))
            if is_postgres(session):
                q = q.with_for_update(skip_locked=True)
            rows = (await session.execute(q)).all()
            changes = [_change(r, transition(r.status, S.TECHNICAL_FAILURE), r.next_attempt_at, r.attempts, reason)
                       for r in rows]
            await _apply(session, changes, now)
            await audit(session, deps, [AuditEntry(r, str(S.TECHNICAL_FAILURE), r.attempts, reason) for r in rows])
            for r in rows:
                log.warning("notifier.stuck_notification", notification_id=r.notification_id, kind=r.kind)
                await alert_caseworker_of_failure(session, deps, r, reason, None)
        return len(rows)

    async def run(self, idle_seconds: float = 0.5) -> None:
        """Send until cancelled, with ``workers`` passes at once: while one waits for its batch's
        answers, another claims and sends the next (SKIP LOCKED keeps their rows apart)."""
        workers = [asyncio.create_task(self._work(idle_seconds), name=f"notifier-sender-{i}")
                   for i in range(self._workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _work(self, idle_seconds: float) -> None:
        wakeup = self._deps.wakeup
        while True:
            try:
                if await self.send_due():
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database or broker hiccup: try again shortly, nothing is lost
                log.warning("notifier.sender_failed", error=type(exc).__name__)
            wakeup.clear()
            try:
                await asyncio.wait_for(wakeup.wait(), idle_seconds)
            except TimeoutError:
                pass


def _change(row: Any, status: Any, next_at: Any, attempts: int, error: str | None,
            provider_reference: str | None = None) -> dict[str, Any]:
    return {"b_id": row.notification_id, "b_status": str(status), "b_next": next_at, "b_attempts": attempts,
            "b_error": error, "b_ref": provider_reference or row.provider_reference}


async def _apply(session: Any, changes: list[dict[str, Any]], now: Any) -> None:
    """Write the decided changes in one executemany (the rows are locked by this transaction)."""
    if not changes:
        return
    n = tables.notifications
    for change in changes:
        change["b_now"] = now
    await session.execute(
        update(n).where(n.c.notification_id == bindparam("b_id")).values(
            status=bindparam("b_status"), next_attempt_at=bindparam("b_next"), attempts=bindparam("b_attempts"),
            last_error=bindparam("b_error"), provider_reference=bindparam("b_ref"), updated_at=bindparam("b_now")),
        changes, execution_options={"synchronize_session": False})


__all__ = ["CLAIMABLE", "Limits", "STUCK_AFTER", "Sender"]
