"""``ehc deadlines compute``: canonical case events (JSON lines) on stdin, deadlines on stdout.

No broker or database: it reads every line, groups events by case, runs the pure engine and prints
one JSON object per deadline. Invalid input exits with status 2 and one line on stderr naming the
input line and the problem, never a traceback.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from services.deadlines.adapters.records import record_from_event  # noqa: E402
from services.deadlines.domain import (
    CalendarError,
    CaseEventRecord,
    RuleSetError,
    TermCalendar,
    WorkingDayCalendar,
    compute_cases,
    load_ruleset_history,
)
from shared.contracts import describe_validation_error, parse_case_event  # noqa: E402

deadlines_app = typer.Typer(help="Statutory EHC deadlines.", no_args_is_help=True, add_completion=False)

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EXIT_INVALID = 2


class InputError(ValueError):
    """One line of input is not a valid canonical case event."""

    def __init__(self, line_no: int, problem: str) -> None:
        super().__init__(f"line {line_no}: {problem}")
        self.line_no = line_no
        self.problem = problem


def parse_line(line_no: int, text: str | bytes) -> CaseEventRecord:
    """Validate one line against the shared canonical contracts and turn it into a
    :class:`CaseEventRecord`; raises :class:`InputError` (a ``ValueError``) whose message starts
    with ``line N:`` and names the field and the problem."""
    try:
        return record_from_event(parse_case_event(text))
    except ValidationError as exc:
        raise InputError(line_no, describe_validation_error(exc)) from None


def _stdin_lines() -> Iterator[str | bytes]:
    """Lines of stdin, as bytes where possible so that bad UTF-8 is reported with its line."""
    buffer = getattr(sys.stdin, "buffer", None)
    return iter(buffer) if buffer is not None else iter(sys.stdin)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=EXIT_INVALID)


def _uncomputable(events: list[CaseEventRecord], first_line: dict[str, int],
                  run: Callable[[list[CaseEventRecord]], Any]) -> str:
    """Which case could not be computed, named by the line of its first event."""
    for case_id, line_no in sorted(first_line.items(), key=lambda item: item[1]):
        try:
            run([e for e in events if e.case_id == case_id])
        except (ValueError, ArithmeticError) as exc:
            problem = "a date beyond the calendar (year 9999)" if isinstance(exc, OverflowError) else str(exc)
            return f"line {line_no}: cannot compute the deadlines of case {case_id}: {problem}"
    return "cannot compute the deadlines of these events"


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
    first_line: dict[str, int] = {}  # case id -> the line of its first event, to name in an error
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
        first_line.setdefault(events[-1].case_id, line_no)

    def run(chosen: list[CaseEventRecord]) -> list[Any]:
        return compute_cases(chosen, history, calendar, as_of_date, terms=term_calendar,
                             due_soon_working_days=due_soon_days)

    try:
        deadlines = run(events)
    except (ValueError, ArithmeticError):  # a history the engine cannot compute (a date near year 9999)
        raise _fail(_uncomputable(events, first_line, run)) from None
    write = sys.stdout.write
    for d in deadlines:
        write(json.dumps(d.to_dict(), ensure_ascii=False) + "\n")


if __name__ == "__main__":  # pragma: no cover
    deadlines_app()
