"""What makes `ehc deadlines compute` start at once (issue 12): generated msgspec Structs instead of the
pydantic contracts, a shipped bank-holiday table instead of the holidays library, options read without
pydantic, deadlines written by msgspec. Each must give exactly what the route it replaces gives; the
command's whole output is compared with that route in test_compute_cli_equivalence.py."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import pytest
import typer.main
from typer._click.core import Context
from typer._click.exceptions import BadParameter
from typer._coercion import build_runtime_param
from typer.testing import CliRunner

from services.cli import app
from services.deadlines.adapters import event_structs, event_structs_build
from services.deadlines.adapters.records import record_to_json
from services.deadlines.domain import (
    Deadline,
    DeadlineStatus,
    TermCalendar,
    WorkingDayCalendar,
    compute,
    load_ruleset_history,
)
from services.deadlines.domain.synthetic import synthetic_case
from services.deadlines.entrypoints.cli import _LightParam, deadlines_app
from shared import bank_holidays_england
from shared.working_days import CALENDAR_YEARS, library_bank_holidays, render_bank_holiday_table

ROOT = Path(__file__).resolve().parents[3]


def test_the_event_structs_are_what_the_contracts_give_today() -> None:
    assert Path(event_structs.__file__).read_text() == event_structs_build.render(), (
        "run `.venv/bin/python -m services.deadlines.adapters.event_structs_build`")
    assert set(event_structs.EVENTS) == set(event_structs_build.EVENT_MODELS)  # every type has its fast path


def test_the_bank_holiday_table_is_the_librarys() -> None:
    assert Path(bank_holidays_england.__file__).read_text() == render_bank_holiday_table(), (
        "run `.venv/bin/python -m shared.working_days`")
    library = library_bank_holidays(CALENDAR_YEARS)
    calendar = WorkingDayCalendar(first_year=CALENDAR_YEARS.start, last_year=CALENDAR_YEARS.stop - 1)
    for year in (CALENDAR_YEARS.start, 1999, 2012, 2022, 2023, 2026, CALENDAR_YEARS.stop - 1):
        for day in library[year]:
            assert not calendar.is_working_day(day), day
    assert not calendar.is_working_day(date(2022, 9, 19))  # the late Queen's funeral, a one-off bank holiday
    assert calendar.is_working_day(date(2022, 9, 20))


PROBE = """
import sys
from services.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = [m for m in ("pydantic", "holidays", "shared.contracts", "orjson", "email_validator") if m in sys.modules]
print("heavy modules:", *heavy, file=sys.stderr)
"""


def test_computing_valid_events_imports_neither_pydantic_nor_the_holidays_library() -> None:
    lines = [json.dumps(record_to_json(e)) for n in range(30) for e in synthetic_case(n, random.Random(n))]
    done = subprocess.run([sys.executable, "-c", PROBE, "deadlines", "compute", "--as-of", "2026-11-02",
                           "--due-soon-days", "5"], input="\n".join(lines), capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") > 100
    assert done.stderr.splitlines()[-1] == "heavy modules:"


# -- options read without pydantic -------------------------------------------------------------------

VALUES = ["", "x", "england", "2026-11-02", "0", "5", "05", "10", "-1", "+3", " 7", "7 ", "1.5", "1e3", "999999999",
          "9999999999", "~/terms.yaml", "a b/c.json", "-", "é"]


def _outcome(runtime: Any, value: str, param: Any) -> Any:
    try:
        result = runtime._coerce_value(value, param=param, ctx=None)
    except BadParameter as exc:
        return ("error", exc.message)
    return (type(result), result)


@pytest.mark.parametrize("name", ["as_of", "ruleset", "bank_holidays", "terms", "due_soon_days", "workers"])
def test_the_options_read_without_pydantic_as_typer_reads_them(name: str) -> None:
    command = typer.main.get_command(deadlines_app).commands["compute"]
    param = next(p for p in command.get_params(Context(command)) if p.name == name)
    assert isinstance(param._runtime_param, _LightParam)
    for value in VALUES:
        assert _outcome(param._runtime_param, value, param) == \
            _outcome(build_runtime_param(param.type_descriptor), value, param), value


def test_a_bad_option_is_refused_as_before() -> None:
    result = CliRunner().invoke(app, ["deadlines", "compute", "--as-of", "2026-11-02", "--due-soon-days", "-1"],
                                input="")
    assert result.exit_code == 2 and result.stdout == ""
    assert "Invalid value for '--due-soon-days': Input should be greater than or equal" in result.stderr


# -- deadlines written by msgspec --------------------------------------------------------------------


def test_msgspec_writes_every_deadline_as_its_to_dict() -> None:
    rng = random.Random(4)
    history, calendar, terms = load_ruleset_history("england"), WorkingDayCalendar(), TermCalendar.from_file()
    deadlines: list[Deadline] = []
    for n in range(300):
        deadlines.extend(compute(synthetic_case(n, rng), history, calendar, date(2026, 11, 2), terms=terms))
    odd = replace(deadlines[0], status=DeadlineStatus.EXCEPTION, exception="E3", exception_reason='é "q" \\ \n\t\u2028',
                  exception_event_id="e-1", flags=("a", "b:c"), completed_on=date(1900, 1, 1), cancelled_on=None)
    deadlines.append(odd)
    assert {d.status for d in deadlines} >= {DeadlineStatus.OPEN, DeadlineStatus.MET, DeadlineStatus.EXCEPTION}
    lines = msgspec.json.Encoder().encode_lines(deadlines).decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == len(deadlines) + 1
    assert [json.loads(line) for line in lines[:-1]] == [d.to_dict() for d in deadlines]


# -- calendars read by libyaml -------------------------------------------------------------------------


def test_the_shipped_calendars_read_the_same_through_libyaml_as_through_the_python_loader() -> None:
    import yaml

    from services.deadlines.domain.calendar import DEFAULT_TERMS_PATH
    from shared.working_days import YAML_LOADER, read_structured

    assert YAML_LOADER is not yaml.SafeLoader or not yaml.__with_libyaml__
    files = sorted(DEFAULT_TERMS_PATH.parent.glob("*.yaml"))
    assert len(files) >= 2
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert read_structured(path) == yaml.load(text, Loader=yaml.SafeLoader), path  # noqa: S506
