"""The sender: claims due notifications, sends them, records what happened.

One pass of a worker: in a transaction, claim a few due rows (at most as many as it sends at once;
FOR UPDATE SKIP LOCKED on PostgreSQL, and on both databases every change is guarded by the row's
status and attempt count, so two workers or replicas never take the same row, SQLite included).
A row is claimed only when no earlier-planned row (``seq``) to the same recipient about the same case
is still waiting or being sent, so one case's messages to one person go out in the order of the
events that planned them, however many workers and replicas send (a row held back, a retry or a
text waiting for the morning, holds back the later ones with it). For each row claimed, decide:

* a family's text in quiet hours: ``deferred`` to the morning;
* a family whose consent was withdrawn (or whose contact was removed) since it was planned:
  ``failed``, nothing sent;
* a rate limit says wait (GOV.UK Notify's per-key limit, a few texts per number an hour): the row
  keeps its status and gets ``next_attempt_at`` = the instant the limiter gives;
* otherwise ``sending`` (one attempt more), with a lease (``lease_until``).

Then each send runs outside any transaction, bounded by the lease, and its outcome is recorded as
soon as it ends, with a guarded transition: ``sent``/``delivered``; ``temporary-failure`` with the
next attempt after a capped exponential backoff for network errors, timeouts, 5xx and 429 (the
channels sort their errors); ``failed`` when the error is final or no attempt is left, and then the
caseworker is told. Every status change is audited through the outbox.

A send interrupted (a crash, a send outliving its lease, a stop that could not wait) leaves its
row in ``sending``: the sweep, every ``sender_sweep_seconds``, marks rows whose lease has run out
``technical-failure`` (visible, audited, the caseworker told) rather than sending them again,
because we cannot know whether the provider got them and a family must never be told twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import and_, bindparam, exists, or_, select, text, update

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
from services.notifier.service_layer.short_links import ShortLinks
from shared.logging import get_logger
from shared.waiting import wait_for_wakeup

log = get_logger(__name__)
S = NotificationStatus
CLAIMABLE = (str(S.PENDING), str(S.DEFERRED), str(S.TEMPORARY_FAILURE))
UNSENT = (*CLAIMABLE, str(S.SENDING))  # a row in one of these holds back the later rows of its case and recipient
STUCK_AFTER = timedelta(minutes=10)  # rows claimed before leases existed (no lease_until)
NOTIFY_CHANNELS = frozenset({"notify_sms", "notify_email"})
INTERRUPTED = "interrupted while sending: it may not have arrived"
SEND_ATTEMPTS = Counter("ehc_notifier_send_attempts_total", "Send attempts recorded by this process, by outcome "
                        "(the status the attempt left: sent, delivered, temporary-failure, failed)", ["outcome"])


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
    row: Any  # the row as claimed (before the claim: its status and attempts then)
    address: str
    kind: str  # sms | email
    link: str | None = None  # a family's text: its own short link to the child's timeline


@dataclass
class _Change:
    """One guarded update of a row: applied only if the row still has the status and attempt count
    it was read with (so a worker never overwrites what another did since)."""

    row: Any
    status: Any
    next_attempt_at: Any
    attempts: int
    error: str | None
    provider_reference: str | None = None
    lease_until: datetime | None = None
    old_status: str | None = None
    old_attempts: int | None = None


class _Interrupted(Exception):
    """A send that outlived its lease: its outcome is unknown."""


class Sender:
    def __init__(self, deps: Deps, channels: Mapping[str, Channel], render: Callable[..., Any], limits: Limits,
                 *, batch: int = 10, concurrency: int = 10, workers: int = 2, lease_seconds: float = 60,
                 sweep_seconds: float = 30) -> None:
        self._deps = deps
        self._channels = channels
        self._render = render
        self._limits = limits
        self._claim_size = max(1, min(batch, concurrency))  # every claimed row is sent at once
        self._workers = max(1, workers)
        self._lease = timedelta(seconds=lease_seconds)
        # a send never outlives its lease: the sweep must not settle a send still in flight
        self._send_timeout = lease_seconds * 0.75
        self._sweep_seconds = sweep_seconds
        self._stopping = asyncio.Event()
        self._running: asyncio.Future[Any] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._in_flight: dict[str, _Claimed] = {}
        self.short_links: ShortLinks | None = None  # set by bootstrap when the web front has family links

    # --- one pass ------------------------------------------------------------------------------
    async def send_due(self, limit: int | None = None) -> int:
        """Claim a few due notifications, send them, record each outcome as soon as its send ends
        (those that end while an earlier outcome is being written are recorded together). Returns
        how many rows the claim looked at (0: nothing is due)."""
        claimed, count = await self._claim(min(limit or self._claim_size, self._claim_size))
        if not claimed:
            return count
        for item in claimed:
            self._in_flight[item.row.notification_id] = item
        running = {asyncio.create_task(self._send_bounded(item)) for item in claimed}
        try:
            while running:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                outcomes = [t.result() for t in done]
                ended = [o for o in outcomes if not isinstance(o[2], _Interrupted)]
                cut_off = [o[0].row.notification_id for o in outcomes if isinstance(o[2], _Interrupted)]
                try:
                    if ended:
                        await self._record(ended)  # type: ignore[arg-type]
                    if cut_off:
                        await self.sweep_stuck(cut_off)
                except Exception as exc:  # the database failed us: the rows stay 'sending', the sweep settles them
                    log.error("notifier.outcome_not_recorded", count=len(outcomes), error=type(exc).__name__)
                for item, _, _ in outcomes:
                    self._in_flight.pop(item.row.notification_id, None)
        except asyncio.CancelledError:
            for task in running:
                task.cancel()
            raise
        return count

    async def _send_bounded(self, item: _Claimed) -> tuple[_Claimed, SendResult | None, SendError | Exception | None]:
        """Send, within the lease: a send that outlives it is cut off (its outcome is unknown)."""
        try:
            async with asyncio.timeout(self._send_timeout):
                return (item, *(await self._send_one(item)))
        except TimeoutError:
            log.warning("notifier.send_outlived_lease", notification_id=item.row.notification_id, kind=item.row.kind)
            return item, None, _Interrupted()

    async def _claim(self, limit: int) -> tuple[list[_Claimed], int]:
        deps = self._deps
        n = tables.notifications
        now = deps.clock()
        async with deps.sessions() as session, session.begin():
            earlier = n.alias("earlier")
            waits_its_turn = exists().where(  # an earlier row to the same recipient about the same case not sent yet
                earlier.c.case_id == n.c.case_id, earlier.c.recipient_ref == n.c.recipient_ref,
                earlier.c.seq < n.c.seq, earlier.c.status.in_(UNSENT))
            q = (select(n).where(and_(n.c.status.in_(CLAIMABLE), n.c.next_attempt_at <= now, ~waits_its_turn))
                 .order_by(n.c.next_attempt_at, n.c.seq).limit(limit))
            if is_postgres(session):
                q = q.with_for_update(skip_locked=True, of=n)
                # Walk ix_notifications_claimable in order and stop at the limit. Before the table's
                # first ANALYZE (a first load) PostgreSQL expected two rows and instead gathered every
                # due notification, checked each for an earlier one and sorted them: 40-85 ms a claim
                # at 10,000 due, against 0.2 ms. Without a sort, the index order is the plan.
                await session.execute(text("SET LOCAL enable_sort = off"))
            rows = (await session.execute(q)).all()
            if is_postgres(session):
                await session.execute(text("SET LOCAL enable_sort = on"))  # for this statement only
            if not rows:
                return [], 0
            consenting = await self._consenting_family(session, rows)
            changes: list[_Change] = []
            entries: dict[str, AuditEntry] = {}
            withdrawn: list[Any] = []
            claimed: dict[str, _Claimed] = {}
            for row in rows:
                address = deps.crypto.decrypt(row.address_encrypted)
                kind = channel_kind(row.channel, address)
                nid = row.notification_id
                if row.recipient_kind == "family" and row.recipient_ref not in consenting.get(row.case_id, ()):
                    status = transition(row.status, S.FAILED)
                    changes.append(_Change(row, status, row.next_attempt_at, row.attempts, "no consent"))
                    entries[nid] = AuditEntry(row, str(status), row.attempts, "consent withdrawn or contact removed")
                    withdrawn.append(row)
                    continue
                if is_quiet_hours_channel(row.recipient_kind, kind):
                    resume = quiet_hours_defer(now, deps.cfg.quiet_hours_start, deps.cfg.quiet_hours_end)
                    if resume is not None:
                        status = transition(row.status, S.DEFERRED)
                        changes.append(_Change(row, status, resume, row.attempts, row.last_error))
                        if status != row.status:
                            entries[nid] = AuditEntry(row, str(status), row.attempts, "quiet hours")
                        continue
                wait = self._limits.wait_until(row.channel, kind, address)
                if wait is not None:  # keeps its status; comes back when the limiter says
                    changes.append(_Change(row, S(row.status), wait, row.attempts, row.last_error))
                    continue
                status = transition(row.status, S.SENDING)
                changes.append(_Change(row, status, row.next_attempt_at, row.attempts + 1, row.last_error,
                                       lease_until=now + self._lease))
                entries[nid] = AuditEntry(row, str(status), row.attempts + 1)
                claimed[nid] = _Claimed(row, address, kind)
            applied = await _apply(session, changes, now)
            await audit(session, deps, [e for nid, e in entries.items() if nid in applied])
            if self.short_links is not None:  # each family text its own link, made with the claim
                for nid, item in claimed.items():
                    if nid in applied and item.row.recipient_kind == "family" and item.kind == "sms":
                        item.link = await self.short_links.mint(session, item.row.case_id, item.row.language,
                                                                nid, now)
        for row in withdrawn:
            if row.notification_id in applied:
                log.info("notifier.not_sent_without_consent", notification_id=row.notification_id,
                         case_id=row.case_id)
        return [c for nid, c in claimed.items() if nid in applied], len(rows)

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
            context = row.context if item.link is None else {**row.context, "link": item.link}
            rendered = self._render(row.template, row.language, item.kind, context)
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
            changes: list[_Change] = []
            entries: dict[str, AuditEntry] = {}
            failures: dict[str, tuple[_Claimed, str]] = {}
            for item, result, error in outcomes:
                row, attempt = item.row, item.row.attempts + 1
                nid = row.notification_id
                if error is None:
                    assert result is not None
                    wanted, next_at, reason, ref = result.status, row.next_attempt_at, None, result.provider_reference
                else:
                    retry_at = deps.retry.next_attempt_at(attempt, error, now)
                    wanted = S.TEMPORARY_FAILURE if retry_at else S.FAILED
                    next_at, reason, ref = retry_at or now, safe_reason(error.reason, item.address), None
                try:
                    status = transition(current.get(nid, S.SENDING), wanted)
                except InvalidStatusTransition:
                    # a delivery receipt got here first (sending -> delivered), or the sweep settled
                    # it (technical-failure): keep their word
                    log.info("notifier.outcome_overtaken", notification_id=nid,
                             status=current.get(nid), outcome=str(wanted))
                    if ref:
                        await session.execute(update(n).where(n.c.notification_id == nid)
                                              .values(provider_reference=ref))
                    continue
                changes.append(_Change(row, status, next_at, attempt, reason, ref, old_status=str(S.SENDING),
                                       old_attempts=attempt))
                entries[nid] = AuditEntry(row, str(status), attempt, reason, ref)
                if status is S.FAILED:
                    failures[nid] = (item, reason or "")
                # the one line per attempt (the channels log their successes at DEBUG only)
                log.info("notifier.attempt", notification_id=nid, kind=row.kind, channel=row.channel,
                         status=str(status), attempt=attempt, provider_reference=ref,
                         retry_at=next_at.isoformat() if status is S.TEMPORARY_FAILURE else None)
            applied = await _apply(session, changes, now)
            await audit(session, deps, [e for nid, e in entries.items() if nid in applied])
            for nid, (item, reason) in failures.items():
                if nid in applied:
                    await alert_caseworker_of_failure(session, deps, item.row, reason, item.address)
        for nid, entry in entries.items():  # committed
            if nid in applied:
                SEND_ATTEMPTS.labels(outcome=entry.status).inc()

    # --- interrupted sends and the loop ------------------------------------------------------------
    async def sweep_stuck(self, ids: Collection[str] | None = None) -> int:
        """Rows left in ``sending`` by an interrupted send (``ids``, or every row whose lease has run
        out): technical-failure, the caseworker told, never sent again (see the module)."""
        deps = self._deps
        n = tables.notifications
        now = deps.clock()
        async with deps.sessions() as session, session.begin():
            if ids is not None:
                which = n.c.notification_id.in_(list(ids))
            else:
                which = or_(n.c.lease_until < now,
                            and_(n.c.lease_until.is_(None), n.c.updated_at < now - STUCK_AFTER))
            q = select(n).where(and_(n.c.status == str(S.SENDING), which))
            if is_postgres(session):
                q = q.with_for_update(skip_locked=True)
            rows = (await session.execute(q)).all()
            changes = [_Change(r, transition(r.status, S.TECHNICAL_FAILURE), r.next_attempt_at, r.attempts,
                               INTERRUPTED) for r in rows]
            applied = await _apply(session, changes, now)
            swept = [r for r in rows if r.notification_id in applied]
            await audit(session, deps, [AuditEntry(r, str(S.TECHNICAL_FAILURE), r.attempts, INTERRUPTED)
                                        for r in swept])
            for r in swept:
                log.warning("notifier.stuck_notification", notification_id=r.notification_id, kind=r.kind)
                await alert_caseworker_of_failure(session, deps, r, INTERRUPTED, None, interrupted=True)
        return len(swept)

    async def run(self, idle_seconds: float = 0.5) -> None:
        """Send until stopped or cancelled, with ``workers`` passes at once (while one waits for its
        sends' answers, another claims and sends), and sweep interrupted sends periodically."""
        self._stopping.clear()
        self._running = asyncio.get_running_loop().create_future()
        self._task = asyncio.current_task()
        workers = [asyncio.create_task(self._work(idle_seconds), name=f"notifier-sender-{i}")
                   for i in range(self._workers)]
        sweeper = asyncio.create_task(self._sweep_periodically(), name="notifier-sweeper")
        try:
            await asyncio.gather(*workers)
        finally:
            for task in (*workers, sweeper):
                task.cancel()
            await asyncio.gather(*workers, sweeper, return_exceptions=True)
            self._running.set_result(None)

    async def stop(self, timeout: float) -> None:
        """A graceful stop: claim nothing more, let the sends in flight finish and record their outcome
        (for up to ``timeout`` seconds); a send that cannot finish in time is settled as interrupted
        (technical-failure, the caseworker told) before the database closes."""
        if self._running is None or self._running.done():
            return
        self._stopping.set()
        self._deps.wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._running), timeout)
        except TimeoutError:
            left = list(self._in_flight)
            log.warning("notifier.stopped_with_sends_in_flight", count=len(left))
            if self._task is not None:
                self._task.cancel()
            await asyncio.wait([self._running], timeout=5)
            await self.sweep_stuck(left)

    async def _sweep_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_seconds)
            try:
                await self.sweep_stuck()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # try again at the next sweep
                log.warning("notifier.sweep_failed", error=type(exc).__name__)

    async def _work(self, idle_seconds: float) -> None:
        wakeup = self._deps.wakeup
        while not self._stopping.is_set():
            try:
                if await self.send_due():
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database or broker hiccup: try again shortly, nothing is lost
                log.warning("notifier.sender_failed", error=type(exc).__name__)
            if self._stopping.is_set():
                break
            wakeup.clear()
            await wait_for_wakeup(wakeup, idle_seconds)


async def _apply(session: Any, changes: list[_Change], now: Any) -> set[str]:
    """Write the decided changes, each guarded by the status and attempt count its row was read with;
    returns the ids of the rows that did change. On PostgreSQL the rows are locked by this
    transaction, so the guard always holds: one executemany. On SQLite (no row locks; another
    worker may have read the same rows) each row is written alone and its row count says."""
    if not changes:
        return set()
    n = tables.notifications
    values = []
    for c in changes:
        row = c.row
        values.append({"b_id": row.notification_id, "b_status": str(c.status), "b_next": c.next_attempt_at,
                       "b_attempts": c.attempts, "b_error": c.error,
                       "b_ref": c.provider_reference or row.provider_reference, "b_lease": c.lease_until,
                       "b_now": now, "b_old_status": c.old_status if c.old_status is not None else str(row.status),
                       "b_old_attempts": c.old_attempts if c.old_attempts is not None else row.attempts})
    stmt = (update(n).where(n.c.notification_id == bindparam("b_id"), n.c.status == bindparam("b_old_status"),
                            n.c.attempts == bindparam("b_old_attempts"))
            .values(status=bindparam("b_status"), next_attempt_at=bindparam("b_next"),
                    attempts=bindparam("b_attempts"), last_error=bindparam("b_error"),
                    provider_reference=bindparam("b_ref"), lease_until=bindparam("b_lease"),
                    updated_at=bindparam("b_now")))
    options = {"synchronize_session": False}
    if is_postgres(session):
        await session.execute(stmt, values, execution_options=options)
        return {v["b_id"] for v in values}
    applied: set[str] = set()
    for v in values:
        if (await session.execute(stmt, v, execution_options=options)).rowcount:
            applied.add(v["b_id"])
    return applied


__all__ = ["CLAIMABLE", "INTERRUPTED", "Limits", "STUCK_AFTER", "Sender"]
