"""What changed between the stored deadlines of a case and a fresh computation (pure).

The service publishes one ``deadline.*`` event per change. ``open`` and ``due_soon`` are the
same state for publishing: ``due_soon`` reminders come from timers, not from recomputation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

LIVE = frozenset({"open", "due_soon"})
STATUS_EVENT = {
    "met": "deadline.met",
    "met_late": "deadline.met",
    "breached": "deadline.breached",
    "exception": "deadline.exception",
    "cancelled": "deadline.cancelled",
}


@dataclass(frozen=True, slots=True)
class StoredDeadline:
    deadline_id: str
    due_on: date
    status: str


@dataclass(frozen=True, slots=True)
class Change:
    event_type: str
    deadline: Any  # the engine's Deadline
    previous: StoredDeadline | None


def _same_state(a: str, b: str) -> bool:
    return a == b or (a in LIVE and b in LIVE)


def diff(stored: dict[str, StoredDeadline], computed: list[Any]) -> list[Change]:
    changes: list[Change] = []
    seen: set[str] = set()
    for d in computed:
        seen.add(d.deadline_id)
        before = stored.get(d.deadline_id)
        status = str(d.status)
        if before is None:
            if status == "cancelled":
                continue  # never announced, nothing to withdraw
            changes.append(Change("deadline.opened", d, None))
            if status not in LIVE:
                changes.append(Change(STATUS_EVENT[status], d, None))
            continue
        if not _same_state(before.status, status):
            event = STATUS_EVENT.get(status, "deadline.changed")
            changes.append(Change(event, d, before))
        elif before.due_on != d.due_on:
            changes.append(Change("deadline.changed", d, before))
    # A stored deadline the engine no longer produces (its trigger was retracted): cancel it.
    for deadline_id, before in stored.items():
        if deadline_id not in seen and before.status != "cancelled":
            changes.append(Change("deadline.cancelled", None, before))
    return changes
