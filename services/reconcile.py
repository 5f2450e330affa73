"""``ehc report reconcile``: shadow mode, from files (issue 11, item 4).

Compares the deadlines this service computes with what the council's own system records:

- ours: the SEN2 return converted to canonical events by intake's importer (as ``ehc intake import
  --dry-run`` does: nothing is published), plus any canonical events given with ``--events``
  (JSON lines, e.g. the council's case-management feed), computed by the deadlines engine;
- theirs: the same SEN2 return's own facts (per request: received date, plan issue date, Week20
  flag, read as the DfE reads them: due 20 weeks after the request), and a CSV of the council's
  own due dates read through a small YAML mapping (``--council-csv FILE --mapping FILE``):

      source: cms/capita-one/herts     # case references are hashed into case ids as intake does
      columns: {case_ref: Case Ref, rule: Stage, due_on: Due Date, status: Status, exception: Exception}
      date_format: "%d/%m/%Y"          # optional (ISO dates by default)
      rules: {"Decision to assess": assessment.decision, "Final plan": plan.final}
      statuses: {Done on time: on time, Done late: late, Open: open, Overdue: "not done, late"}

The comparison itself is the deadlines domain's (``services/deadlines/domain/reconcile.py``).
This module is part of the composition root (like ``services/cli.py``): it is the one place that
uses both intake's importer and the deadlines engine.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml

from services.deadlines.adapters.records import record_from_event
from services.deadlines.domain import (
    CaseEventRecord,
    RuleSetError,
    WorkingDayCalendar,
    compute_cases,
    load_ruleset_history,
)
from services.deadlines.domain.reconcile import KINDS, Disagreement, TheirRecord, reconcile, sen2_status
from services.deadlines.entrypoints.cli import InputError, parse_line
from services.intake.domain.case_ids import opaque_case_id
from services.intake.domain.sen2 import iter_sen2, read_assessment_records
from shared.contracts import CaseEventEnvelope

PLAN_FINAL = "plan.final"
TRUE = {"1", "y", "yes", "true", "t"}


class ReconcileError(ValueError):
    """A file or mapping that cannot be used (one line, shown on stderr)."""


def sen2_events(path: Path, key: bytes, lea: str | None) -> list[CaseEventRecord]:
    """The SEN2 return as canonical events, converted by intake's importer; nothing is published."""
    return [record_from_event(item) for item in iter_sen2(path, case_id_key=key, lea=lea)
            if isinstance(item, CaseEventEnvelope)]


def sen2_records(path: Path, key: bytes, lea: str | None, as_of: date) -> list[TheirRecord]:
    """The SEN2 return's own facts: one plan.final record per plan issued in the return
    (AssessmentOutcome Y) or assessment still under way (no outcome yet). Historical (H),
    refused (N) and withdrawn (W) assessments have no plan to compare."""
    _, records = read_assessment_records(path, key, lea)
    out: list[TheirRecord] = []
    for r in records:
        if r.outcome not in ("Y", ""):
            continue
        due, status = sen2_status(r.received_on, r.outcome, r.outcome_on, as_of)
        out.append(TheirRecord(
            case_id=r.case_ref or "?", rule_id=PLAN_FINAL, source="sen2",
            ref=f"SEN2 request received {r.received_on or '?'}", due_on=due, status=status, exception=r.week20,
            trigger_on=r.received_on,
            facts={"received_on": r.received_on and r.received_on.isoformat(), "assessment_outcome": r.outcome,
                   "issued_on": r.outcome_on and r.outcome_on.isoformat(), "week20": r.week20}))
    return out


def _date(text: str, fmt: str | None, where: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.strptime(text, fmt).date() if fmt else date.fromisoformat(text)
    except ValueError:
        raise ReconcileError(f"{where}: {text!r} is not a date{f' as {fmt}' if fmt else ' (YYYY-MM-DD)'}") from None


def council_records(path: Path, mapping_path: Path, key: bytes) -> tuple[list[TheirRecord], list[str]]:
    """The council's own due dates, through the mapping; returns the records and one note per
    row that could not be used (an unmapped stage, no case reference)."""
    try:
        mapping = yaml.safe_load(mapping_path.read_text(encoding="utf-8"))
        columns: dict[str, str] = mapping["columns"]
        rules: dict[str, str] = mapping["rules"]
        source = str(mapping.get("source", ""))
        for needed in ("case_ref", "rule", "due_on"):
            if needed not in columns:
                raise KeyError(f"columns.{needed}")
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ReconcileError(f"{mapping_path}: not a usable mapping ({exc})") from None
    statuses: dict[str, str] = mapping.get("statuses") or {}
    fmt = mapping.get("date_format")
    opaque = bool(mapping.get("case_ref_is_case_id", False))
    out: list[TheirRecord] = []
    notes: list[str] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns.values() if c not in (reader.fieldnames or [])]
            if missing:
                raise ReconcileError(f"{path}: no column {', '.join(map(repr, missing))} (columns: "
                                     f"{', '.join(reader.fieldnames or [])})")
            for n, row in enumerate(reader, start=2):
                where = f"{path.name} row {n}"
                ref, stage = row[columns["case_ref"]].strip(), row[columns["rule"]].strip()
                if not ref:
                    notes.append(f"{where}: no case reference")
                    continue
                rule_id = rules.get(stage)
                if rule_id is None:
                    notes.append(f"{where}: stage {stage!r} is not in the mapping's rules")
                    continue
                status = row.get(columns.get("status", ""), "").strip() if "status" in columns else ""
                exception = row.get(columns.get("exception", ""), "").strip().lower() if "exception" in columns else ""
                out.append(TheirRecord(
                    case_id=ref if opaque else opaque_case_id(key, source, ref), rule_id=rule_id,
                    source="council-csv", ref=f"row {n}", due_on=_date(row[columns["due_on"]], fmt, where),
                    status=statuses.get(status, status or None) if status else None,
                    exception=(exception in TRUE) if "exception" in columns and exception else None,
                    facts={"stage": stage}))
    except OSError as exc:
        raise ReconcileError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    return out, notes


def reconcile_command(
    sen2: Annotated[Path | None, typer.Option("--sen2", help="The SEN2 return (XML, or a folder or .zip of the CSV "
                                              "export).")] = None,
    events: Annotated[Path | None, typer.Option("--events", help="More canonical case events (JSON lines) for our "
                                                "side, e.g. the case-management feed.")] = None,
    council_csv: Annotated[Path | None, typer.Option("--council-csv", help="Their own due dates (CSV).")] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", help="YAML mapping of the council CSV's columns "
                                                 "and stages.")] = None,
    sen2_events_too: Annotated[bool, typer.Option("--sen2-events/--no-sen2-events", help="Compute ours from the "
                                                  "SEN2 return's events too (default) or only from --events.")] = True,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Statuses as of this date (default: today).")] = None,
    lea: Annotated[str | None, typer.Option("--lea", help="DfE LA number, if the SEN2 header lacks it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per disagreement.")] = False,
) -> None:
    """Shadow mode: list every disagreement between our deadlines and the council's records, per case."""
    from services.intake.config import case_id_key
    from shared.settings import Settings

    def fail(message: str) -> typer.Exit:
        typer.echo(f"ehc report reconcile: {message}", err=True)
        return typer.Exit(code=2)

    if sen2 is None and council_csv is None:
        raise fail("give --sen2 FILE and/or --council-csv FILE --mapping FILE")
    if (council_csv is None) != (mapping is None):
        raise fail("--council-csv and --mapping go together")
    try:
        day = date.fromisoformat(as_of) if as_of else date.today()
    except ValueError:
        raise fail(f"--as-of must be a date as YYYY-MM-DD, got {as_of!r}") from None
    settings = Settings()
    key = case_id_key(settings, warn=lambda message: typer.echo(f"warning: {message}", err=True))
    try:
        ruleset = load_ruleset_history(settings.deadlines.ruleset)
        calendar = WorkingDayCalendar.from_override_file(settings.deadlines.bank_holiday_overrides)
        records: list[CaseEventRecord] = []
        theirs: list[TheirRecord] = []
        notes: list[str] = []
        if sen2 is not None:
            if sen2_events_too:
                records.extend(sen2_events(sen2, key, lea))
            theirs.extend(sen2_records(sen2, key, lea, day))
        if events is not None:
            lines = events.read_text(encoding="utf-8").splitlines()
            records.extend(parse_line(n, line) for n, line in enumerate(lines, start=1) if line.strip())
        if council_csv is not None and mapping is not None:
            found, notes = council_records(council_csv, mapping, key)
            theirs.extend(found)
    except (ReconcileError, InputError, RuleSetError, OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    ours = compute_cases(records, ruleset, calendar, day)
    disagreements = reconcile(ours, theirs)
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    if as_json:
        for d in disagreements:
            typer.echo(json.dumps(d.to_dict()))
    else:
        _print(disagreements)
    counts = Counter(d.kind for d in disagreements)
    typer.echo(f"{len(disagreements)} disagreements in {len({d.case_id for d in disagreements})} cases "
               f"({', '.join(f'{counts[k]} {k}' for k in KINDS)}); compared {len(theirs)} records of theirs with "
               f"{len(ours)} deadlines of ours, as of {day}", err=as_json)


def _print(disagreements: list[Disagreement]) -> None:
    case = None
    for d in disagreements:
        if d.case_id != case:
            case = d.case_id
            typer.echo(f"case {case}")
        typer.echo(f"  {d.rule_id:<22} {d.kind:<18} {d.detail}")
        typer.echo(f"  {'':<22} ours: {d.explanation}")
