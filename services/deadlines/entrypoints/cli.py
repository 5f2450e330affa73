"""``ehc deadlines compute``: canonical case events (JSON lines) on stdin, deadlines on stdout.

No broker or database: it reads every line, groups events by case, runs the pure engine and prints
one JSON object per deadline. Invalid input exits with status 2 and one line on stderr naming the
input line and the problem, never a traceback.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from services.deadlines.domain import (
    CASE_EVENT_TYPES,
    EVENT_FIELDS,
    CalendarError,
    CaseEventRecord,
    RuleSetError,
    TermCalendar,
    WorkingDayCalendar,
    compute_cases,
    load_ruleset_history,
)

deadlines_app = typer.Typer(help="Statutory EHC deadlines.", no_args_is_help=True, add_completion=False)

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EXIT_INVALID = 2


class InputError(ValueError):
    """One line of input is not a valid canonical case event."""

    def __init__(self, line_no: int, problem: str) -> None:
        super().__init__(f"line {line_no}: {problem}")
        self.line_no = line_no
        self.problem = problem


def _iso_date(value: Any, where: str, line_no: int) -> date:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise InputError(line_no, f"{where} must be a date as YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(line_no, f"{where} is not a real date: {value!r}") from None


def _text(envelope: dict[str, Any], name: str, line_no: int) -> str:
    value = envelope.get(name)
    if value is None:
        raise InputError(line_no, f"{name} is missing")
    if not isinstance(value, str) or not value.strip():
        raise InputError(line_no, f"{name} must be a non-empty string")
    return value


def parse_line(line_no: int, text: str) -> CaseEventRecord:
    """Validate one canonical CloudEvents line and turn it into a :class:`CaseEventRecord`.

    Interim validator until the shared pydantic contracts are wired in; raises :class:`InputError`
    (a ``ValueError``) whose message starts with ``line N:``.
    """
    try:
        envelope = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(line_no, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(envelope, dict):
        raise InputError(line_no, "expected a JSON object (a CloudEvents envelope)")
    if envelope.get("specversion") != "1.0":
        raise InputError(line_no, f"specversion must be \"1.0\", got {envelope.get('specversion')!r}")
    event_id = _text(envelope, "id", line_no)
    _text(envelope, "source", line_no)
    event_type = _text(envelope, "type", line_no)
    if event_type not in CASE_EVENT_TYPES:
        raise InputError(line_no, f"unknown event type {event_type!r}")
    case_id = _text(envelope, "subject", line_no)
    raw_time = _text(envelope, "time", line_no)
    try:
        recorded_at = datetime.fromisoformat(raw_time)
    except ValueError:
        raise InputError(line_no, f"time is not an ISO 8601 date-time: {raw_time!r}") from None
    if recorded_at.tzinfo is None:
        raise InputError(line_no, f"time must carry a UTC offset (e.g. 2026-01-05T10:00:00Z), got {raw_time!r}")
    content_type = envelope.get("datacontenttype", "application/json")
    if content_type != "application/json":
        raise InputError(line_no, f"datacontenttype must be application/json, got {content_type!r}")
    supersedes = envelope.get("supersedes")
    if supersedes is not None and (not isinstance(supersedes, str) or not supersedes):
        raise InputError(line_no, "supersedes must be a non-empty string when present")

    raw_data = envelope.get("data")
    if raw_data is None:
        raise InputError(line_no, "data is missing")
    if not isinstance(raw_data, dict):
        raise InputError(line_no, "data must be a JSON object")
    if "occurred_on" not in raw_data:
        raise InputError(line_no, f"{event_type}: data.occurred_on is missing")
    occurred_on = _iso_date(raw_data["occurred_on"], "data.occurred_on", line_no)
    data: dict[str, Any] = {k: v for k, v in raw_data.items() if k != "occurred_on"}
    for spec in EVENT_FIELDS[event_type]:
        where = f"{event_type}: data.{spec.name}"
        value = data.get(spec.name)
        if value is None:
            if spec.required:
                raise InputError(line_no, f"{where} is missing")
            continue
        if spec.kind == "date":
            data[spec.name] = _iso_date(value, f"data.{spec.name}", line_no)
        elif spec.kind == "choice":
            if value not in spec.choices:
                raise InputError(line_no, f"{where} must be one of {', '.join(sorted(spec.choices))}, got {value!r}")
        elif spec.kind == "bool":
            if not isinstance(value, bool):
                raise InputError(line_no, f"{where} must be true or false, got {value!r}")
        elif spec.kind == "str_list":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(line_no, f"{where} must be a list of strings")
        elif not isinstance(value, str) or not value:
            raise InputError(line_no, f"{where} must be a non-empty string, got {value!r}")
    return CaseEventRecord(
        id=event_id,
        case_id=case_id,
        type=event_type,
        occurred_on=occurred_on,
        recorded_at=recorded_at,
        data=data,
        supersedes=supersedes,
    )


def _stdin_lines() -> Iterator[str | bytes]:
    """Lines of stdin, as bytes where possible so that bad UTF-8 is reported with its line."""
    buffer = getattr(sys.stdin, "buffer", None)
    return iter(buffer) if buffer is not None else iter(sys.stdin)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=EXIT_INVALID)


@deadlines_app.callback()
def _deadlines() -> None:
    """Statutory EHC deadlines (England)."""


@deadlines_app.command("compute")
def compute_command(
    as_of: Annotated[str, typer.Option("--as-of", help="The date statuses are computed for (YYYY-MM-DD).")],
    ruleset: Annotated[str, typer.Option("--ruleset", help="Rule set name.")] = "england",
    bank_holidays: Annotated[
        Path | None,
        typer.Option("--bank-holidays", help="Override file (YAML/JSON): extra and removed bank holidays."),
    ] = None,
    terms: Annotated[
        Path | None,
        typer.Option("--terms", help="Term calendar (YAML/JSON) for E1/E2 hints; default: the shipped example."),
    ] = None,
    due_soon_days: Annotated[
        int | None, typer.Option("--due-soon-days", min=0, help="Working days before due that count as due soon.")
    ] = None,
) -> None:
    """Read canonical case events (JSON lines, any cases, any order) on stdin; print one JSON
    object per deadline on stdout."""
    try:
        as_of_date = date.fromisoformat(as_of) if _ISO_DATE.match(as_of) else None
    except ValueError:
        as_of_date = None
    if as_of_date is None:
        raise _fail(f"--as-of must be a real date as YYYY-MM-DD, got {as_of!r}")
    try:
        history = load_ruleset_history(ruleset)
        calendar = WorkingDayCalendar.from_override_file(bank_holidays)
        term_calendar = TermCalendar.from_file(terms)
    except (RuleSetError, CalendarError, OSError) as exc:
        raise _fail(str(exc)) from None

    events: list[CaseEventRecord] = []
    for line_no, line in enumerate(_stdin_lines(), start=1):
        if not line.strip():
            continue
        try:
            if isinstance(line, bytes):
                line = line.decode("utf-8")
            events.append(parse_line(line_no, line))
        except UnicodeDecodeError:
            raise _fail(f"line {line_no}: not valid UTF-8") from None
        except InputError as exc:
            raise _fail(str(exc)) from None
    try:
        deadlines = compute_cases(
            events, history, calendar, as_of_date, terms=term_calendar, due_soon_working_days=due_soon_days
        )
    except ValueError as exc:  # a history the engine cannot compute (should not pass parse_line)
        raise _fail(f"cannot compute: {exc}") from None
    write = sys.stdout.write
    for d in deadlines:
        write(json.dumps(d.to_dict(), ensure_ascii=False) + "\n")


if __name__ == "__main__":  # pragma: no cover
    deadlines_app()
