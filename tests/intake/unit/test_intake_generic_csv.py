"""The generic CSV importer: each row is one message read through a source mapping."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.domain.csv_rows import iter_csv_rows
from services.intake.domain.generic_csv import CsvFormatError, iter_csv
from services.intake.domain.mapping import load_mappings
from services.intake.domain.results import Rejection, split_items
from shared.contracts import CaseEventEnvelope, ContactsUpdated

KEY = b"csv-case-id-key-0123456789abcdef"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CASEFLOW = load_mappings()["caseflow"]
COLUMNS = ["msg_id", "case_ref", "status", "status_date", "recorded_at", "notice_date", "plan_ref", "review_outcome",
           "close_reason", "parent_name", "parent_email", "parent_mobile", "contact_consent"]


def _write(path: Path, rows: list[list[str]], columns: list[str] = COLUMNS, encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def _row(msg_id: str, status: str, **changes: str) -> list[str]:
    values = {"msg_id": msg_id, "case_ref": "CF/9", "status": status, "status_date": "05/01/2026",
              "recorded_at": "05/01/2026 09:00", "notice_date": "", "plan_ref": "PLAN-9", "review_outcome": "",
              "close_reason": "", "parent_name": "", "parent_email": "", "parent_mobile": "", "contact_consent": ""}
    values.update(changes)
    return [values[c] for c in COLUMNS]


def test_rows_become_events(tmp_path):
    path = _write(tmp_path / "cases.csv", [
        _row("CF-1", "REQ_RCVD"),
        _row("CF-2", "DEC_ASSESS", status_date="10/02/2026"),
        _row("CF-3", "FINAL_ISSUED", status_date="20/05/2026"),
        _row("CF-4", "REVIEW_DEC", review_outcome="MAINTAIN", status_date="19/05/2027"),
    ])
    events, contacts, rejections = split_items(iter_csv(path, CASEFLOW, KEY, now=NOW))
    assert rejections == [] and contacts == []
    assert [e.type for e in events] == ["ehc.request.received", "ehc.assessment.decided", "ehc.plan.issued",
                                        "ehc.review.decision_issued"]
    assert [e.id for e in events] == ["CF-1", "CF-2", "CF-3", "CF-4"]
    assert len({e.subject for e in events}) == 1
    assert events[1].data.notice_sent_on == date(2026, 2, 10)  # empty notice_date: the status date


def test_bad_rows_are_rejected_with_header_and_line(tmp_path):
    path = _write(tmp_path / "cases.csv", [
        _row("CF-1", "REQ_RCVD"),
        _row("CF-2", "UNKNOWN_CODE"),
        _row("CF-3", "FINAL_ISSUED", status_date="31/02/2026"),
        _row("CF-4", "CLOSED"),
    ])
    with path.open("a", encoding="utf-8") as out:
        out.write("CF-5,CF/9,REQ_RCVD,05/01/2026,05/01/2026 09:00,,,,,,,,,surplus\n")
    items = list(iter_csv(path, CASEFLOW, KEY, now=NOW))
    events, _, rejections = split_items(items)
    assert [e.id for e in events] == ["CF-1"]
    assert [(r.location, r.reason) for r in rejections] == [
        ("line 3", "field status has a code that is not in the mapping's code list"),
        ("line 4", "field status_date is not a valid date (expected %d/%m/%Y or %d/%m/%y)"),
        ("line 5", "field close_reason is missing"),
        ("line 6", "row has 14 fields, the header has 13"),
    ]
    header = path.read_bytes().splitlines(keepends=True)[0]
    for rejection in rejections:
        assert rejection.original.startswith(header)
        assert rejection.original.count(b"\n") == 2


def test_contacts_from_a_row_go_to_contacts_updated(tmp_path):
    path = _write(tmp_path / "cases.csv", [
        _row("CF-1", "REQ_RCVD", parent_name="Row Parent", parent_email="row.parent@example.org",
             parent_mobile="07700900456", contact_consent="Y"),
    ])
    events, contacts, _ = split_items(iter_csv(path, CASEFLOW, KEY, now=NOW))
    assert "Row Parent" not in events[0].to_json().decode()
    assert contacts[0].data.contacts[0].email == "row.parent@example.org"
    assert contacts[0].subject == events[0].subject


def test_multiline_quoted_fields_keep_their_line_numbers(tmp_path):
    path = _write(tmp_path / "cases.csv", [
        _row("CF-1", "REQ_RCVD", parent_name="Two\nLines", parent_email="x@example.org", contact_consent="N"),
        _row("CF-2", "BAD"),
    ])
    items = list(iter_csv(path, CASEFLOW, KEY, now=NOW))
    [rejection] = [i for i in items if isinstance(i, Rejection)]
    assert rejection.location == "line 4"


def test_windows_1252_and_bom(tmp_path):
    path = tmp_path / "cases.csv"
    rows = [_row("CF-1", "REQ_RCVD", parent_name="Zoë Brontë", parent_email="z@example.org", contact_consent="Y")]
    _write(path, rows, encoding="cp1252")
    contacts = split_items(iter_csv(path, CASEFLOW, KEY, now=NOW))[1]
    assert contacts[0].data.contacts[0].name == "Zoë Brontë"
    _write(path, rows, encoding="utf-8-sig")
    events, contacts, rejections = split_items(iter_csv(path, CASEFLOW, KEY, now=NOW))
    assert not rejections and events[0].id == "CF-1" and contacts[0].data.contacts[0].name == "Zoë Brontë"


def test_empty_file_and_blank_lines(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert list(iter_csv(empty, CASEFLOW, KEY)) == []
    path = _write(tmp_path / "cases.csv", [_row("CF-1", "REQ_RCVD")])
    path.write_bytes(path.read_bytes() + b"\r\n\r\n")
    assert len(list(iter_csv(path, CASEFLOW, KEY))) == 1


def test_file_level_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        iter_csv(tmp_path / "absent.csv", CASEFLOW, KEY)
    repeated = _write(tmp_path / "repeated.csv", [], columns=["status", "status"])
    with pytest.raises(CsvFormatError, match="repeats column"):
        list(iter_csv(repeated, CASEFLOW, KEY))
    with pytest.raises(ValueError, match="canonical"):
        iter_csv(repeated, load_mappings()["canonical"], KEY)


def test_csv_rows_keep_raw_bytes():
    data = b'a,b\r\n1,"x\r\ny"\r\n\r\n2,3\r\n'
    rows = list(iter_csv_rows(io.BytesIO(data)))
    assert [(r.line, r.values) for r in rows] == [(1, ["a", "b"]), (2, ["1", "x\r\ny"]), (5, ["2", "3"])]
    assert b"".join(r.raw for r in rows) == data.replace(b"\r\n\r\n2", b"\r\n2")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=500))
def test_any_bytes_never_raise_and_every_row_is_accounted_for(tmp_path, data):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(b",".join(c.encode() for c in COLUMNS) + b"\n" + data)
    items = list(iter_csv(path, CASEFLOW, KEY, now=NOW))
    records = [r for r in iter_csv_rows(io.BytesIO(path.read_bytes()))][1:]
    for item in items:
        assert isinstance(item, CaseEventEnvelope | ContactsUpdated | Rejection)
        if isinstance(item, Rejection):
            assert not item.reason.startswith("internal error")
    # one case event or one rejection per record (plus contacts)
    assert len([i for i in items if not isinstance(i, ContactsUpdated)]) >= len(records)
    assert json.dumps([i.location for i in items if isinstance(i, Rejection)])
