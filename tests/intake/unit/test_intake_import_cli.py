"""``ehc intake import --dry-run``: canonical events as JSON lines, with no broker or database; clear
errors (exit 2, one line); progress and the summary on stderr."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.intake.domain.sen2 import iter_sen2_xml
from services.intake.domain.sen2_synthetic import write_sen2_csv, write_sen2_xml
from services.intake.entrypoints.cli import ImportSource, intake_app, summary_lines
from services.intake.entrypoints.progress import ImportProgress
from services.intake.service_layer.handlers import IntakeOutcome
from shared.contracts import parse_case_event
from tests.paths import SEN2_SAMPLE

SAMPLE = SEN2_SAMPLE
KEY = "cli-case-id-key-0123456789abcdef"
# Nothing listens there: a dry run that tried to connect would fail.
OFFLINE = {"EHC_INTAKE__CASE_ID_KEY": KEY, "EHC_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9",
           "EHC_DATABASE_URL": "postgresql+asyncpg://nobody:nothing@127.0.0.1:9/none", "EHC_ENVIRONMENT": "test"}
runner = CliRunner()


def run(*args: str, **env: str):
    return runner.invoke(intake_app, ["import", *args], env={**OFFLINE, **env})


def events_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.skipif(not SAMPLE.exists(), reason="the SEN2 sample file is not available")
def test_dry_run_of_the_sen2_sample_prints_its_canonical_events():
    result = run(str(SAMPLE), "--format", "sen2", "--dry-run")
    assert result.exit_code == 0, result.output
    expected = [json.loads(e.to_json()) for e in iter_sen2_xml(SAMPLE, case_id_key=KEY.encode())]
    assert events_of(result.stdout) == expected and len(expected) == 9
    for event in events_of(result.stdout):
        parse_case_event(event)  # each line is a valid canonical event
    assert "Dry run of SEN2-2024-mockup.xml (SEN2 XML return)" in result.stderr
    assert "9 canonical events printed (nothing published)" in result.stderr
    for personal in ("TestFamilyName1", "X123456789875", "AA11AA"):
        assert personal not in result.stdout + result.stderr


def test_xml_csv_export_and_zip_give_the_same_events(tmp_path: Path):
    xml = write_sen2_xml(tmp_path / "return.xml", 150, 2025, seed=5)
    export = write_sen2_csv(tmp_path / "export", 150, 2025, seed=5)
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in export.path.iterdir():
            out.write(file, file.name)
    outputs = []
    for path in (xml.path, export.path, archive):
        result = run(str(path), "--format", "sen2", "--dry-run")
        assert result.exit_code == 0, result.stderr
        outputs.append(sorted(json.dumps(e, sort_keys=True) for e in events_of(result.stdout)))
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0]) == sum(xml.expected_events.values())
    assert "SEN2 COLLECT CSV export" in run(str(archive), "--format", "sen2", "--dry-run").stderr


def write_caseflow_csv(path: Path) -> Path:
    columns = ["msg_id", "case_ref", "status", "status_date", "recorded_at", "plan_ref", "parent_name",
               "parent_email", "contact_consent"]
    rows = [
        ["CF-1", "CF/1", "REQ_RCVD", "05/01/2026", "05/01/2026 09:00", "", "Jo Testparent", "jo@example.org", "Y"],
        ["CF-2", "CF/1", "DEC_ASSESS", "10/02/2026", "10/02/2026 09:00", "", "", "", ""],
        ["CF-3", "CF/1", "TELEPORTED", "10/02/2026", "10/02/2026 09:00", "", "", "", ""],
        ["CF-4", "CF/1", "FINAL_ISSUED", "20/05/2026", "20/05/2026 09:00", "PLAN-1", "", "", ""],
    ]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def test_dry_run_of_a_csv_with_a_mapping(tmp_path: Path):
    path = write_caseflow_csv(tmp_path / "caseflow.csv")
    result = run(str(path), "--format", "csv", "--mapping", "caseflow", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert [e["id"] for e in events_of(result.stdout)] == ["CF-1", "CF-2", "CF-4"]
    assert "1 contact updates found (not printed: personal data)" in result.stderr
    assert "1 records rejected:" in result.stderr
    assert "field status has a code that is not in the mapping's code list" in result.stderr
    assert "Jo Testparent" not in result.stdout + result.stderr
    assert "jo@example.org" not in result.stdout + result.stderr


def test_an_import_prints_the_data_quality_warnings_of_the_file(tmp_path: Path):
    # Issue 11 item 5: a plan ceased 4 days after it was issued is flagged per file, by case id.
    path = tmp_path / "ceased.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["msg_id", "case_ref", "status", "status_date", "recorded_at", "plan_ref", "notice_date"])
        writer.writerow(["CF-1", "CF/9", "FINAL_ISSUED", "10/05/2027", "10/05/2027 09:00", "PLAN-9", ""])
        writer.writerow(["CF-2", "CF/9", "CEASED", "14/05/2027", "14/05/2027 09:00", "", "14/05/2027"])
        writer.writerow(["CF-3", "CF/8", "FINAL_ISSUED", "10/05/2027", "10/05/2027 09:00", "PLAN-8", ""])
    result = run(str(path), "--format", "csv", "--mapping", "caseflow", "--dry-run")
    assert result.exit_code == 0, result.stderr
    ceased_case = events_of(result.stdout)[1]["subject"]
    assert "1 data-quality warnings in 1 cases" in result.stderr
    assert f"case {ceased_case}: plan_ceased_soon_after_issue: the plan is ceased 4 days after" in result.stderr
    assert "CF/9" not in result.stderr  # the staff-readable reference never appears, only the opaque id


def test_a_clean_file_says_it_has_no_data_quality_warning(tmp_path: Path):
    result = run(str(write_caseflow_csv(tmp_path / "caseflow.csv")), "--format", "csv", "--mapping", "caseflow",
                 "--dry-run")
    assert "0 data-quality warnings" in result.stderr


@pytest.mark.parametrize(("args", "env", "message"), [
    (["{csv}", "--format", "csv", "--dry-run"], {}, "--format csv needs --mapping NAME (known mappings: canonical"),
    (["{csv}", "--format", "csv", "--mapping", "nope", "--dry-run"], {}, "no mapping named 'nope'"),
    (["{csv}", "--format", "csv", "--mapping", "canonical", "--dry-run"], {}, "is canonical"),
    (["{csv}", "--format", "sen2", "--mapping", "caseflow", "--dry-run"], {}, "--mapping is for --format csv"),
    (["{csv}", "--format", "sen2", "--dry-run"], {}, "caseflow.csv: malformed XML"),
    (["{missing}", "--format", "sen2", "--dry-run"], {}, "no such file or folder"),
    (["{csv}", "--format", "sen2", "--lea", "9", "--dry-run"], {}, "--lea is a 3-digit DfE LA number"),
    (["{csv}", "--format", "csv", "--mapping", "caseflow", "--dry-run"],
     {"EHC_ENVIRONMENT": "production", "EHC_INTAKE__CASE_ID_KEY": ""}, "required in production"),
    (["{tmp}", "--format", "sen2", "--dry-run"], {}, "not an SEN2 CSV export: no sen2.csv, person.csv"),
    (["{dup}", "--format", "csv", "--mapping", "caseflow"], {}, "dup.csv: the header repeats column(s) a"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args, env, message):
    path = write_caseflow_csv(tmp_path / "caseflow.csv")
    (tmp_path / "dup.csv").write_text("a,a\n1,2\n")
    values = {"csv": str(path), "missing": str(tmp_path / "missing.xml"), "tmp": str(tmp_path),
              "dup": str(tmp_path / "dup.csv")}
    environment = {k: v for k, v in {**OFFLINE, **env}.items() if v}
    result = runner.invoke(intake_app, ["import", *[a.format(**values) for a in args]], env=environment)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("ehc intake import: ") and message in lines[0]


def test_without_a_broker_a_real_import_fails_in_one_line(tmp_path: Path):
    path = write_caseflow_csv(tmp_path / "caseflow.csv")
    result = run(str(path), "--format", "csv", "--mapping", "caseflow",
                 EHC_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/intake.db")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("ehc intake import: Kafka or the database failed")
    assert "Traceback" not in result.output


def test_progress_without_a_terminal_prints_counts_now_and_then():
    stream = io.StringIO()
    moments = iter([0.0, 1.0, 6.0, 7.0])
    progress = ImportProgress("importing r.xml", 1000, stream=stream, every_seconds=5, clock=lambda: next(moments),
                              tty=False)
    outcome = IntakeOutcome(published=400, duplicates=10, rejected=2)
    progress.update(300, outcome, 412)  # 1 s after the start: too soon
    progress.update(600, outcome, 500)  # 6 s: a line
    progress.update(700, outcome, 100)  # 7 s: too soon again
    progress.close()
    assert stream.getvalue().splitlines() == [
        "importing r.xml: 60% of the file, 912 records: 400 published, 10 duplicates, 2 rejected"]


def test_progress_on_a_terminal_draws_a_bar():
    stream = io.StringIO()
    progress = ImportProgress("importing r.xml", None, stream=stream, tty=True)
    progress.update(None, IntakeOutcome(published=5), 5)
    progress.close()
    assert "importing r.xml" in stream.getvalue()


def test_the_summary_says_what_was_published_skipped_and_rejected_and_why():
    outcome = IntakeOutcome(published=900, duplicates=100, rejected=15, rejected_before=5, contacts=3)
    outcome.reasons.update({"field ReceivedDate is missing": 12, "field UPN is not 13 characters": 3})
    source = ImportSource("r.xml", "SEN2 XML return", iter(()))
    lines = summary_lines(source, outcome, 2.0, dry_run=False)
    assert lines == [
        "Imported r.xml (SEN2 XML return) in 2.0 s",
        "  900 events published (450/s)",
        "  100 duplicates skipped (already received)",
        "  3 contact updates sent to ehc.contacts",
        "  15 records rejected, in ehc.intake.dead-letter (5 of them from an earlier import):",
        "          12  field ReceivedDate is missing",
        "           3  field UPN is not 13 characters",
    ]
