"""``ehc report timeliness``: the DfE 20-week figures from an SEN2 return, or from the live data.

With ``--from-file`` no broker or database is needed. Without it the figures come from the
deadlines service's stored deadlines: the project's CLI (services/cli.py) hands the command that
live source in the click context object (``{"live_timeliness": year -> report}``), so intake never
imports the deadlines service.
``--cases`` lists the cases behind each figure (opaque case ids: from a file, the ids the importer
gives with this deployment's case-id key). A year with no plans gets a warning on stderr.

Mounted by the project's CLI as ``ehc report``. Exit codes: 0 done, 2 bad arguments or a file that
is missing, unreadable or not an SEN2 return (one line on stderr, never a traceback).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.intake.domain.sen2 import Sen2FormatError
from services.intake.domain.timeliness import TimelinessFigures, TimelinessReport, timeliness_from_file

LiveSource = Callable[[int], TimelinessReport]
LIVE_SOURCE = "live_timeliness"  # the key of the live source in the click context object


report_app = typer.Typer(
    help="Reports: DfE timeliness, shadow-mode reconciliation.",
    no_args_is_help=True,
    add_completion=False,
)


@report_app.callback()
def _reports() -> None:
    """Reports: DfE timeliness, shadow-mode reconciliation."""


def _fail(message: str) -> typer.Exit:
    typer.echo(f"ehc report timeliness: {' '.join(message.split())}", err=True)
    return typer.Exit(code=2)


@report_app.command("timeliness")
def timeliness(
    ctx: typer.Context,
    year: Annotated[int, typer.Option("--year", help="Calendar year in which the plans were issued.")],
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="An SEN2 XML return, or a folder or .zip of its COLLECT CSV export."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    cases: Annotated[bool, typer.Option("--cases", help="List the cases behind each figure.")] = False,
) -> None:
    """The DfE 20-week figures (including and excluding exceptions) for plans issued in YEAR, from
    an SEN2 file or (without --from-file) the deadlines service's data."""
    if not 1990 <= year <= 2100:
        raise _fail(f"--year {year} is not a plausible calendar year")
    if from_file is None:
        live: LiveSource | None = (ctx.obj or {}).get(LIVE_SOURCE) if isinstance(ctx.obj, dict) else None
        if live is None:
            raise _fail("--from-file is required (an SEN2 XML return, or a folder or .zip of the CSV export)")
        try:
            report = live(year)
        except Exception as exc:  # no database, no schema yet: one line, never a traceback
            raise _fail(f"the deadlines service's data cannot be read ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
        _show(report, "the deadlines service's data", as_json, cases)
        return
    try:
        report = timeliness_from_file(from_file, year, _case_id_key() if cases else None)
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
    _show(report, from_file.name, as_json, cases, {"source_file": str(from_file)})


def _case_id_key() -> bytes:
    from services.intake.config import case_id_key
    from shared.settings import Settings

    return case_id_key(Settings(), warn=lambda message: typer.echo(f"warning: {message}", err=True))


def _show(report: TimelinessReport, source: str, as_json: bool, cases: bool,
          extra: dict[str, str] | None = None) -> None:
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        typer.echo(json.dumps({**report.to_dict(with_cases=cases), **(extra or {})}, indent=2))
        return
    console = Console()
    console.print(_table(report, source))
    if cases:
        for label, refs in _case_lists(report):
            console.print(f"{label} ({len(refs):,}): {', '.join(refs) if refs else '-'}", soft_wrap=True)


def _case_lists(report: TimelinessReport) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for population, figures in (("including exceptions", report.including_exceptions),
                                ("excluding exceptions", report.excluding_exceptions)):
        for figure, refs in figures.cases.items():
            out.append((f"{figure.replace('_', ' ').capitalize()}, {population}", refs))
    out.append(("Plans with a Week20 exception", report.exception_cases))
    if report.unusable_issue_date_cases:
        out.append(("Plans issued with no readable date (any year)", report.unusable_issue_date_cases))
    return out


def _cell(figures: TimelinessFigures, count: int, with_percent: bool = False) -> str:
    if with_percent and figures.plans:
        return f"{count:,} ({100 * count / figures.plans:.1f}%)"
    return f"{count:,}"


def _table(report: TimelinessReport, source: str) -> Table:
    lea = f"LA {report.lea}" if report.lea else "LA unknown"
    table = Table(title=f"EHC plans issued in {report.year}: 20-week timeliness ({lea})",
                  caption=f"From {source}. Within 20 weeks: issued no more than 140 days after the request.")
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
