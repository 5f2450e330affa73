"""Daily digests and weekly summaries, planned from the notifier's projection of the deadlines.

The scheduler only triggers ``run_morning`` (08:00 Europe/London, Monday to Friday; and once at
start-up, for a morning the service was down). The work is idempotent: each digest is a
notification keyed (digest kind, date, recipient), so a second trigger, a second replica or a
restart plans nothing twice. Bank holidays and weekends come from the working-day calendar handed
in (``is_working_day``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select

from services.notifier.adapters import tables
from services.notifier.adapters.crypto import Crypto
from services.notifier.domain.digests import (
    CATCH_UP_HOURS,
    LIVE,
    DeadlineView,
    WorkingDays,
    breach_rollup_context,
    caseworker_digest_context,
    digest_lists,
    in_scope,
    london_day,
    london_instant,
    manager_daily_context,
    morning_jobs,
    parse_hhmm,
    previous_working_day,
    scope_name,
    weekly_summary_context,
)
from services.notifier.domain.recipients import Recipient
from services.notifier.service_layer.notifications import Deps, caseworker_recipient, plan_notification
from shared.logging import get_logger

log = get_logger(__name__)


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes (written as UTC); PostgreSQL aware ones."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def view_of(row: Any) -> DeadlineView:
    return DeadlineView(
        deadline_id=row.deadline_id, case_id=row.case_id, rule_id=row.rule_id, due_on=row.due_on, status=row.status,
        responsible=row.responsible, flags=tuple(row.flags or ()), kind=row.kind, legal_source=row.legal_source,
        team_id=row.team_id, caseworker_id=row.caseworker_id, area_id=row.area_id,
        # the legal start, or the day we first saw the deadline
        opened_on=row.opened_on or london_day(_utc(row.first_seen_at) or datetime.now(UTC)),
        first_seen_at=_utc(row.first_seen_at), completed_on=row.completed_on)


async def case_references(session: Any, crypto: Crypto, case_ids: set[str]) -> dict[str, str]:
    """case_id -> the council's own case reference, from the encrypted contacts (where intake gave one)."""
    if not case_ids:
        return {}
    c = tables.contacts
    found = {}
    for row in (await session.execute(select(c.c.case_id, c.c.payload_encrypted)
                                      .where(c.c.case_id.in_(case_ids)))).all():
        reference = crypto.decrypt_json(row.payload_encrypted).get("case_reference")
        if reference:
            found[row.case_id] = str(reference)
    return found


def sealed(crypto: Crypto, value: Any) -> str:
    """A value for a stored context that must not be kept in clear (``*_encrypted``; opened at render)."""
    return crypto.encrypt_json(value).decode()


class DigestJobs:
    def __init__(self, deps: Deps, calendar: WorkingDays) -> None:
        self._deps = deps
        self.calendar = calendar

    async def run_morning(self, now: datetime | None = None, *, catch_up: bool = False) -> int:
        """Plan whatever is due this morning (nothing on a day that is not a working day). ``catch_up``:
        at start-up, for a morning the service was down; only until noon."""
        now = now or self._deps.clock()
        jobs = morning_jobs(now, self.calendar, self._deps.cfg.digest_time, CATCH_UP_HOURS if catch_up else None)
        if not jobs or jobs.day is None:
            return 0
        planned = await self.caseworker_digests(jobs.day, now)
        planned += await self.manager_daily(jobs.day)
        planned += await self.manager_breach_rollups(jobs.day)
        if jobs.weekly_from is not None:
            planned += await self.weekly_summaries(jobs.weekly_from, jobs.day)
        log.info("notifier.morning_jobs", day=jobs.day.isoformat(), weekly=jobs.weekly_from is not None,
                 planned=planned)
        return planned

    # --- caseworkers ---------------------------------------------------------------------------
    async def caseworker_digests(self, day: date, now: datetime) -> int:
        """One digest per caseworker with anything to say; none in ``immediate`` mode (they had it all)."""
        cfg = self._deps.cfg
        if cfg.caseworker_reminders != "digest":
            return 0
        since = london_instant(previous_working_day(self.calendar, day), parse_hhmm(cfg.digest_time))
        v = tables.deadline_view
        horizon = day + timedelta(days=2 * cfg.due_soon_working_days + 14)
        query = select(v).where(v.c.caseworker_id.is_not(None), or_(
            v.c.status.in_(["breached", "exception"]),
            and_(v.c.status.in_(sorted(LIVE)), v.c.due_on <= horizon),
            and_(v.c.status.in_(sorted(LIVE)), v.c.first_seen_at >= since)))
        planned = 0
        async with self._deps.sessions() as session, session.begin():
            by_caseworker: dict[str, list[DeadlineView]] = defaultdict(list)
            for row in (await session.execute(query)).all():
                by_caseworker[row.caseworker_id].append(view_of(row))
            for caseworker_id, views in sorted(by_caseworker.items()):
                lists = digest_lists(views, day, self.calendar, due_soon_working_days=cfg.due_soon_working_days,
                                     url_base=cfg.case_url_base, new_since=since)
                if lists.is_empty():
                    continue
                recipient = await caseworker_recipient(session, self._deps.crypto, caseworker_id)
                if recipient is None:
                    continue
                context = caseworker_digest_context(lists, day, cfg.at_risk_url, cfg.digest_max_items)
                context["case_references_encrypted"] = await self._references(session, context)
                planned += await self._plan(session, "caseworker_daily_digest", day, recipient, context)
        return planned

    # --- managers ------------------------------------------------------------------------------
    async def manager_daily(self, day: date) -> int:
        cfg = self._deps.cfg
        v = tables.deadline_view
        horizon = day + timedelta(days=2 * cfg.due_soon_working_days + 14)
        planned = 0
        async with self._deps.sessions() as session, session.begin():
            subs = await self._subscriptions(session, "daily_digest")
            if not subs:
                return 0
            views = [view_of(r) for r in (await session.execute(select(v).where(or_(
                v.c.status == "breached", and_(v.c.status.in_(sorted(LIVE)), v.c.due_on <= horizon))))).all()]
            for sub in subs:
                lists = digest_lists([x for x in views if in_scope(x, sub.scope, sub.scope_id)], day, self.calendar,
                                     due_soon_working_days=cfg.due_soon_working_days, url_base=cfg.case_url_base,
                                     include_new_and_exceptions=False)
                if not (lists.overdue or lists.due_soon):
                    continue
                context = manager_daily_context(lists, day, self._scope_name(sub), cfg.at_risk_url)
                context["case_references_encrypted"] = await self._references(session, context)
                planned += await self._plan(session, "manager_daily_at_risk", day, self._manager(sub), context)
        return planned

    async def manager_breach_rollups(self, day: date) -> int:
        """One message per breach subscription about the breaches since the previous working day that
        were not alerted at once (they fell in the manager's quiet hours: breach timers fire at midnight)."""
        cfg = self._deps.cfg
        v, n = tables.deadline_view, tables.notifications
        since = previous_working_day(self.calendar, day)
        planned = 0
        async with self._deps.sessions() as session, session.begin():
            subs = await self._subscriptions(session, "breach")
            if not subs:
                return 0
            views = [view_of(r) for r in (await session.execute(select(v).where(
                v.c.status == "breached", v.c.due_on >= since - timedelta(days=1), v.c.due_on < day))).all()]
            alerted = {(r.deadline_id, r.recipient_ref) for r in (await session.execute(
                select(n.c.deadline_id, n.c.recipient_ref).where(
                    n.c.kind == "breach_alert", n.c.recipient_kind == "manager",
                    n.c.deadline_id.in_([x.deadline_id for x in views])))).all()} if views else set()
            for sub in subs:
                told_as = self._deps.crypto.fingerprint("manager", sub.manager_ref, sub.channel)
                mine = [x for x in views if in_scope(x, sub.scope, sub.scope_id)
                        and (x.deadline_id, told_as) not in alerted]
                context = breach_rollup_context(mine, day, since, self.calendar, self._scope_name(sub),
                                                cfg.case_url_base, cfg.breaches_url)
                if context is None:
                    continue
                context["case_references_encrypted"] = await self._references(session, context)
                planned += await self._plan(session, "manager_breach_rollup", day, self._manager(sub), context)
        return planned

    async def weekly_summaries(self, week_start: date, today: date) -> int:
        """About the week from ``week_start`` (a Monday): sent even when every count is nought."""
        cfg = self._deps.cfg
        v = tables.deadline_view
        week_end = week_start + timedelta(days=6)
        planned = 0
        async with self._deps.sessions() as session, session.begin():
            subs = await self._subscriptions(session, "weekly_summary")
            if not subs:
                return 0
            query = select(v).where(or_(
                v.c.opened_on.between(week_start, week_end),
                and_(v.c.opened_on.is_(None), v.c.first_seen_at.between(
                    london_instant(week_start, parse_hhmm("00:00")),
                    london_instant(week_end + timedelta(days=1), parse_hhmm("00:00")))),
                v.c.completed_on.between(week_start, week_end),
                v.c.due_on.between(week_start - timedelta(days=1), week_end),
                v.c.status == "breached",
                and_(v.c.status.in_(sorted(LIVE)), v.c.due_on.between(today, today + timedelta(days=6)))))
            views = [view_of(r) for r in (await session.execute(query)).all()]
            for sub in subs:
                context = weekly_summary_context(
                    [x for x in views if in_scope(x, sub.scope, sub.scope_id)], week_start, today, self.calendar,
                    name_of_scope=self._scope_name(sub), url_base=cfg.case_url_base, report_url=cfg.at_risk_url)
                context["case_references_encrypted"] = await self._references(session, context)
                planned += await self._plan(session, "manager_weekly_summary", week_start, self._manager(sub),
                                            context)
        return planned

    # --- helpers -------------------------------------------------------------------------------
    async def _subscriptions(self, session: Any, kind: str) -> list[Any]:
        s = tables.subscriptions
        return list((await session.execute(select(s).where(s.c.active.is_(True), s.c.kind == kind)
                                            .order_by(s.c.subscription_id))).all())

    def _scope_name(self, sub: Any) -> str:
        cfg = self._deps.cfg
        return scope_name(sub.scope, sub.scope_id, cfg.council_name, cfg.team_names, cfg.area_names)

    async def _references(self, session: Any, context: dict[str, Any]) -> str:
        """The council's references of the cases a digest lists, sealed for the stored context."""
        case_ids = {item["case_id"] for value in context.values() if isinstance(value, list)
                    for item in value if isinstance(item, dict) and "case_id" in item}
        return sealed(self._deps.crypto, await case_references(session, self._deps.crypto, case_ids))

    def _manager(self, sub: Any) -> Recipient:
        return Recipient("manager", sub.subscription_id, sub.channel, self._deps.crypto.decrypt(sub.address_encrypted))

    async def _plan(self, session: Any, kind: str, day: date, recipient: Recipient, context: dict[str, Any]) -> int:
        planned = await plan_notification(session, self._deps, key=f"{kind}|{day.isoformat()}|{recipient.ref}",
                                          case_id=None, deadline_id=None, kind=kind, recipient=recipient,
                                          template=kind, context=context)
        if planned:
            self._deps.wakeup.set()
        return 1 if planned else 0


__all__ = ["DigestJobs", "case_references", "sealed", "view_of"]
