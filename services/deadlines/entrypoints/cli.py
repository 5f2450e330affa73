"""``ehc deadlines compute``: canonical case events (JSON lines) on stdin, deadlines on stdout.

No broker or database: it reads every line, groups events by case, runs the pure engine and prints
one JSON object per deadline. Invalid input exits with status 2 and one line on stderr naming the
input line and the problem, never a traceback.

Fast and lean (issue 12): the module imports nothing heavy until the command runs; lines are read by
services/deadlines/adapters/event_lines.py (the shared contracts compiled into msgspec Structs,
pydantic for any line they refuse, so errors read exactly as before); each case's history is
resolved once for its deadlines and its data-quality warnings (engine.compute_with_quality); each
case is written with msgspec as soon as it is computed and its input dropped; the cyclic garbage
collector, which would only walk the (acyclic) records again and again, is off while reading and
the records frozen out of its sight while computing.
"""

from __future__ import annotations

import gc
import re
import sys
from collections.abc import Callable, Iterator
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
    return lambda chunk: sys.stdout.write(chunk.decode("utf-8"))


def _flush() -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        buffer.flush()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=EXIT_INVALID)


def _uncomputable(by_case: dict[str, tuple[int, list[CaseEventRecord]]], *setup: Any) -> str:
    """Which case could not be computed, named by the line of its first event (the earliest such line)."""
    from services.deadlines.domain import compute

    history, calendar, as_of, terms, due_soon_days = setup
    for case_id, (line_no, events) in sorted(by_case.items(), key=lambda item: item[1][0]):
        try:
            compute(events, history, calendar, as_of, terms=terms, due_soon_working_days=due_soon_days)
        except (ValueError, ArithmeticError) as exc:
            problem = "a date beyond the calendar (year 9999)" if isinstance(exc, OverflowError) else str(exc)
            return f"line {line_no}: cannot compute the deadlines of case {case_id}: {problem}"
    return "cannot compute the deadlines of these events"


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
) -> None:
    """Read canonical case events (JSON lines, any cases, any order) on stdin; print one JSON
    object per deadline on stdout.

    Every line is read and validated first (a bad line: exit 2, nothing written); then cases are
    computed in case-id order and each is written as soon as it is computed. A case the engine
    cannot compute (a date near year 9999) stops the run there with exit 2, naming the line of the
    first event of the earliest such case; the cases before it have been written."""
    import msgspec

    from services.deadlines.domain import (
        CalendarError,
        RuleSetError,
        TermCalendar,
        WorkingDayCalendar,
        compute_with_quality,
        load_ruleset_history,
    )

    # msgspec writes a Deadline dataclass as Deadline.to_dict() does (dates ISO, status its value, flags a
    # list), one JSON line per deadline: a case's lines in one call, twice as fast as orjson a deadline
    encode_lines = msgspec.json.Encoder().encode_lines
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

    by_case = _read_cases()
    warnings: list[str] = []
    write = _binary_stdout()
    # The records and deadlines are acyclic: the cyclic collector would only walk them again and again.
    gc.freeze()
    gc.disable()
    try:
        # Cases in case-id order, each written as soon as it is computed, its input dropped once done.
        for case_id in sorted(by_case):
            events = by_case[case_id][1]
            try:
                deadlines, quality = compute_with_quality(events, history, calendar, as_of_date, terms=term_calendar,
                                                          due_soon_working_days=due_soon_days)
            except (ValueError, ArithmeticError):  # a history the engine cannot compute (a date near year 9999)
                raise _fail(_uncomputable({c: by_case[c] for c in by_case if c >= case_id}, history, calendar,
                                          as_of_date, term_calendar, due_soon_days)) from None
            write(encode_lines(deadlines))
            # Data that cannot be true (issue 11): on stderr, so that stdout stays one deadline per line.
            warnings.extend(f"{w.severity}: case {case_id}: {w.code}: {w.message}" for w in quality)
            del by_case[case_id]
    finally:
        gc.enable()
        gc.unfreeze()
    _flush()
    for warning in warnings:
        typer.echo(warning, err=True)


def _read_cases() -> dict[str, tuple[int, list[CaseEventRecord]]]:
    """Every line of stdin, validated, grouped by case: case id -> (the line of its first event, its events).
    A bad line stops here, before anything is written."""
    from services.deadlines.adapters.event_lines import fast_record

    by_case: dict[str, tuple[int, list[CaseEventRecord]]] = {}
    gc.disable()  # nothing read here is cyclic
    try:
        for line_no, line in enumerate(_stdin_lines(), start=1):
            record = fast_record(line)
            if record is None:  # not sure: the shared pydantic contracts decide, and name the problem
                if not line.strip():  # a blank line (never a record) is skipped
                    continue
                try:
                    record = parse_line(line_no, line.decode("utf-8") if isinstance(line, bytes) else line)
                except UnicodeDecodeError:
                    raise _fail(f"line {line_no}: not valid UTF-8") from None
                except InputError as exc:
                    raise _fail(str(exc)) from None
            case = by_case.get(record.case_id)
            if case is None:
                by_case[record.case_id] = (line_no, [record])
            else:
                case[1].append(record)
    finally:
        gc.enable()
    return by_case


if __name__ == "__main__":  # pragma: no cover
    deadlines_app()
