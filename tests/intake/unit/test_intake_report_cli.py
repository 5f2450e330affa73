"""``ehc report timeliness``: JSON and table output, and exit 2 with one line for a bad file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.intake.domain.sen2_synthetic import write_sen2_csv, write_sen2_xml
from services.intake.entrypoints.report_cli import report_app
from tests.paths import SEN2_SAMPLE

YEAR = 2025
runner = CliRunner()


@pytest.fixture(scope="module")
def returns(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    xml = write_sen2_xml(folder / "return.xml", 800, YEAR, 21, lea="919")
    csv = write_sen2_csv(folder / "export", 800, YEAR, 21, lea="919")
    archive = folder / "export.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in csv.path.iterdir():
            out.write(file, file.name)
    return xml, csv, archive


def _run(*args: str):
    return runner.invoke(report_app, ["timeliness", *args])


def test_json_output_equals_the_generators_figures(returns):
    xml, csv, archive = returns
    for path in (xml.path, csv.path, archive):
        result = _run("--year", str(YEAR), "--from-file", str(path), "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report.pop("source_file") == str(path)
        assert report == xml.expected_timeliness


def test_table_output(returns):
    xml, _, _ = returns
    result = _run("--year", str(YEAR), "--from-file", str(xml.path))
    assert result.exit_code == 0, result.output
    expected = xml.expected_timeliness
    assert f"EHC plans issued in {YEAR}" in result.stdout and "LA 919" in result.stdout
    for population in ("including_exceptions", "excluding_exceptions"):
        figures = expected[population]
        assert f"{figures['plans']:,}" in result.stdout
        assert f"{figures['percent_within_20_weeks']:.1f}%" in result.stdout
        assert f"{figures['mean_weeks_to_issue']:.1f}" in result.stdout
    assert "Including exceptions" in result.stdout and "Excluding exceptions" in result.stdout


def test_the_sample_return():
    sample = SEN2_SAMPLE
    if not sample.exists():
        pytest.skip("the SEN2 sample file is not available")
    report = json.loads(_run("--year", "2023", "--from-file", str(sample), "--json").stdout)
    assert report["lea"] == "201"
    assert report["including_exceptions"]["plans"] == 1
    assert report["including_exceptions"]["within_20_weeks"] == 1
    assert report["including_exceptions"]["mean_weeks_to_issue"] == 3.6  # 25 days


def _bad_files(tmp_path: Path) -> list[tuple[list[str], str]]:
    (tmp_path / "truncated.xml").write_bytes(b"<Message><Header><Source><LEA>919</LEA></Source></Header><Persons>"
                                             b"<Person><UPN>A9190000")
    (tmp_path / "other.xml").write_bytes(b"<html><body>not SEN2</body></html>")
    (tmp_path / "binary.xml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "empty.xml").write_bytes(b"")
    (tmp_path / "not-an-export").mkdir()
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    (tmp_path / "empty-message.xml").write_bytes(b"<Message/>")
    return [
        (["--from-file", str(tmp_path / "absent.xml")], "no such file or folder"),
        (["--from-file", str(tmp_path / "truncated.xml")], "malformed XML"),
        (["--from-file", str(tmp_path / "other.xml")], "not an SEN2 return"),
        (["--from-file", str(tmp_path / "binary.xml")], "malformed XML"),
        (["--from-file", str(tmp_path / "empty.xml")], "malformed XML: no element found"),
        (["--from-file", str(tmp_path / "not-an-export")], "not an SEN2 CSV export"),
        (["--from-file", str(tmp_path / "broken.zip")], "malformed XML"),
        (["--from-file", str(tmp_path / "empty-message.xml")], "not an SEN2 return (no header and no persons)"),
        ([], "--from-file is required"),
    ]


def test_a_bad_file_exits_2_with_one_line(tmp_path):
    for args, message in _bad_files(tmp_path):
        result = _run("--year", str(YEAR), *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("ehc report timeliness: ")
        assert message in lines[0], (message, lines[0])
        assert "Traceback" not in result.output


def test_an_implausible_year_exits_2():
    result = _run("--year", "25", "--from-file", "x.xml")
    assert result.exit_code == 2
    assert "not a plausible calendar year" in result.stderr


def test_help_lists_the_command():
    result = runner.invoke(report_app, ["--help"])
    assert result.exit_code == 0 and "timeliness" in result.stdout
