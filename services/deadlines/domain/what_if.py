"""What-if questions answered by the engine itself (issue 11, item 3). Pure: no I/O.

- :func:`forward`: "if the request arrives on D, when is each deadline": the engine over a case
  made of hypothetical events (after an optional real history).
- :func:`latest_trigger` and :func:`backward`: "to meet a date, by when must X happen": a
  binary search over trigger dates, each probe a run of the engine (due dates never move earlier
  when the trigger moves later), so the answer follows the rule set and the calendar exactly,
  with no second copy of the rules. :func:`backward` chains steps: the latest date of a later
  step is the target of the step before it (review meeting -> decision -> amendments -> final).
- :func:`dependents` and :func:`at_risk`: "this deadline is missed: which later deadlines does
  that put at risk": the rules started by the events that complete it, and, for a case, when
  they would fall if it were completed on a later day rather than on its due date.

Every deadline returned is the engine's own :class:`Deadline`, explained as always (rule id,
legal source, period in words, trigger).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .calendar import WorkingDayCalendar
from .engine import compute
from .events import CaseEventRecord
from .model import Deadline
from .rules import EventMatch, Rule, RuleSet, RuleSetHistory

WHAT_IF_CASE = "what-if"
SEARCH_YEARS = 6  # how far before the target a backward search looks


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """One hypothetical event: its type, its date and its data (dates as ``date`` objects)."""

    type: str
    on: date
    data: Mapping[str, Any] = field(default_factory=dict)


def _record(case_id: str, n: int, h: Hypothesis) -> CaseEventRecord:
    # Recorded after any real event of the same day, in the order given.
    at = datetime(h.on.year, h.on.month, h.on.day, 23, 59, tzinfo=UTC) + timedelta(microseconds=n)
    return CaseEventRecord(f"what-if-{n}", case_id, h.type, h.on, at, dict(h.data))


def _case_of(history: Sequence[CaseEventRecord]) -> str:
    return history[0].case_id if history else WHAT_IF_CASE


def forward(hypotheses: Sequence[Hypothesis], ruleset: RuleSet | RuleSetHistory, calendar: WorkingDayCalendar,
            as_of: date | None = None, history: Sequence[CaseEventRecord] = ()) -> list[Deadline]:
    """Every deadline of ``history`` plus the hypothetical events, as of ``as_of`` (default: the
    first hypothetical date, so that nothing is yet late)."""
    case_id = _case_of(history)
    events = [*history, *(_record(case_id, n, h) for n, h in enumerate(hypotheses, start=1))]
    day = as_of or min((h.on for h in hypotheses), default=None) or max(e.occurred_on for e in history)
    return compute(events, ruleset, calendar, day)


@dataclass(frozen=True, slots=True)
class LatestTrigger:
    """The answer to "by when must ``trigger_type`` happen for ``rule_id`` to be due by ``target``"."""

    trigger_type: str
    rule_id: str
    target: date
    latest: date | None  # None: no date in the searched range meets the target
    deadline: Deadline | None  # the deadline the trigger starts on ``latest``
    one_day_later: Deadline | None  # the same deadline if the trigger came a day later (misses)
    searched_from: date

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger_type": self.trigger_type,
            "rule_id": self.rule_id,
            "target": self.target.isoformat(),
            "latest": None if self.latest is None else self.latest.isoformat(),
            "deadline": None if self.deadline is None else self.deadline.to_dict(),
            "one_day_later_due_on": None if self.one_day_later is None else self.one_day_later.due_on.isoformat(),
            "searched_from": self.searched_from.isoformat(),
        }


class WhatIfError(ValueError):
    """A what-if question the rule set cannot answer (the message says why)."""


def _started(rule_id: str, trigger_type: str, ruleset: RuleSet | RuleSetHistory, on: date) -> Rule:
    version = ruleset.at(on)
    rule = version.rules.get(rule_id)
    if rule is None:
        raise WhatIfError(f"no rule {rule_id!r} in rule set {version.version}")
    if not any(m.type == trigger_type for m in rule.starts_on):
        starts = ", ".join(sorted({m.type for m in rule.starts_on}))
        raise WhatIfError(f"{rule_id} is not started by {trigger_type} (it is started by {starts})")
    return rule


def _trigger_data(rule: Rule, trigger_type: str, on: date, data: Mapping[str, Any]) -> dict[str, Any]:
    """The data the trigger needs to start the rule: the rule's conditions, and its date field."""
    match = next(m for m in rule.starts_on if m.type == trigger_type)
    filled = {name: sorted(allowed, key=str)[0] for name, allowed in match.when if name not in data}
    if match.date_field and match.date_field not in data:
        filled[match.date_field] = on
    return {**filled, **data}


def latest_trigger(trigger_type: str, rule_id: str, target: date, ruleset: RuleSet | RuleSetHistory,
                   calendar: WorkingDayCalendar, data: Mapping[str, Any] | None = None,
                   history: Sequence[CaseEventRecord] = (), earliest: date | None = None) -> LatestTrigger:
    """The latest day on which ``trigger_type`` can happen for the ``rule_id`` deadline it starts
    to fall due on or before ``target`` (binary search; every probe is a run of the engine)."""
    data = dict(data or {})
    _started(rule_id, trigger_type, ruleset, target)
    low = earliest or date(target.year - SEARCH_YEARS, target.month, min(target.day, 28))

    def started_on(day: date) -> Deadline | None:
        rule = _started(rule_id, trigger_type, ruleset, day)
        hypothesis = Hypothesis(trigger_type, day, _trigger_data(rule, trigger_type, day, data))
        for d in forward([hypothesis], ruleset, calendar, day, history):
            if d.rule_id == rule_id and d.trigger_event_id.startswith("what-if-"):
                return d
        return None

    def due(ordinal: int) -> int:
        d = started_on(date.fromordinal(ordinal))
        if d is None:
            raise WhatIfError(f"{trigger_type} on {date.fromordinal(ordinal)} does not start {rule_id}")
        return d.due_on.toordinal()

    days = range(low.toordinal(), target.toordinal() + 1)
    first_late = bisect.bisect_right(days, target.toordinal(), key=due)  # due dates never go back in time
    if first_late == 0:
        return LatestTrigger(trigger_type, rule_id, target, None, None, started_on(low), low)
    latest = date.fromordinal(days[first_late - 1])
    return LatestTrigger(trigger_type, rule_id, target, latest, started_on(latest),
                         started_on(latest + timedelta(days=1)), low)


def backward(steps: Sequence[tuple[str, str]], target: date, ruleset: RuleSet | RuleSetHistory,
             calendar: WorkingDayCalendar, data: Mapping[str, Mapping[str, Any]] | None = None,
             history: Sequence[CaseEventRecord] = ()) -> list[LatestTrigger]:
    """Steps in the order they happen, each (trigger event type, rule id whose due date must be
    met); the last step's deadline must fall by ``target``, and each earlier step's deadline by
    the latest date of the step after it. Returned in the order given."""
    if not steps:
        raise WhatIfError("backward needs at least one step (trigger event type, rule id)")
    answers: list[LatestTrigger] = []
    by = target
    for trigger_type, rule_id in reversed(steps):
        answer = latest_trigger(trigger_type, rule_id, by, ruleset, calendar, (data or {}).get(trigger_type),
                                history)
        answers.append(answer)
        if answer.latest is None:
            break
        by = answer.latest
    return list(reversed(answers))


@dataclass(frozen=True, slots=True)
class Dependent:
    """A rule started by an event that completes another rule."""

    completing_event: str
    rule: Rule
    when: Mapping[str, list[Any]]  # the conditions on the completing event's data, if any

    def to_dict(self) -> dict[str, Any]:
        r = self.rule
        return {"completing_event": self.completing_event, "rule_id": r.rule_id, "title": r.title,
                "legal_source": r.legal_source, "period_text": r.period_text, "responsible": r.responsible,
                "when": {k: list(v) for k, v in self.when.items()}}


def dependents(rule_id: str, ruleset: RuleSet) -> list[Dependent]:
    """The rules whose trigger is the completion of ``rule_id`` (one version of the rule set)."""
    rule = ruleset.rules.get(rule_id)
    if rule is None:
        raise WhatIfError(f"no rule {rule_id!r} in rule set {ruleset.version}")
    out: list[Dependent] = []
    for completing in dict.fromkeys(m.type for m in rule.completed_by):
        for other in ruleset.rules.values():
            for m in other.starts_on:
                if m.type == completing and other.rule_id != rule_id:
                    out.append(Dependent(completing, other, {k: sorted(v, key=str) for k, v in m.when}))
    return out


@dataclass(frozen=True, slots=True)
class AtRisk:
    """A missed (or late) deadline of a case and the deadlines its completion would start."""

    deadline: Deadline
    completed_on: date
    # (rule, due if completed on the due date, due if completed on ``completed_on``), per dependent
    dependents: list[tuple[Dependent, Deadline | None, Deadline | None]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "deadline": self.deadline.to_dict(),
            "completed_on": self.completed_on.isoformat(),
            "dependents": [{**dep.to_dict(),
                            "due_if_completed_on_time": None if on_time is None else on_time.due_on.isoformat(),
                            "due_if_completed_on": None if late is None else late.due_on.isoformat(),
                            "days_later": None if on_time is None or late is None
                            else (late.due_on - on_time.due_on).days,
                            "deadline": None if late is None else late.to_dict()}
                           for dep, on_time, late in self.dependents],
        }


def _completion_data(match: EventMatch, dependent: Dependent, day: date) -> dict[str, Any]:
    data: dict[str, Any] = {name: sorted(allowed, key=str)[0] for name, allowed in match.when}
    data.update({name: values[0] for name, values in dependent.when.items() if values})
    if match.date_field:
        data[match.date_field] = day
    return data


def at_risk(history: Sequence[CaseEventRecord], deadline_id: str, ruleset: RuleSet | RuleSetHistory,
            calendar: WorkingDayCalendar, as_of: date, completed_on: date | None = None) -> AtRisk:
    """For one deadline of a case: each dependent deadline, due if the deadline were completed on
    its due date, and due if it is completed on ``completed_on`` (default ``as_of``)."""
    current = {d.deadline_id: d for d in compute(list(history), ruleset, calendar, as_of)}
    deadline = current.get(deadline_id)
    if deadline is None:
        raise WhatIfError(f"the case has no deadline {deadline_id!r}")
    day = completed_on or as_of
    rule = ruleset.at(deadline.trigger_date).rules[deadline.rule_id]
    found: list[tuple[Dependent, Deadline | None, Deadline | None]] = []
    for dependent in dependents(deadline.rule_id, ruleset.at(deadline.trigger_date)):
        match = next(m for m in rule.completed_by if m.type == dependent.completing_event)

        def started(on: date, dependent: Dependent = dependent, match: EventMatch = match) -> Deadline | None:
            hypothesis = Hypothesis(dependent.completing_event, on, _completion_data(match, dependent, on))
            for d in forward([hypothesis], ruleset, calendar, on, history):
                if d.rule_id == dependent.rule.rule_id and d.trigger_event_id.startswith("what-if-"):
                    return d
            return None

        found.append((dependent, started(deadline.due_on), started(day)))
    return AtRisk(deadline, day, found)


# -- the question as typed (CLI options, API query parameters) -----------------------------------


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return date.fromisoformat(text)
    except ValueError:
        return text


def parse_hypothesis(spec: str) -> Hypothesis:
    """``TYPE@YYYY-MM-DD[,field=value...]``, e.g. ``ehc.request.received@2026-03-02`` or
    ``ehc.review.decision_issued@2027-06-01,outcome=amend``."""
    head, _, rest = spec.partition(",")
    event_type, at, day = head.partition("@")
    if not at or not event_type.startswith("ehc."):
        raise WhatIfError(f"{spec!r}: expected TYPE@YYYY-MM-DD[,field=value...], e.g. ehc.request.received@2026-03-02")
    try:
        on = date.fromisoformat(day)
    except ValueError:
        raise WhatIfError(f"{spec!r}: {day!r} is not a date as YYYY-MM-DD") from None
    data: dict[str, Any] = {}
    for pair in filter(None, rest.split(",")):
        name, eq, value = pair.partition("=")
        if not eq or not name:
            raise WhatIfError(f"{spec!r}: {pair!r} is not field=value")
        data[name.strip()] = _value(value.strip())
    return Hypothesis(event_type, on, data)


def parse_step(spec: str) -> tuple[str, str]:
    """``EVENT_TYPE:RULE_ID``, e.g. ``ehc.amendment.proposed:amendment.final``."""
    event_type, colon, rule_id = spec.partition(":")
    if not colon or not event_type.startswith("ehc.") or not rule_id:
        raise WhatIfError(f"{spec!r}: expected EVENT_TYPE:RULE_ID, e.g. ehc.amendment.proposed:amendment.final")
    return event_type, rule_id
