"""The engine's output: one deadline, explained (law file sections B and C)."""

from __future__ import annotations

from dataclasses import dataclass, fields, make_dataclass
from datetime import date
from enum import StrEnum
from typing import Any


class DeadlineStatus(StrEnum):
    """The closed set of statuses (DESIGN §3)."""

    OPEN = "open"
    DUE_SOON = "due_soon"
    MET = "met"
    MET_LATE = "met_late"
    BREACHED = "breached"
    EXCEPTION = "exception"
    CANCELLED = "cancelled"


class DeadlineKind(StrEnum):
    """What a deadline asks of whom.

    - ``duty``: someone must act by ``due_on``; breached the day after if they have not.
    - ``window``: a period the family (or the body asked) has; it never breaches: it closes.
    - ``not_before``: the LA must *not* act (e.g. cease a plan) on or before ``due_on``.
    - ``guidance``: the Code suggests a time; never breached.
    """

    DUTY = "duty"
    WINDOW = "window"
    NOT_BEFORE = "not_before"
    GUIDANCE = "guidance"


@dataclass(frozen=True, slots=True)
class Deadline:
    """One deadline of one case, with everything needed to explain it.

    ``deadline_id`` is ``f"{case_id}:{rule_id}:{instance}"`` and is stable across recomputations:
    instances are numbered by the order of their starting events (or keyed by ``advice_id`` /
    ``institution_id``), never by dates that a correction could change.
    """

    case_id: str
    rule_id: str
    deadline_id: str
    instance: str
    title: str
    kind: str
    due_on: date
    status: DeadlineStatus
    responsible: str
    trigger_event_id: str
    trigger_date: date
    completed_by_event_id: str | None
    completed_on: date | None
    cancelled_by_event_id: str | None
    cancelled_on: date | None
    legal_source: str
    period_text: str
    convention: str
    flags: tuple[str, ...]
    exception: str | None
    exception_reason: str | None
    exception_event_id: str | None
    ruleset_version: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: dates as ISO strings, the status as its value, flags as a list."""
        return {
            "case_id": self.case_id,
            "rule_id": self.rule_id,
            "deadline_id": self.deadline_id,
            "instance": self.instance,
            "title": self.title,
            "kind": self.kind,
            "due_on": self.due_on.isoformat(),
            "status": self.status.value,
            "responsible": self.responsible,
            "trigger_event_id": self.trigger_event_id,
            "trigger_date": self.trigger_date.isoformat(),
            "completed_by_event_id": self.completed_by_event_id,
            "completed_on": _iso(self.completed_on),
            "cancelled_by_event_id": self.cancelled_by_event_id,
            "cancelled_on": _iso(self.cancelled_on),
            "legal_source": self.legal_source,
            "period_text": self.period_text,
            "convention": self.convention,
            "flags": list(self.flags),
            "exception": self.exception,
            "exception_reason": self.exception_reason,
            "exception_event_id": self.exception_event_id,
            "ruleset_version": self.ruleset_version,
        }


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


# Building a frozen dataclass costs one object.__setattr__ call per field: for Deadline's 23 fields
# that was 40% of the engine's time. make_deadline therefore fills MutableDeadline, a twin with the
# same slots in the same order, and relabels it as a Deadline (``__class__`` assignment is allowed
# between classes with the same slot layout). The result is an ordinary, frozen Deadline; a unit
# test checks that it equals the one the dataclass constructor builds. The engine goes one step
# further: its working clocks (engine._Clock) have Deadline's slots themselves and are relabelled
# in place, so no second object is built per deadline.
MutableDeadline = make_dataclass(
    "MutableDeadline", [(f.name, f.type) for f in fields(Deadline)], slots=True, eq=False, repr=False
)


def make_deadline(*values: Any) -> Deadline:
    """``Deadline(*values)``, faster (values positional, in field order)."""
    d = MutableDeadline(*values)
    d.__class__ = Deadline
    return d  # type: ignore[no-any-return]
