"""Daily digests and weekly summaries (pure): what they list, and when they are due.

The notifier keeps its own projection of the deadlines (from ``ehc.deadline-events``); these
functions turn rows of it into the lists the digest templates show. Nothing here reads a clock or
a database: the caller passes the day, the instant and a working-day calendar (anything with
``is_working_day(date) -> bool``).

* A caseworker's daily digest (working days, at ``digest_time`` Europe/London): their cases'
  council deadlines that are overdue, due within ``due_soon_working_days`` working days, new since
  the previous working day's digest, or under an exception (the duty to act "as soon as
  practicable" remains). Nothing to say: no email.
* A manager's daily at-risk list: the same overdue and due-soon lists for a team, an area or all.
* A manager's weekly summary, on the first working day of a week, about the week before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from services.notifier.domain.recipients import COUNCIL

LONDON = ZoneInfo("Europe/London")
LIVE = frozenset({"open", "due_soon"})
MANAGER_LIST_LIMIT = 100  # items per list in a manager's email; the rest behind the at-risk link
OLDEST_OVERDUE = 5


class WorkingDays(Protocol):
    def is_working_day(self, day: date) -> bool: ...


@dataclass(frozen=True, slots=True)
class DeadlineView:
    """One row of the notifier's projection of the deadlines (no personal data)."""

    deadline_id: str
    case_id: str
    rule_id: str
    due_on: date
    status: str
    responsible: str
    flags: tuple[str, ...] = ()
    kind: str = "duty"
    legal_source: str = ""
    team_id: str | None = None
    caseworker_id: str | None = None
    area_id: str | None = None
    opened_on: date | None = None  # the legal start (trigger date), or the day we first saw it
    first_seen_at: datetime | None = None
    completed_on: date | None = None

    @property
    def council_duty(self) -> bool:
        return self.responsible in COUNCIL and "guidance" not in self.flags and self.kind != "guidance"


@dataclass
class DigestLists:
    overdue: list[dict[str, Any]] = field(default_factory=list)
    due_soon: list[dict[str, Any]] = field(default_factory=list)
    new: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.overdue or self.due_soon or self.new or self.exceptions)


# --------------------------------------------------------------------------------------------
# Working days and instants
# --------------------------------------------------------------------------------------------


def parse_hhmm(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ValueError(f"not a time of day in HH:MM form: {value!r}") from exc


def london_day(now: datetime) -> date:
    return now.astimezone(LONDON).date()


def london_instant(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=LONDON)


def working_days_after(calendar: WorkingDays, start: date, end: date) -> int:
    """Working days d with start < d <= end (0 when end <= start)."""
    count = 0
    day = start + timedelta(days=1)
    while day <= end:
        if calendar.is_working_day(day):
            count += 1
        day += timedelta(days=1)
    return count


def previous_working_day(calendar: WorkingDays, day: date) -> date:
    before = day - timedelta(days=1)
    for _ in range(31):  # no stretch of a month without a working day
        if calendar.is_working_day(before):
            return before
        before -= timedelta(days=1)
    return day - timedelta(days=1)


def first_working_day_of_week(calendar: WorkingDays, day: date) -> bool:
    """True when ``day`` is a working day and no earlier day of its week (from Monday) is one."""
    if not calendar.is_working_day(day):
        return False
    monday = day - timedelta(days=day.weekday())
    return not any(calendar.is_working_day(monday + timedelta(days=i)) for i in range(day.weekday()))


@dataclass(frozen=True)
class MorningJobs:
    """What is due at a morning tick: the daily digests of ``day`` and maybe last week's summary."""

    day: date | None = None
    weekly_from: date | None = None  # Monday of the week summarised

    def __bool__(self) -> bool:
        return self.day is not None


CATCH_UP_HOURS = 4  # a service that was down at 08:00 sends the morning's digests until noon


def morning_jobs(now: datetime, calendar: WorkingDays, digest_time: str = "08:00",
                 catch_up_hours: float | None = None) -> MorningJobs:
    """The jobs due at ``now``: none before ``digest_time`` or on a day that is not a working day;
    with ``catch_up_hours`` (at start-up), none either once that many hours have passed since: what
    was new today goes into the next working day's digest instead of an email in the evening."""
    local = now.astimezone(LONDON)
    day = local.date()
    start = london_instant(day, parse_hhmm(digest_time))
    if local < start or not calendar.is_working_day(day):
        return MorningJobs()
    if catch_up_hours is not None and local >= start + timedelta(hours=catch_up_hours):
        return MorningJobs()
    weekly = None
    if first_working_day_of_week(calendar, day):
        weekly = day - timedelta(days=day.weekday() + 7)
    return MorningJobs(day=day, weekly_from=weekly)


# --------------------------------------------------------------------------------------------
# Lists
# --------------------------------------------------------------------------------------------


def case_url(base: str, case_id: str) -> str:
    return f"{base.rstrip('/')}/{case_id}/deadlines"


def _item(view: DeadlineView, url_base: str, **extra: Any) -> dict[str, Any]:
    return {"case_id": view.case_id, "rule_id": view.rule_id, "due_on": view.due_on.isoformat(),
            "legal_source": view.legal_source, "case_url": case_url(url_base, view.case_id), **extra}


def digest_lists(views: Iterable[DeadlineView], day: date, calendar: WorkingDays, *, due_soon_working_days: int,
                 url_base: str, new_since: datetime | None = None, include_new_and_exceptions: bool = True,
                 ) -> DigestLists:
    """Sort council deadlines into overdue (oldest first), due soon, new and under an exception."""
    lists = DigestLists()
    for v in views:
        if not v.council_duty:
            continue
        if v.status == "breached" or (v.status in LIVE and v.due_on < day):  # the breach event may lag
            lists.overdue.append(_item(v, url_base, working_days_overdue=working_days_after(calendar, v.due_on, day)))
        elif v.status in LIVE:
            left = working_days_after(calendar, day, v.due_on)
            if v.due_on >= day and left <= due_soon_working_days:
                lists.due_soon.append(_item(v, url_base, working_days_left=left))
            elif include_new_and_exceptions and _is_new(v, new_since):
                lists.new.append(_item(v, url_base, working_days_left=left))
        elif v.status == "exception" and include_new_and_exceptions:
            lists.exceptions.append(_item(v, url_base))
    for items in (lists.overdue, lists.due_soon, lists.new, lists.exceptions):
        items.sort(key=lambda i: (i["due_on"], i["case_id"], i["rule_id"]))
    return lists


def _is_new(view: DeadlineView, since: datetime | None) -> bool:
    return since is not None and view.first_seen_at is not None and view.first_seen_at >= since


def in_scope(view: DeadlineView, scope: str, scope_id: str | None) -> bool:
    if scope == "all":
        return True
    if scope == "team":
        return view.team_id == scope_id
    if scope == "area":
        return view.area_id == scope_id
    return False


def scope_name(scope: str, scope_id: str | None, council_name: str, team_names: Mapping[str, str] | None = None,
               area_names: Mapping[str, str] | None = None) -> str:
    """The name staff know a team or an area by (from settings), else "team <id>" / "area <id>"."""
    if scope == "team":
        return (team_names or {}).get(scope_id or "") or f"team {scope_id}"
    if scope == "area":
        return (area_names or {}).get(scope_id or "") or f"area {scope_id}"
    return council_name


def caseworker_digest_context(lists: DigestLists, day: date, cases_url: str | None,
                              max_items: int | None = None) -> dict[str, Any]:
    """The digest's lists, at most ``max_items`` items in all, the most urgent first (overdue, then due
    soon, then new, then under an exception); each list's full count and how many were left out, so a
    first digest of a caseworker with 200 cases stays readable (the rest behind ``cases_url``)."""
    left = max_items if max_items is not None else 10**9
    shown: dict[str, list[dict[str, Any]]] = {}
    for name in ("overdue", "due_soon", "new", "exceptions"):
        items = getattr(lists, name)
        shown[name] = items[:max(left, 0)]
        left -= len(shown[name])
    total = sum(len(getattr(lists, n)) for n in shown)
    return {"digest_date": day.isoformat(), **shown, "cases_url": cases_url,
            "totals": {n: len(getattr(lists, n)) for n in shown},
            "not_shown": total - sum(len(v) for v in shown.values())}


def manager_daily_context(lists: DigestLists, day: date, name_of_scope: str, at_risk_url: str | None
                          ) -> dict[str, Any]:
    return {"digest_date": day.isoformat(), "scope_name": name_of_scope,
            "overdue": lists.overdue[:MANAGER_LIST_LIMIT], "due_soon": lists.due_soon[:MANAGER_LIST_LIMIT],
            "overdue_count": len(lists.overdue), "due_soon_count": len(lists.due_soon), "at_risk_url": at_risk_url}


def breach_rollup_context(views: Iterable[DeadlineView], day: date, since: date, calendar: WorkingDays,
                          name_of_scope: str, url_base: str, breaches_url: str | None,
                          max_items: int = MANAGER_LIST_LIMIT) -> dict[str, Any] | None:
    """A manager's morning message about council deadlines missed since ``since`` (exclusive) up to
    ``day``: the breach day (the day after the due date) in that window. None when there are none."""
    missed = sorted((v for v in views if v.council_duty and v.status == "breached"
                     and since < v.due_on + timedelta(days=1) <= day), key=lambda v: (v.due_on, v.case_id))
    if not missed:
        return None
    return {"digest_date": day.isoformat(), "scope_name": name_of_scope, "breach_count": len(missed),
            "breaches": [_item(v, url_base, working_days_overdue=working_days_after(calendar, v.due_on, day))
                         for v in missed[:max_items]], "breaches_url": breaches_url}


def weekly_summary_context(views: Sequence[DeadlineView], week_start: date, today: date, calendar: WorkingDays, *,
                           name_of_scope: str, url_base: str, report_url: str | None) -> dict[str, Any]:
    """Counts for the week ``week_start`` (a Monday) to the Sunday after, and the state on ``today``.

    opened: deadlines that started in the week; met on time / late: completed in the week;
    missed: deadlines whose breach day (the day after the due date) fell in the week, whether or
    not they were met late since; overdue now; due in the week starting ``today``.
    """
    week_end = week_start + timedelta(days=6)
    duties = [v for v in views if v.council_duty]

    def within(day: date | None, start: date, end: date) -> bool:
        return day is not None and start <= day <= end

    overdue = sorted((v for v in duties if v.status == "breached"), key=lambda v: (v.due_on, v.case_id))
    counts = {
        "opened": sum(within(v.opened_on, week_start, week_end) for v in duties),
        "met_on_time": sum(v.status == "met" and within(v.completed_on, week_start, week_end) for v in duties),
        "met_late": sum(v.status == "met_late" and within(v.completed_on, week_start, week_end) for v in duties),
        "breached": sum(v.status in ("breached", "met_late")
                        and within(v.due_on + timedelta(days=1), week_start, week_end) for v in duties),
        "overdue_now": len(overdue),
        "due_next_week": sum(v.status in LIVE and within(v.due_on, today, today + timedelta(days=6))
                             for v in duties),
    }
    oldest = [_item(v, url_base, working_days_overdue=working_days_after(calendar, v.due_on, today))
              for v in overdue[:OLDEST_OVERDUE]]
    return {"week_start": week_start.isoformat(), "week_end": week_end.isoformat(), "scope_name": name_of_scope,
            "counts": counts, "oldest_overdue": oldest, "report_url": report_url}


__all__ = [
    "CATCH_UP_HOURS",
    "DeadlineView",
    "DigestLists",
    "MorningJobs",
    "WorkingDays",
    "breach_rollup_context",
    "caseworker_digest_context",
    "digest_lists",
    "first_working_day_of_week",
    "in_scope",
    "london_day",
    "london_instant",
    "manager_daily_context",
    "morning_jobs",
    "parse_hhmm",
    "previous_working_day",
    "scope_name",
    "weekly_summary_context",
    "working_days_after",
]
