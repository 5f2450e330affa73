"""``ehc intake import --dry-run`` of a damaged SEN2 file prints no events and exits 2 naming the line
(issue 13): nothing half-done is left without a summary."""

from __future__ import annotations

from pathlib import Path

from services.intake.domain.sen2_synthetic import write_sen2_xml
from tests.intake.unit.test_intake_import_cli import run


def test_a_dry_run_of_a_file_with_a_bad_byte_prints_nothing_and_exits_2(tmp_path: Path) -> None:
    generated = write_sen2_xml(tmp_path / "return.xml", 300, 2025, seed=3)
    data = generated.path.read_bytes()
    at = data.index(b"<Person>", len(data) // 2)
    generated.path.write_bytes(data[:at + 10] + b"\xc3\x28" + data[at + 12:])
    result = run(str(generated.path), "--format", "sen2", "--dry-run")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ehc intake import: return.xml: malformed XML") and " line " in last


def test_a_dry_run_with_skip_bad_prints_the_good_ones_and_counts_the_rest(tmp_path: Path) -> None:
    generated = write_sen2_xml(tmp_path / "return.xml", 300, 2025, seed=3)
    data = generated.path.read_bytes()
    generated.path.write_bytes(data[: data.index(b"<Person>", len(data) // 2) + 10])
    result = run(str(generated.path), "--format", "sen2", "--dry-run", "--skip-bad")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") > 0
    assert "1 records rejected" in result.stderr and "the rest of the file was not read" in result.stderr
