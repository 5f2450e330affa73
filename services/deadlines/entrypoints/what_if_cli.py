"""``ehc deadlines what-if``: forwards, backwards and at-risk questions, answered by the engine.

    ehc deadlines what-if forward --event ehc.request.received@2026-03-02
    ehc deadlines what-if backward --by 2028-02-15 \\
        --step ehc.review.meeting_held:review.decision --step ehc.amendment.proposed:amendment.final
    ehc deadlines what-if at-risk --rule review.decision
    ehc deadlines what-if at-risk --history case.jsonl --deadline-id c-1:review.decision:1 --as-of 2027-07-01

No broker or database. Every deadline is shown with its rule, period in words and legal source;
``--json`` prints JSON instead. Exit 2 with one line on stderr for a question that cannot be asked.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from services.deadlines.domain import (
    CalendarError,
    CaseEventRecord,
    Deadline,
    RuleSetError,
    WorkingDayCalendar,
    load_ruleset_history,
)
from services.deadlines.domain.rules import RuleSetHistory
from services.deadlines.domain.what_if import (
    WhatIfError,
    at_risk,
    backward,
    dependents,
    forward,
    parse_hypothesis,
    parse_step,
)
from services.deadlines.entrypoints.cli import EXIT_INVALID, InputError, parse_line

what_if_app = typer.Typer(help="What-if: when would each deadline fall; by when must a step happen; what a "
                          "missed deadline puts at risk.", no_args_is_help=True, add_completion=False)

RulesetOpt = Annotated[str, typer.Option("--ruleset", help="Rule set name.")]
HolidaysOpt = Annotated[Path | None, typer.Option("--bank-holidays", help="Bank-holiday override file (YAML/JSON).")]
HistoryOpt = Annotated[Path | None, typer.Option("--history", help="A case's canonical events (JSON lines) to start "
                                                 "from.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=EXIT_INVALID)


def _setup(ruleset: str, bank_holidays: Path | None) -> tuple[RuleSetHistory, WorkingDayCalendar]:
    try:
        return load_ruleset_history(ruleset), WorkingDayCalendar.from_override_file(bank_holidays)
    except (RuleSetError, CalendarError, OSError) as exc:
        raise _fail(str(exc)) from None


def _history(path: Path | None) -> list[CaseEventRecord]:
    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        events = [parse_line(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"{path}: cannot be read ({exc})") from None
    except InputError as exc:
        raise _fail(f"{path}: {exc}") from None
    if len({e.case_id for e in events}) > 1:
        raise _fail(f"{path}: events of more than one case")
    return events


def _date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _fail(f"{option} must be a date as YYYY-MM-DD, got {text!r}") from None


def explain(d: Deadline) -> str:
    """One deadline in one line: rule, due date, status, period in words and legal source."""
    return f"{d.rule_id:<28} due {d.due_on.isoformat()}  {d.status.value:<9} {d.title}: {d.period_text}"


def _out(as_json: bool, payload: Any, lines: list[str]) -> None:
    typer.echo(json.dumps(payload, indent=2) if as_json else "\n".join(lines))


@what_if_app.command("forward")
def forward_command(
    event: Annotated[list[str], typer.Option("--event", help="TYPE@YYYY-MM-DD[,field=value...] (repeatable), e.g. "
                                             "ehc.request.received@2026-03-02")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Statuses as of this date (default: the first "
                                              "event's date).")] = None,
    history: HistoryOpt = None, ruleset: RulesetOpt = "england", bank_holidays: HolidaysOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """If these events happen on these dates, when is each deadline?"""
    rules, calendar = _setup(ruleset, bank_holidays)
    try:
        hypotheses = [parse_hypothesis(spec) for spec in event]
        deadlines = forward(hypotheses, rules, calendar, _date(as_of, "--as-of"), _history(history))
    except WhatIfError as exc:
        raise _fail(str(exc)) from None
    _out(as_json, [d.to_dict() for d in deadlines],
         [explain(d) for d in deadlines] or ["no deadline starts from these events"])


@what_if_app.command("backward")
def backward_command(
    by: Annotated[str, typer.Option("--by", help="The date the last step's deadline must fall on or before.")],
    step: Annotated[list[str], typer.Option("--step", help="EVENT_TYPE:RULE_ID, in the order they happen "
                                            "(repeatable), e.g. ehc.amendment.proposed:amendment.final")],
    history: HistoryOpt = None, ruleset: RulesetOpt = "england", bank_holidays: HolidaysOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """To meet a date: by when must each step happen? (binary search with the engine)"""
    rules, calendar = _setup(ruleset, bank_holidays)
    target = _date(by, "--by")
    assert target is not None
    try:
        answers = backward([parse_step(s) for s in step], target, rules, calendar, history=_history(history))
    except WhatIfError as exc:
        raise _fail(str(exc)) from None
    lines = []
    for a in answers:
        if a.latest is None or a.deadline is None:
            lines.append(f"{a.trigger_type}: no date from {a.searched_from} on makes {a.rule_id} due by {a.target}")
            continue
        later = f"; a day later it would be due {a.one_day_later.due_on}" if a.one_day_later else ""
        lines.append(f"{a.trigger_type} by {a.latest.isoformat()}: then {explain(a.deadline)} "
                     f"[{a.deadline.legal_source}], on or before {a.target}{later}")
    _out(as_json, [a.to_dict() for a in answers], lines)


@what_if_app.command("at-risk")
def at_risk_command(
    rule: Annotated[str | None, typer.Option("--rule", help="A rule id: which rules its completion starts.")] = None,
    deadline_id: Annotated[str | None, typer.Option("--deadline-id", help="With --history: a deadline of the "
                                                    "case.")] = None,
    completed_on: Annotated[str | None, typer.Option("--completed-on", help="When it will now be done (default: "
                                                     "--as-of).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Statuses as of this date.")] = None,
    history: HistoryOpt = None, ruleset: RulesetOpt = "england", bank_holidays: HolidaysOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """This deadline is missed: which later deadlines does that put at risk?"""
    rules, calendar = _setup(ruleset, bank_holidays)
    try:
        if deadline_id is None:
            if rule is None:
                raise WhatIfError("give --rule RULE_ID, or --history FILE with --deadline-id ID")
            found = dependents(rule, rules.latest)
            _out(as_json, [d.to_dict() for d in found],
                 [f"{rule} is completed by {d.completing_event}, which starts {d.rule.rule_id} "
                  f"({d.rule.period_text}; {d.rule.legal_source})"
                  + (f" when {', '.join(f'{k}={v}' for k, v in d.when.items())}" if d.when else "")
                  for d in found] or [f"no rule starts from the completion of {rule}"])
            return
        events = _history(history)
        if not events:
            raise WhatIfError("--deadline-id needs --history FILE (the case's events)")
        day = _date(as_of, "--as-of") or date.today()
        answer = at_risk(events, deadline_id, rules, calendar, day, _date(completed_on, "--completed-on"))
    except WhatIfError as exc:
        raise _fail(str(exc)) from None
    lines = [f"{explain(answer.deadline)}; if done on {answer.completed_on}:"]
    for _dep, on_time, late in answer.dependents:
        if late is None:
            continue
        shift = f", {(late.due_on - on_time.due_on).days} days later than if done on time" if on_time else ""
        lines.append(f"  {explain(late)}{shift}")
    _out(as_json, answer.to_dict(), lines)
