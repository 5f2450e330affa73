"""Shadow mode (issue 11, item 4): our deadlines against what the council's own system records.

Pure. "Theirs" are :class:`TheirRecord` values read from the council's files (an SEN2 return's
requests, issue dates and Week20 flags; a CSV of their own due dates) by the command line; "ours"
are the engine's deadlines. Records are matched per case and rule: first on the trigger date
(the request's received date for ``plan.final``), then by due date; what is left over on either
side is missing on the other. Each disagreement names the rule that explains ours (rule id,
period in words, legal source, trigger).

Kinds: ``missing_in_ours``, ``missing_in_theirs``, ``date_differs``, ``status_differs``
(e.g. late against on time) and ``exception_differs``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from .model import Deadline

MISSING_IN_OURS = "missing_in_ours"
MISSING_IN_THEIRS = "missing_in_theirs"
DATE_DIFFERS = "date_differs"
STATUS_DIFFERS = "status_differs"
EXCEPTION_DIFFERS = "exception_differs"
KINDS = (MISSING_IN_OURS, MISSING_IN_THEIRS, DATE_DIFFERS, STATUS_DIFFERS, EXCEPTION_DIFFERS)

# Statuses in words both sides can be put into.
ON_TIME, LATE, NOT_DONE_LATE, OPEN, CANCELLED = "on time", "late", "not done, late", "open", "cancelled"
_OURS = {"met": ON_TIME, "met_late": LATE, "breached": NOT_DONE_LATE, "open": OPEN, "due_soon": OPEN,
         "cancelled": CANCELLED}


@dataclass(frozen=True, slots=True)
class TheirRecord:
    """One deadline as the council's system records it. ``None`` means "not recorded there"."""

    case_id: str
    rule_id: str
    source: str  # e.g. "sen2", "council-csv"
    ref: str  # where in their data: "person 12", "row 7" (no personal data)
    due_on: date | None = None
    status: str | None = None  # one of ON_TIME, LATE, NOT_DONE_LATE, OPEN, CANCELLED
    exception: bool | None = None
    trigger_on: date | None = None  # e.g. the request's received date
    facts: dict[str, Any] = field(default_factory=dict)  # what they recorded, for the report

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "ref": self.ref, "due_on": _iso(self.due_on), "status": self.status,
                "exception": self.exception, "trigger_on": _iso(self.trigger_on), **self.facts}


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def status_in_words(d: Deadline) -> str:
    """Our status in the words both sides share (an exception is compared separately)."""
    if d.status == "exception":
        return NOT_DONE_LATE if d.completed_on is None else (ON_TIME if d.completed_on <= d.due_on else LATE)
    return _OURS.get(str(d.status), str(d.status))


def sen2_status(received_on: date | None, outcome: str, issued_on: date | None, as_of: date) -> tuple[date | None, str]:
    """The 20-week due date and the status an SEN2 request's assessment shows (DfE: within 140 days)."""
    due = None if received_on is None else received_on + timedelta(weeks=20)
    if outcome == "Y" and issued_on is not None:
        return due, ON_TIME if due is not None and issued_on <= due else LATE
    if outcome in ("N", "W"):
        return due, CANCELLED
    return due, NOT_DONE_LATE if due is not None and as_of > due else OPEN


@dataclass(frozen=True, slots=True)
class Disagreement:
    case_id: str
    rule_id: str
    kind: str
    ours: Deadline | None
    theirs: TheirRecord | None
    detail: str

    @property
    def explanation(self) -> str:
        """The rule behind ours: rule id, period in words (with its legal source), trigger."""
        d = self.ours
        if d is None:
            return "no deadline of ours: the events we hold do not start this rule for this case"
        return (f"{d.rule_id}: {d.period_text}; trigger {d.trigger_event_id} on {d.trigger_date.isoformat()}; "
                f"rule set {d.ruleset_version}")

    def to_dict(self) -> dict[str, Any]:
        ours = None if self.ours is None else {
            "deadline_id": self.ours.deadline_id, "due_on": self.ours.due_on.isoformat(),
            "status": str(self.ours.status), "status_in_words": status_in_words(self.ours),
            "exception": self.ours.exception, "legal_source": self.ours.legal_source,
            "trigger_date": self.ours.trigger_date.isoformat(), "completed_on": _iso(self.ours.completed_on)}
        return {"case_id": self.case_id, "rule_id": self.rule_id, "kind": self.kind, "detail": self.detail,
                "ours": ours, "theirs": None if self.theirs is None else self.theirs.to_dict(),
                "explanation": self.explanation}


def _pair(ours: list[Deadline], theirs: list[TheirRecord]
          ) -> tuple[list[tuple[Deadline, TheirRecord]], list[Deadline], list[TheirRecord]]:
    """Match on the trigger date first, then what is left in date order."""
    ours = sorted(ours, key=lambda d: (d.trigger_date, d.due_on, d.deadline_id))
    theirs = sorted(theirs, key=lambda t: (t.trigger_on or date.max, t.due_on or date.max, t.ref))
    pairs: list[tuple[Deadline, TheirRecord]] = []
    left: list[TheirRecord] = []
    for t in theirs:
        match = next((d for d in ours if t.trigger_on is not None and d.trigger_date == t.trigger_on), None)
        if match is None:
            left.append(t)
        else:
            ours.remove(match)
            pairs.append((match, t))
    # What is left on both sides is the same deadline recorded with other dates: pair in order.
    while left and ours:
        pairs.append((ours.pop(0), left.pop(0)))
    return pairs, ours, left


def _compare(d: Deadline, t: TheirRecord) -> list[Disagreement]:
    out: list[Disagreement] = []
    if t.due_on is not None and t.due_on != d.due_on:
        days = (d.due_on - t.due_on).days
        out.append(Disagreement(d.case_id, d.rule_id, DATE_DIFFERS, d, t,
                                f"ours is due {d.due_on}, theirs {t.due_on} ({days:+d} days)"))
    ours_status = status_in_words(d)
    if t.status is not None and t.status != ours_status:
        out.append(Disagreement(d.case_id, d.rule_id, STATUS_DIFFERS, d, t, f"ours: {ours_status}; theirs: {t.status}"))
    if t.exception is not None and t.exception != (d.exception is not None):
        ours_says = f"exception {d.exception}" if d.exception else "no exception"
        theirs_says = "an exception" if t.exception else "no exception"
        out.append(Disagreement(d.case_id, d.rule_id, EXCEPTION_DIFFERS, d, t, f"ours: {ours_says}; theirs: "
                                f"{theirs_says}"))
    return out


def reconcile(ours: Iterable[Deadline], theirs: Sequence[TheirRecord],
              rule_ids: Iterable[str] | None = None) -> list[Disagreement]:
    """Every disagreement, per case and rule. Only the rules their data covers are compared
    (``rule_ids``, default: the rules present in ``theirs``)."""
    scope = set(rule_ids) if rule_ids is not None else {t.rule_id for t in theirs}
    ours_by: dict[tuple[str, str], list[Deadline]] = defaultdict(list)
    for d in ours:
        if d.rule_id in scope:
            ours_by[(d.case_id, d.rule_id)].append(d)
    theirs_by: dict[tuple[str, str], list[TheirRecord]] = defaultdict(list)
    for t in theirs:
        theirs_by[(t.case_id, t.rule_id)].append(t)
    out: list[Disagreement] = []
    for key in sorted(set(ours_by) | set(theirs_by)):
        pairs, only_ours, only_theirs = _pair(ours_by.get(key, []), theirs_by.get(key, []))
        for d, t in pairs:
            out.extend(_compare(d, t))
        out.extend(Disagreement(d.case_id, d.rule_id, MISSING_IN_THEIRS, d, None,
                                f"ours is due {d.due_on} ({status_in_words(d)}); their data has no record of it")
                   for d in only_ours if d.status != "cancelled")  # a cancelled deadline need not be recorded
        out.extend(Disagreement(t.case_id, t.rule_id, MISSING_IN_OURS, None, t,
                                f"theirs ({t.ref}) is due {t.due_on or '?'}; we have no such deadline")
                   for t in only_theirs)
    return out
