"""Generated SEN2 returns: XML and CSV export give the same events, the counts and the 20-week figures
the generator expects, flat memory, and CSV export variations (zip, Blade file names, broken rows)."""

from __future__ import annotations

import shutil
import tracemalloc
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from services.intake.domain.results import Rejection, split_items
from services.intake.domain.sen2 import Sen2FormatError, iter_sen2, iter_sen2_csv, iter_sen2_xml
from services.intake.domain.sen2_synthetic import (
    generate_persons,
    reference_date_for,
    write_sen2_csv,
    write_sen2_xml,
)
from services.intake.domain.timeliness import timeliness_from_file

KEY = b"generated-case-id-key-0123456789"
PERSONS, YEAR, SEED = 1500, 2025, 11


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sen2")
    xml = write_sen2_xml(folder / "sen2.xml", PERSONS, YEAR, SEED)
    csv = write_sen2_csv(folder / "csv", PERSONS, YEAR, SEED)
    return xml, csv


@pytest.fixture(scope="module")
def imported(generated):
    xml, csv = generated
    from_xml = iter_sen2_xml(xml.path, case_id_key=KEY)
    xml_items = list(from_xml)
    from_csv = iter_sen2_csv(csv.path, case_id_key=KEY)
    csv_items = list(from_csv)
    return from_xml, xml_items, from_csv, csv_items


def test_both_writers_write_the_same_records(generated):
    xml, csv = generated
    assert (xml.persons, xml.requests, xml.expected_events) == (csv.persons, csv.requests, csv.expected_events)
    assert xml.expected_timeliness == csv.expected_timeliness


def test_the_generator_is_deterministic(tmp_path, generated):
    again = write_sen2_xml(tmp_path / "again.xml", PERSONS, YEAR, SEED)
    assert again.path.read_bytes() == generated[0].path.read_bytes()
    assert generate_persons(5, YEAR, 1) != generate_persons(5, YEAR, 2)


def test_the_generated_data_is_realistic(generated):
    xml, _ = generated
    expected = xml.expected_timeliness["including_exceptions"]
    assert expected["plans"] > 200
    assert 0 < expected["within_20_weeks"] < expected["plans"]
    assert expected["over_20_up_to_52_weeks"] > 0 and expected["over_52_weeks"] > 0
    assert expected["no_usable_received_date"] > 0
    assert xml.expected_timeliness["exceptions"] > 0
    for type_ in ("ehc.plan.ceased", "ehc.review.decision_issued", "ehc.phase_transfer.planned",
                  "ehc.exception.recorded", "ehc.case.closed", "ehc.plan.not_issued"):
        assert xml.expected_events[type_] > 0, type_
    assert xml.expected_rejected_requests > 0


def test_xml_and_csv_give_the_same_events(imported):
    _, xml_items, _, csv_items = imported
    xml_events, _, xml_rejections = split_items(xml_items)
    csv_events, _, csv_rejections = split_items(csv_items)
    assert len(xml_events) > 3000
    assert [e.to_json() for e in xml_events] == [e.to_json() for e in csv_events]
    assert [r.reason for r in xml_rejections] == [r.reason for r in csv_rejections]
    assert [r.location.split(" (")[0] for r in xml_rejections] == [r.location.split(" (")[0] for r in csv_rejections]


def test_the_events_are_those_the_generator_expects(generated, imported):
    xml, _ = generated
    from_xml, xml_items, from_csv, _ = imported
    for importer in (from_xml, from_csv):
        counts = importer.counts
        assert counts.events == xml.expected_events
        assert counts.persons == PERSONS and counts.requests == xml.requests
        assert counts.requests_rejected == xml.expected_rejected_requests == counts.rejections
        assert counts.persons_rejected == 0
    assert Counter(e.type for e in split_items(xml_items)[0]) == xml.expected_events


def test_rejections_are_requests_without_received_date(imported):
    _, xml_items, _, csv_items = imported
    for rejection in split_items(xml_items)[2]:
        assert rejection.reason == "field ReceivedDate is missing"
        assert rejection.original.startswith(b"<Requests>") and rejection.original.endswith(b"</Requests>")
    for rejection in split_items(csv_items)[2]:
        assert rejection.location.endswith(".csv line " + rejection.location.rsplit(" ", 1)[1])
        assert b"# requests.csv line" in rejection.original and b"receiveddate" in rejection.original


def test_no_personal_data_in_events(generated, imported):
    xml, _ = generated
    _, xml_items, _, csv_items = imported
    text = b"\n".join(item.to_json() for item in xml_items + csv_items if not isinstance(item, Rejection)).decode()
    assert xml.sensitive_values
    for value in xml.sensitive_values:
        assert value not in text, value
    assert "Synthsurname" not in text and "Synthforename" not in text and "ZZ" not in text


def test_reimport_gives_identical_ids(generated, imported):
    _, xml_items, _, _ = imported
    again = list(iter_sen2_xml(generated[0].path, case_id_key=KEY))
    assert [i.id for i in again if not isinstance(i, Rejection)] == [
        i.id for i in xml_items if not isinstance(i, Rejection)]
    ids = [i.id for i in xml_items if not isinstance(i, Rejection)]
    assert len(ids) == len(set(ids))


def test_request_source_is_read_in_2025_returns(imported):
    _, xml_items, _, _ = imported
    requested_by = Counter(e.data.requested_by for e in xml_items if getattr(e, "type", "") == "ehc.request.received")
    assert {"parent", "school"} <= set(requested_by) and len(requested_by) >= 3


def test_the_header_of_a_generated_return(imported):
    from_xml, _, from_csv, _ = imported
    for importer in (from_xml, from_csv):
        assert importer.header.year == YEAR + 1
        assert importer.header.lea == "919"
        assert importer.header.reference_date == reference_date_for(YEAR + 1)
        assert importer.header.reference_date.weekday() == 3  # a Thursday
    assert from_xml.header.generated_at == from_csv.header.generated_at


def test_timeliness_from_xml_and_csv_equals_the_generators_figures(generated):
    xml, csv = generated
    assert timeliness_from_file(xml.path, YEAR).to_dict() == xml.expected_timeliness
    assert timeliness_from_file(csv.path, YEAR).to_dict() == csv.expected_timeliness


def test_timeliness_of_other_years(generated):
    xml, _ = generated
    earlier = timeliness_from_file(xml.path, YEAR - 1).to_dict()
    assert earlier["including_exceptions"]["plans"] > 0  # plans issued in the year before
    assert timeliness_from_file(xml.path, YEAR - 10).to_dict()["including_exceptions"]["plans"] == 0


def test_parsing_memory_stays_flat(generated):
    tracemalloc.start()
    try:
        for _ in iter_sen2_xml(generated[0].path, case_id_key=KEY):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert generated[0].path.stat().st_size > 2_000_000
    assert peak < 2_000_000, f"peak {peak} bytes"


# --- CSV export variations ----------------------------------------------------------------------------

def test_a_zip_of_the_export_and_blade_file_names(tmp_path, generated, imported):
    _, csv = generated
    _, _, _, csv_items = imported
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in csv.path.iterdir():
            out.write(file, f"export/Blade-Export_25-01-2026_{file.name}")
    from_zip = [i.to_json() for i in iter_sen2_csv(archive, case_id_key=KEY) if not isinstance(i, Rejection)]
    assert from_zip == [i.to_json() for i in csv_items if not isinstance(i, Rejection)]
    auto = [i.to_json() for i in iter_sen2(archive, case_id_key=KEY) if not isinstance(i, Rejection)]
    assert auto == from_zip
    assert timeliness_from_file(archive, YEAR).to_dict() == csv.expected_timeliness


def _small_export(tmp_path: Path) -> Path:
    folder = tmp_path / "small"
    write_sen2_csv(folder, 30, YEAR, 3)
    return folder


def test_orphan_and_broken_rows_are_rejected_and_the_rest_goes_on(tmp_path):
    folder = _small_export(tmp_path)
    baseline = list(iter_sen2_csv(folder, case_id_key=KEY))
    with (folder / "requests.csv").open("a", encoding="utf-8") as out:
        out.write("9999,1,777,2025-Jan-05 00:00:00,,False,,A,False,False,\n")  # no person 777
        out.write("10000,1,1,2025-Jan-05 00:00:00,,False,,A,False,False,,extra,fields\n")
    with (folder / "senneed.csv").open("a", encoding="utf-8") as out:
        out.write("5000,1,\"" + "A" * 200_000 + "\",1\n")  # over the csv module's field limit
    items = list(iter_sen2_csv(folder, case_id_key=KEY))
    events, _, rejections = split_items(items)
    assert len(events) == len(split_items(baseline)[0])
    reasons = sorted(r.reason for r in rejections if r not in split_items(baseline)[2])
    assert reasons == sorted([
        "requests.csv row refers to no person row (persontableid not found)",
        "row has 13 fields, the header has 11",
        "unreadable CSV record (field larger than field limit (131072))",
    ])
    orphan = next(r for r in rejections if "refers to no person" in r.reason)
    assert orphan.location.startswith("requests.csv line ") and orphan.original.endswith(b"777,2025-Jan-05 00:00:00,,"
                                                                                         b"False,,A,False,False,\n")


def test_an_export_without_person_file_is_not_sen2(tmp_path):
    folder = _small_export(tmp_path)
    (folder / "person.csv").unlink()
    with pytest.raises(Sen2FormatError, match=r"no person\.csv"):
        iter_sen2_csv(folder, case_id_key=KEY)


def test_two_files_for_one_table_are_refused(tmp_path):
    folder = _small_export(tmp_path)
    shutil.copy(folder / "person.csv", folder / "Blade-Export_01-01-2026_person.csv")
    with pytest.raises(Sen2FormatError, match="two files for the person table"):
        iter_sen2_csv(folder, case_id_key=KEY)


def test_a_child_table_without_its_key_column_is_refused(tmp_path):
    folder = _small_export(tmp_path)
    path = folder / "requests.csv"
    path.write_text(path.read_text().replace("persontableid", "personid", 1))
    with pytest.raises(Sen2FormatError, match="requests.csv has no persontableid column"):
        list(iter_sen2_csv(folder, case_id_key=KEY))


def test_an_older_return_without_request_source(tmp_path):
    generated = write_sen2_xml(tmp_path / "2024.xml", 200, 2023, 5)
    items = list(iter_sen2_xml(generated.path, case_id_key=KEY))
    received = [i for i in items if getattr(i, "type", "") == "ehc.request.received"]
    assert received and b"<RequestSource>" not in generated.path.read_bytes()
    assert timeliness_from_file(generated.path, 2023).to_dict() == generated.expected_timeliness


def test_a_request_with_two_assessments_is_rejected(tmp_path):
    folder = _small_export(tmp_path)
    lines = (folder / "assessment.csv").read_text().splitlines()
    first = lines[1].split(",")
    (folder / "assessment.csv").write_text("\n".join([*lines, ",".join(["9999", *first[1:]])]) + "\n")
    rejections = split_items(iter_sen2_csv(folder, case_id_key=KEY))[2]
    assert [r.reason for r in rejections if "more than one" in r.reason] == ["request has more than one Assessment"]
