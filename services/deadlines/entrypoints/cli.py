"""``ehc deadlines compute``: canonical case events (JSON lines) on stdin, deadlines on stdout.

No broker or database: it reads every line, groups events by case, runs the pure engine and prints
one JSON object per deadline. Invalid input exits with status 2 and one line on stderr naming the
input line and the problem, never a traceback.

Fast and lean (issue 12): the module imports nothing heavy until the command runs; lines are read by
services/deadlines/adapters/event_lines.py (the shared contracts compiled into msgspec Structs,
pydantic for any line they refuse, so errors read exactly as before); each case's history is
resolved once for its deadlines and its data-quality warnings (engine.compute_with_quality); the
cases are written with msgspec a chunk at a time as they are computed and their input dropped; the
cyclic garbage collector, which would only walk the (acyclic) records again and again, is off while
reading and the records frozen out of its sight while computing. With ``--workers N`` (by default
every usable CPU, at most 4, for 20,000 lines or more) the cases are computed by N forked processes,
the output the same in content and order (services/deadlines/entrypoints/compute_run.py).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer.core import TyperCommand

from shared.lazy_cli import lazy_group

if TYPE_CHECKING:  # the engine, pydantic and msgspec are imported when a command runs, not at start-up
    from services.deadlines.domain import CaseEventRecord

# `what-if` is imported when it is used (shared/lazy_cli.py): `compute` does not load it.
deadlines_app = typer.Typer(help="Statutory EHC deadlines.", no_args_is_help=True, add_completion=False,
                            cls=lazy_group({"what-if": (
                                "services.deadlines.entrypoints.what_if_cli:what_if_app",
                                "What-if: when would each deadline fall; by when must a step happen; what a missed "
                                "deadline puts at risk.")}))

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
    from pydantic import ValidationError

    from services.deadlines.adapters.records import record_from_event
    from shared.contracts import describe_validation_error, parse_case_event

    try:
        return record_from_event(parse_case_event(text))
    except ValidationError as exc:
        raise InputError(line_no, describe_validation_error(exc)) from None


def _stdin_lines() -> Iterator[str | bytes]:
    """Lines of stdin, as bytes where possible so that bad UTF-8 is reported with its line."""
    buffer = getattr(sys.stdin, "buffer", None)
    return iter(buffer) if buffer is not None else iter(sys.stdin)


def _binary_stdout() -> Callable[[bytes], Any]:
    """Write UTF-8 JSON straight to stdout's bytes (a text-only stdout, e.g. in some test runners, gets text)."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        sys.stdout.flush()
        return buffer.write  # type: ignore[no-any-return]
    return lambda chunk: sys.stdout.write(str(chunk, "utf-8"))  # bytes, or a view of them


def _flush() -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        buffer.flush()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=EXIT_INVALID)


_DIGITS = re.compile(r"[0-9]{1,9}")
_PATH_FLAGS = ("exists", "resolve_path", "writable", "allow_dash")


@dataclass(frozen=True)
class _LightParam(RuntimeParam):
    """A command-line value read without pydantic when it is plainly what its option takes: typer
    coerces every value through a pydantic TypeAdapter, and importing pydantic and building the
    adapters costs about an eighth of a second of CPU. A text for a ``str`` option, a path for a
    plain ``Path`` one, digits within an ``int`` option's bounds; anything else goes to typer's own
    coercion, so errors read as before (tests/deadlines/unit/test_compute_cli_fast.py compares)."""

    descriptor: TypeDescriptor

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        annotation, info = self.annotation, self.parameter_info
        if type(value) is str:
            if annotation is str:
                return value
            if annotation is Path and not any(getattr(info, flag, None) for flag in _PATH_FLAGS):
                return Path(value)
            if annotation is int and _DIGITS.fullmatch(value) and not info.clamp:
                number = int(value)
                if (info.min is None or number >= info.min) and (info.max is None or number <= info.max):
                    return number
        return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)


class _LightCommand(TyperCommand):
    """A command whose options (its own and the ``--help`` flag click adds) are read by :class:`_LightParam`."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is not None and descriptor.file_annotation is None and \
                    getattr(param, "_runtime_param", False) is None:
                param._runtime_param = _LightParam(parameter_info=descriptor.parameter_info,
                                                   annotation=descriptor.annotation, descriptor=descriptor)
        return params  # type: ignore[no-any-return]


@deadlines_app.callback()
def _deadlines() -> None:
    """Statutory EHC deadlines (England)."""


@deadlines_app.command("compute", cls=_LightCommand)
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
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Processes computing cases at once (the output is the same); default: "
                                              "every usable CPU, at most 4, for 20,000 lines or more, else 1."),
    ] = None,
) -> None:
    """Read canonical case events (JSON lines, any cases, any order) on stdin; print one JSON
    object per deadline on stdout.

    Every line is read and validated first (a bad line: exit 2, nothing written); then cases are
    computed in case-id order and written as they are computed. A case the engine cannot compute (a
    date near year 9999) stops the run there with exit 2, naming the line of the first event of the
    earliest such case; the cases before it have been written. With --workers N the cases are
    computed by N processes; the output, its order and the errors are the same."""
    from services.deadlines.domain import (
        CalendarError,
        RuleSetError,
        TermCalendar,
        WorkingDayCalendar,
        load_ruleset_history,
    )
    from services.deadlines.entrypoints import compute_run

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
    setup = compute_run.Setup(history, calendar, as_of_date, term_calendar, due_soon_days)

    lines: Iterable[str | bytes] = _stdin_lines()
    write = _binary_stdout()
    try:
        if workers == 1 or not compute_run.can_fork():
            warnings = compute_run.run_serial(lines, setup, write)
        else:  # the lines are kept: the workers read them
            lines = list(lines)
            count = workers or compute_run.auto_workers(len(lines))
            warnings = compute_run.run_serial(lines, setup, write) if count == 1 else \
                compute_run.run_parallel(lines, count, setup, write)
    except InputError as exc:
        raise _fail(str(exc)) from None
    except compute_run.ComputeError as exc:
        raise _fail(str(exc)) from None
    _flush()
    for warning in warnings:
        typer.echo(warning, err=True)

if __name__ == "__main__":  # pragma: no cover
    deadlines_app()
