"""Helpers for the deadlines engine's unit tests: shared configuration and a case builder.

Loaded once per test session (the rule set and calendars are immutable configuration).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.deadlines.adapters.records import date_fields
from services.deadlines.domain import (
    CaseEventRecord,
    Deadline,
    TermCalendar,
    WorkingDayCalendar,
    compute,
    load_ruleset_history,
)

HISTORY = load_ruleset_history("england")
RULESET = HISTORY.latest
CALENDAR = WorkingDayCalendar()
TERMS = TermCalendar.from_file()



def d(text: str) -> date:
    return date.fromisoformat(text)


def event(
    type_: str,
    on: str | date,
    *,
    id: str,
    case_id: str = "case-1",
    recorded: datetime | None = None,
    supersedes: str | None = None,
    **data: Any,
) -> CaseEventRecord:
    """A CaseEventRecord; date fields of ``data`` may be given as ISO strings."""
    occurred = d(on) if isinstance(on, str) else on
    for name in date_fields(type_):
        if isinstance(data.get(name), str):
            data[name] = d(data[name])
    recorded_at = recorded or datetime(occurred.year, occurred.month, occurred.day, 9, tzinfo=UTC)
    return CaseEventRecord(id, case_id, type_, occurred, recorded_at, data, supersedes)


class Case:
    """Builds one case's history in a test: ``case.add(type, on, **data)`` returns the event id."""

    def __init__(self, case_id: str = "case-1") -> None:
        self.case_id = case_id
        self.events: list[CaseEventRecord] = []

    def add(self, type_: str, on: str, *, id: str | None = None, supersedes: str | None = None, **data: Any) -> str:
        event_id = id or f"evt-{len(self.events) + 1}"
        occurred = d(on)
        # Same-day events keep the order they were added in (recorded a minute apart).
        recorded = datetime(occurred.year, occurred.month, occurred.day, 9, tzinfo=UTC) + timedelta(
            minutes=len(self.events)
        )
        self.events.append(
            event(type_, occurred, id=event_id, case_id=self.case_id, recorded=recorded, supersedes=supersedes, **data)
        )
        return event_id

    def compute(self, as_of: str, **kwargs: Any) -> list[Deadline]:
        kwargs.setdefault("terms", TERMS)
        return compute(self.events, kwargs.pop("ruleset", HISTORY), CALENDAR, d(as_of), **kwargs)

    def deadlines(self, as_of: str, rule_id: str, **kwargs: Any) -> list[Deadline]:
        return [x for x in self.compute(as_of, **kwargs) if x.rule_id == rule_id]

    def deadline(self, as_of: str, rule_id: str, instance: str = "1", **kwargs: Any) -> Deadline:
        found = [x for x in self.compute(as_of, **kwargs) if x.rule_id == rule_id and x.instance == instance]
        assert found, f"no {rule_id}:{instance} in {[x.deadline_id for x in self.compute(as_of, **kwargs)]}"
        return found[0]


def request_case(on: str = "2026-01-05", case_id: str = "case-1") -> Case:
    case = Case(case_id)
    case.add("ehc.request.received", on, route="request", requested_by="parent")
    return case


# -- table-driven rule tests ------------------------------------------------------------------

Ev = tuple[str, str, dict[str, Any]]


def ev(type_: str, on: str, **data: Any) -> Ev:
    """One event of a table row: (type, occurred_on, data)."""
    return (type_, on, data)


REQUEST = ev("ehc.request.received", "2026-01-05", route="request", requested_by="parent")


def check_row(
    events: list[Ev],
    as_of: str,
    rule_id: str,
    due: str,
    status: str,
    *,
    instance: str = "1",
    completed_on: str | None = None,
    flags: tuple[str, ...] = (),
    no_flags: tuple[str, ...] = (),
) -> Deadline:
    """Replay ``events``, find ``rule_id:instance`` and check its date, status and flags."""
    case = Case()
    for type_, on, data in events:
        case.add(type_, on, **dict(data))
    got = case.deadline(as_of, rule_id, instance)
    assert got.due_on == d(due), f"{rule_id}: due {got.due_on}, expected {due} ({got.period_text})"
    assert got.status.value == status, f"{rule_id}: status {got.status.value}, expected {status}"
    if completed_on is not None:
        assert got.completed_on == d(completed_on)
    for flag in flags:
        assert flag in got.flags, f"{rule_id}: flag {flag} missing from {got.flags}"
    for flag in no_flags:
        assert flag not in got.flags, f"{rule_id}: unexpected flag {flag} in {got.flags}"
    assert got.deadline_id == f"case-1:{rule_id}:{instance}"
    # Every deadline explains itself: the period in words, citing its legal source.
    assert got.legal_source and f"({got.legal_source})" in got.period_text
    return got


def row(test_id: str, events: list[Ev], as_of: str, rule_id: str, due: str, status: str, **extra: Any) -> Any:
    """One table row, named by rule and legal source (pytest id), checked by :func:`check_row`."""
    return pytest.param(events, as_of, rule_id, due, status, extra, id=test_id)


ROW_ARGS = ("events", "as_of", "rule_id", "due", "status", "extra")
