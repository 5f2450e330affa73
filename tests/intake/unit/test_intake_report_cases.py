"""`ehc report timeliness --from-file` (issue 11, item 6): --cases lists the cases behind each
figure, by the case ids the importer gives; a year with no plans is warned about."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from services.intake.domain.sen2 import iter_sen2
from services.intake.domain.sen2_synthetic import write_sen2_xml
from services.intake.entrypoints.report_cli import report_app
from shared.settings import Settings

YEAR = 2025
runner = CliRunner()


def test_cases_behind_each_figure_are_the_importers_case_ids(tmp_path) -> None:  # type: ignore[no-untyped-def]
    xml = write_sen2_xml(tmp_path / "return.xml", 120, YEAR, 5, lea="919")
    result = runner.invoke(report_app, ["timeliness", "--year", str(YEAR), "--from-file", str(xml.path), "--json",
                                        "--cases"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    cases = report.pop("cases")
    report.pop("source_file")
    assert report == xml.expected_timeliness  # the figures are unchanged by --cases
    for population in ("including_exceptions", "excluding_exceptions"):
        for figure, refs in cases[population].items():
            assert len(refs) == report[population][figure], (population, figure)
    assert len(cases["exceptions"]) == report["exceptions"]
    from services.intake.config import case_id_key
    items = list(iter_sen2(xml.path, case_id_key=case_id_key(Settings())))
    imported = {item.subject for item in items if hasattr(item, "subject")}
    rejected = sum(1 for item in items if not hasattr(item, "subject"))
    plans = set(cases["including_exceptions"]["plans"])
    assert len(plans & imported) >= len(plans) - rejected > 0  # the importer rejects a few broken records


def test_a_year_without_plans_is_warned_about(tmp_path) -> None:  # type: ignore[no-untyped-def]
    xml = write_sen2_xml(tmp_path / "return.xml", 60, YEAR, 6, lea="919")
    result = runner.invoke(report_app, ["timeliness", "--year", str(YEAR + 1), "--from-file", str(xml.path)])
    assert result.exit_code == 0
    assert f"warning: no plans were issued in {YEAR + 1}; the data holds plans issued in" in result.stderr
    assert f"{YEAR} (" in result.stderr and "the 2024 return holds plans issued in 2023" in result.stderr
    as_json = json.loads(runner.invoke(report_app, ["timeliness", "--year", str(YEAR + 1), "--from-file",
                                                    str(xml.path), "--json"]).stdout)
    assert as_json["including_exceptions"]["plans"] == 0 and as_json["warnings"]
