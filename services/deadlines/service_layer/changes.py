"""What changed between the stored deadlines of a case and a fresh computation (pure).

The service publishes one ``deadline.*`` event per change. ``open`` and ``due_soon`` are the
same state for publishing: ``due_soon`` reminders come from timers, not from recomputation.

Every change carries its reason, so that nothing changes silently (issue 11):

- ``events``: the case's history changed (a new, corrected or retracted event, an import);
- ``ruleset``: the rule-set version that computes the deadline changed (or, with the same
  events, a deadline appears or goes: a rule added to or removed from the rule set);
- ``calendar``: same events, same rule-set version, a different due date: the working-day
  calendar changed (a bank holiday added to or removed from the override file);
- ``time``: same events, rule set and date, another status: time passed (a window elapsed).

:func:`diff` is the one function that decides what a recomputation publishes; a dry run
(``ehc deadlines rebuild --dry-run``, ``POST /admin/rebuild/dry-run``) reports its result through
:func:`describe` without publishing, so what it shows is what a real run publishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from shared.contracts import DATA_QUALITY_EVENT_TYPE

LIVE = frozenset({"open", "due_soon"})
STATUS_EVENT = {
    "met": "deadline.met",
    "met_late": "deadline.met",
    "breached": "deadline.breached",
    "exception": "deadline.exception",
    "cancelled": "deadline.cancelled",
}

EVENTS: Final = "events"
RULESET: Final = "ruleset"
CALENDAR: Final = "calendar"
TIME: Final = "time"
REASON_TEXT: Final = {
    EVENTS: "the case's events changed",
    RULESET: "the rule set changed",
    CALENDAR: "the working-day calendar changed",
    TIME: "time passed",
}


@dataclass(frozen=True, slots=True)
class StoredDeadline:
    deadline_id: str
    due_on: date
    status: str
    ruleset_version: str | None = None
    rule_id: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    event_type: str
    deadline: Any  # the engine's Deadline; None when the engine no longer produces it
    previous: StoredDeadline | None
    reason: str = EVENTS
    detail: str = ""


def _same_state(a: str, b: str) -> bool:
    return a == b or (a in LIVE and b in LIVE)


def reason_for(before: StoredDeadline | None, after: Any, events_changed: bool) -> tuple[str, str]:
    """Why a deadline changed: (reason, detail in plain words). See the module's docstring."""
    if events_changed:
        return EVENTS, REASON_TEXT[EVENTS]
    old_version = before.ruleset_version if before is not None else None
    new_version = after.ruleset_version if after is not None else None
    if before is None or after is None:
        return RULESET, f"{REASON_TEXT[RULESET]}: rule set {new_version or old_version or '?'}"
    if old_version != new_version:
        return RULESET, f"{REASON_TEXT[RULESET]}: {old_version or '?'} -> {new_version}"
    if before.due_on != after.due_on:
        return CALENDAR, REASON_TEXT[CALENDAR]
    return TIME, REASON_TEXT[TIME]


def diff(stored: dict[str, StoredDeadline], computed: list[Any], events_changed: bool = True) -> list[Change]:
    """The changes to publish. ``events_changed``: whether the case's history changed since its
    deadlines were stored (only for the reason each change carries)."""
    changes: list[Change] = []
    seen: set[str] = set()

    def change(event_type: str, d: Any, before: StoredDeadline | None) -> Change:
        return Change(event_type, d, before, *reason_for(before, d, events_changed))

    for d in computed:
        seen.add(d.deadline_id)
        before = stored.get(d.deadline_id)
        status = str(d.status)
        if before is None:
            if status == "cancelled":
                continue  # never announced, nothing to withdraw
            changes.append(change("deadline.opened", d, None))
            if status not in LIVE:
                changes.append(change(STATUS_EVENT[status], d, None))
            continue
        if not _same_state(before.status, status):
            changes.append(change(STATUS_EVENT.get(status, "deadline.changed"), d, before))
        elif before.due_on != d.due_on:
            changes.append(change("deadline.changed", d, before))
    # A stored deadline the engine no longer produces (its trigger was retracted): cancel it.
    for deadline_id, before in stored.items():
        if deadline_id not in seen and before.status != "cancelled":
            changes.append(change("deadline.cancelled", None, before))
    return changes


def change_kind(change: Change) -> str:
    """added | moved | status | removed (a date and a status changing together count as status)."""
    if change.previous is None:
        return "added"
    if change.deadline is None:
        return "removed"
    if change.event_type == "deadline.changed" and change.previous.due_on != change.deadline.due_on and \
            _same_state(change.previous.status, str(change.deadline.status)):
        return "moved"
    return "status"


def describe(case_id: str, change: Change) -> dict[str, Any]:
    """One change as plain values: what a dry run reports, and what a real run publishes."""
    before, after = change.previous, change.deadline
    deadline_id = after.deadline_id if after is not None else before.deadline_id  # type: ignore[union-attr]
    rule_id = after.rule_id if after is not None else (before.rule_id if before else None)
    new_status = "cancelled" if after is None else str(after.status)
    return {
        "case_id": case_id,
        "deadline_id": deadline_id,
        "rule_id": rule_id or deadline_id.split(":")[-2],
        "change": change_kind(change),
        "event_type": change.event_type,
        "old": None if before is None else {"due_on": before.due_on.isoformat(), "status": before.status,
                                            "ruleset_version": before.ruleset_version},
        "new": {"due_on": (after.due_on if after is not None else before.due_on).isoformat(),  # type: ignore[union-attr]
                "status": new_status,
                "ruleset_version": after.ruleset_version if after is not None else None},
        "reason": change.reason,
        "detail": change.detail,
        "legal_source": after.legal_source if after is not None else None,
    }


def describe_quality(case_id: str, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """A case's data-quality update (its ``case.data_quality`` event) as a dry run reports it."""
    return {"case_id": case_id, "change": "data_quality", "event_type": DATA_QUALITY_EVENT_TYPE, "old": old, "new": new}
