"""When each deadline's reminders, breach and nudges fire (pure; DESIGN §4).

Instants are in Europe/London: reminders at 08:00 on the N-th working day before the due date
(0 = the due day), the breach at 00:00 on the day after the due date (law section C: "breached
from 00:00 Europe/London the day after"), weekly nudges at 08:00 for a deadline under an
exception (the duty to act "as soon as practicable" remains).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
MORNING = time(8, 0)


@dataclass(frozen=True, slots=True)
class TimerSpec:
    kind: str  # reminder | breach | nudge
    offset_days: int
    due_on: date
    fire_at: datetime  # UTC


def london(day: date, at: time = MORNING) -> datetime:
    return datetime.combine(day, at, tzinfo=LONDON).astimezone(UTC)


def london_today(now: datetime) -> date:
    return now.astimezone(LONDON).date()


@lru_cache(maxsize=1 << 16)  # deadlines share due dates; a calendar is immutable (a new one is another key)
def working_days_before(calendar: Any, due_on: date, n: int) -> date:
    day = due_on
    while not calendar.is_working_day(day):  # a due date on a non-working day: count from before it
        day -= timedelta(days=1)
    remaining = n
    while remaining > 0:
        day -= timedelta(days=1)
        if calendar.is_working_day(day):
            remaining -= 1
    return day


def plan_timers(deadline: Any, calendar: Any, reminder_offsets: list[int], now: datetime) -> list[TimerSpec]:
    """The timers a deadline needs from ``now`` on. Reminder instants already past when the deadline
    is first planned are skipped (no flood of stale reminders); the breach timer always exists for an
    open duty the engine can breach, so a breach that happened while the service was down still fires."""
    status = str(deadline.status)
    due_on: date = deadline.due_on
    flags = set(getattr(deadline, "flags", ()) or ())
    kind = str(getattr(deadline, "kind", "duty"))
    specs: list[TimerSpec] = []
    if status in ("open", "due_soon"):
        for offset in sorted(set(reminder_offsets), reverse=True):
            fire_at = london(due_on if offset == 0 else working_days_before(calendar, due_on, offset))
            if fire_at >= now:
                specs.append(TimerSpec("reminder", offset, due_on, fire_at))
        # only a duty can be breached, and not one whose completion no event records (the engine
        # keeps those open, flagged): a window closes, a not-before period elapses, guidance advises
        if kind == "duty" and not flags & {"guidance", "completion_not_recorded"}:
            specs.append(TimerSpec("breach", 0, due_on, london(due_on + timedelta(days=1), time(0, 0))))
    elif status == "exception":
        first = london(london_today(now) + timedelta(days=7))
        specs.append(TimerSpec("nudge", 7, due_on, first))
    return specs
