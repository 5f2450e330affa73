"""Property-based fuzzing of the SEN2 parser: random bytes, damaged XML, odd field values. It never
raises; it yields only canonical events and rejections; rejections keep real bytes of the input."""

from __future__ import annotations

import os
import re
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.domain.results import Rejection
from services.intake.domain.sen2 import Sen2FormatError, iter_sen2_xml, read_assessment_records
from services.intake.domain.timeliness import compute_timeliness
from shared.contracts import CaseEventEnvelope, parse_case_event
from tests.paths import SEN2_SAMPLE

SAMPLE = SEN2_SAMPLE
if not SAMPLE.exists():
    pytest.skip("the SEN2 sample file is not available", allow_module_level=True)
RAW = SAMPLE.read_bytes()
KEY = b"fuzz-sen2-case-id-key-0123456789"
FUZZ = settings(max_examples=int(os.environ.get("EHC_FUZZ_EXAMPLES", "200")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
LEAVES = [(m.start(2), m.end(2), m.group(1)) for m in re.finditer(rb"<(\w+)>([^<]*)</\1>", RAW)]
PERSONAL = [b"TestFamilyName1", b"TestFirstname1", b"RequestRefused", b"AA11AA", b"AB11CD", b"X123456789875"]

xml_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n"), max_size=15)
plausible = st.one_of(
    st.sampled_from(["", "Y", "N", "A", "W", "H", "Q", "0", "1", "2", "true", "FALSE", "M", "C", "5", "9",
                     "2023-02-29", "2024-02-29", "2023-13-01", "2023-Sep-28 00:00:00", "2023-Sepp-28", "28/09/2023",
                     "0000-01-01", "9999-12-31", "2023-11-30T00:00:00", "X1234", "A919000000001", "1234567890",
                     "2025-02-15", "2025-03-31", "2025-06-01"]),
    xml_text,
)


def _check(raw: bytes) -> tuple[list, object]:
    imported = iter_sen2_xml(raw, case_id_key=KEY)
    items = list(imported)
    counts = imported.counts
    events = [i for i in items if isinstance(i, CaseEventEnvelope)]
    rejections = [i for i in items if isinstance(i, Rejection)]
    assert len(events) + len(rejections) == len(items), "only canonical events and rejections"
    assert counts.events_total == len(events) and counts.rejections == len(rejections)
    assert counts.persons_rejected <= counts.persons and counts.requests_rejected <= counts.requests
    for rejection in rejections:
        assert rejection.reason and "\n" not in rejection.reason and len(rejection.reason) <= 300
        assert rejection.original in raw, "a rejection keeps real bytes of the input"
        assert rejection.location
    for event in events:
        assert parse_case_event(event.to_json()) == event
        text = event.to_json()
        for value in PERSONAL:
            assert value not in text
    if not items:
        # nothing out: a well-formed return whose persons gave nothing to publish (noted) or no persons
        assert counts.persons == 0 or sum(counts.notes.values()) > 0 or counts.requests == 0
    return items, imported


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(raw):
    items, imported = _check(raw)
    if items:
        [rejection] = items
        assert rejection.original == raw  # no person read: the whole input is kept


@FUZZ
@given(st.data())
def test_damaged_xml(data):
    raw = RAW
    for _ in range(data.draw(st.integers(1, 3))):
        start = data.draw(st.integers(0, len(raw)))
        end = data.draw(st.integers(start, min(len(raw), start + 200)))
        operation = data.draw(st.sampled_from(["delete", "insert", "duplicate", "truncate", "swap"]))
        if operation == "delete":
            raw = raw[:start] + raw[end:]
        elif operation == "insert":
            raw = raw[:start] + data.draw(st.binary(max_size=20)) + raw[start:]
        elif operation == "duplicate":
            raw = raw[:end] + raw[start:end] + raw[end:]
        elif operation == "truncate":
            raw = raw[:start]
        else:
            raw = raw[:start] + raw[end:] + raw[start:end]
    _check(raw)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(LEAVES) - 1), plausible), min_size=1, max_size=6))
def test_odd_values_in_a_well_formed_return(changes):
    replaced = dict(changes)
    raw, last = b"", 0
    for index, (start, end, _) in enumerate(LEAVES):
        if index in replaced:
            raw += RAW[last:start] + escape(replaced[index]).encode()
            last = end
    raw += RAW[last:]
    items, imported = _check(raw)
    counts = imported.counts
    assert counts.persons == 2 and counts.requests == 3  # the structure is intact: everything is read
    assert items or sum(counts.notes.values()) > 0
    for rejection in (i for i in items if isinstance(i, Rejection)):
        assert re.fullmatch(r"person [12]( / request [12])? \(line \d+\)", rejection.location)
        assert rejection.original.startswith((b"<Person>", b"<Requests>"))
    # the 20-week records read the same file leniently, never failing on a value
    header, records = read_assessment_records_bytes(raw)
    assert header is not None and len(records) == 3
    compute_timeliness(records, 2023)


def read_assessment_records_bytes(raw: bytes):
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".xml") as file:
        file.write(raw)
        file.flush()
        return read_assessment_records(file.name)


@FUZZ
@given(st.binary(min_size=1, max_size=200))
def test_the_report_reader_raises_only_format_errors(raw):
    try:
        read_assessment_records_bytes(raw)
    except Sen2FormatError:
        pass
