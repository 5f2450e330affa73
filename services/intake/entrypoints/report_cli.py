"""``ehc report timeliness``: the DfE 20-week figures from an SEN2 return, with no broker or database.

Mounted by the project's CLI as ``ehc report``. Exit codes: 0 done, 2 bad arguments or a file that
is missing, unreadable or not an SEN2 return (one line on stderr, never a traceback).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.intake.domain.sen2 import Sen2FormatError
from services.intake.domain.timeliness import TimelinessFigures, TimelinessReport, timeliness_from_file

report_app = typer.Typer(
    help="Reports computed from files (no broker or database needed).",
    no_args_is_help=True,
    add_completion=False,
)


@report_app.callback()
def _reports() -> None:
    """Reports computed from files (no broker or database needed)."""


def _fail(message: str) -> typer.Exit:
    typer.echo(f"ehc report timeliness: {' '.join(message.split())}", err=True)
    return typer.Exit(code=2)


@report_app.command("timeliness")
def timeliness(
    year: Annotated[int, typer.Option("--year", help="Calendar year in which the plans were issued.")],
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="An SEN2 XML return, or a folder or .zip of its COLLECT CSV export."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The DfE 20-week figures (including and excluding exceptions) for plans issued in YEAR."""
    if not 1990 <= year <= 2100:
        raise _fail(f"--year {year} is not a plausible calendar year")
    if from_file is None:
        raise _fail("--from-file is required (an SEN2 XML return, or a folder or .zip of the CSV export)")
    try:
        report = timeliness_from_file(from_file, year)
    except FileNotFoundError:
        raise _fail(f"{from_file}: no such file or folder") from None
    except PermissionError:
        raise _fail(f"{from_file}: permission denied") from None
    except IsADirectoryError:
        raise _fail(f"{from_file}: a folder that is not an SEN2 CSV export") from None
    except (Sen2FormatError, zipfile.BadZipFile) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{from_file}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except Exception as exc:  # never a traceback for a bad file
        raise _fail(f"{from_file}: cannot be read as an SEN2 return ({type(exc).__name__})") from None
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "source_file": str(from_file)}, indent=2))
    else:
        Console().print(_table(report, from_file))


def _cell(figures: TimelinessFigures, count: int, with_percent: bool = False) -> str:
    if with_percent and figures.plans:
        return f"{count:,} ({100 * count / figures.plans:.1f}%)"
    return f"{count:,}"


def _table(report: TimelinessReport, source: Path) -> Table:
    lea = f"LA {report.lea}" if report.lea else "LA unknown"
    table = Table(title=f"EHC plans issued in {report.year}: 20-week timeliness ({lea})",
                  caption=f"From {source.name}. Within 20 weeks: issued no more than 140 days after the request.")
    table.add_column("")
    table.add_column("Including exceptions", justify="right")
    table.add_column("Excluding exceptions", justify="right")
    inc, exc = report.including_exceptions, report.excluding_exceptions

    def percent(figures: TimelinessFigures) -> str:
        value = figures.percent_within_20_weeks
        return "-" if value is None else f"{value:.1f}%"

    def mean(figures: TimelinessFigures) -> str:
        value = figures.mean_weeks_to_issue
        return "-" if value is None else f"{value:.1f}"

    table.add_row("Plans issued", f"{inc.plans:,}", f"{exc.plans:,}")
    table.add_row("Within 20 weeks", f"{inc.within_20_weeks:,}", f"{exc.within_20_weeks:,}")
    table.add_row("Percent within 20 weeks", percent(inc), percent(exc))
    table.add_row("Over 20 up to 52 weeks", _cell(inc, inc.over_20_up_to_52_weeks, True),
                  _cell(exc, exc.over_20_up_to_52_weeks, True))
    table.add_row("Over 52 weeks", _cell(inc, inc.over_52_weeks, True), _cell(exc, exc.over_52_weeks, True))
    table.add_row("No usable ReceivedDate", f"{inc.no_usable_received_date:,}", f"{exc.no_usable_received_date:,}")
    table.add_row("Mean weeks to issue", mean(inc), mean(exc))
    table.add_row("Plans with a Week20 exception", f"{report.exceptions:,}", "")
    if report.unusable_issue_dates:
        table.add_row("Plans issued with no readable date (any year)", f"{report.unusable_issue_dates:,}", "")
    return table
