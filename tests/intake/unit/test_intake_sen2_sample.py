"""The DfE SEN2 sample return (SEN2-2024-mockup.xml): exact events, no personal data, stable ids."""

from __future__ import annotations

import io
from collections import Counter
from datetime import date

import pytest

from services.intake.domain.case_ids import opaque_case_id
from services.intake.domain.results import Rejection, split_items
from services.intake.domain.sen2 import (
    WEEK20_REASON,
    Sen2Header,
    infer_phase_transfer,
    iter_sen2,
    iter_sen2_xml,
    read_assessment_records,
)
from shared.contracts import parse_case_event
from tests.paths import SEN2_SAMPLE

SAMPLE = SEN2_SAMPLE
if not SAMPLE.exists():  # a checkout without the shared samples folder
    pytest.skip("the SEN2 sample file is not available", allow_module_level=True)
KEY = b"sample-case-id-key-0123456789abc"
RAW = SAMPLE.read_bytes()
PERSONAL = ["TestFamilyName1", "TestFirstname1", "RequestRefused", "TestFirstname2", "X123456789875",
            "X123456789832", "1234567890", "1234567089", "AA11AA", "AB11CD", "2002-01-01", "2003-11-11",
            "Free text here"]


def _import(raw: bytes = RAW):
    imported = iter_sen2_xml(raw, case_id_key=KEY)
    return imported, list(imported)


def test_sample_header():
    imported, _ = _import()
    assert imported.header == Sen2Header(
        collection="SEN2", year=2024, lea="201", reference_date=date(2024, 1, 18), software_code="Local Authority",
        release="ver 3.1.21", serial_no="001", generated_at=imported.header.generated_at)
    assert imported.header.generated_at.isoformat() == "2022-05-23T11:14:05+01:00"


def test_sample_events_exact_types_and_counts():
    imported, items = _import()
    events, contacts, rejections = split_items(items)
    assert rejections == [] and contacts == []
    assert [e.type for e in events] == [
        # person 1, request 1: assessed, plan issued (then ceased), reviewed
        "ehc.request.received", "ehc.assessment.decided", "ehc.plan.issued", "ehc.plan.ceased",
        "ehc.review.meeting_held", "ehc.review.decision_issued",
        # person 2: request 1 refused, request 2 awaiting a decision
        "ehc.request.received", "ehc.assessment.decided", "ehc.request.received",
    ]
    assert imported.counts.to_dict() == {
        "persons": 2, "persons_rejected": 0, "requests": 3, "requests_rejected": 0, "rejections": 0,
        "events_total": 9,
        "events": {"ehc.assessment.decided": 2, "ehc.plan.ceased": 1, "ehc.plan.issued": 1,
                   "ehc.request.received": 3, "ehc.review.decision_issued": 1, "ehc.review.meeting_held": 1},
        "notes": {},
    }


def test_sample_event_data():
    _, items = _import()
    received, decided, issued, ceased, held, decision, received2, refused, received3 = items
    first_case = opaque_case_id(KEY, "sen2/201", "upn:X123456789875")
    assert {e.subject for e in items[:6]} == {first_case}
    assert {e.subject for e in items[6:]} == {opaque_case_id(KEY, "sen2/201", "upn:X123456789832")}
    assert all(e.source == "sen2/201" for e in items)
    assert received.data.occurred_on == date(2023, 11, 30) and received.data.route == "request"
    assert (decided.data.decision, decided.data.occurred_on, decided.data.notice_sent_on) == (
        "assess", date(2023, 12, 1), date(2023, 12, 1))
    assert issued.data.occurred_on == date(2023, 12, 25) and issued.data.plan_id.startswith("p-")
    assert issued.data.child_under_5 is False
    assert (ceased.data.occurred_on, ceased.data.notice_sent_on) == (date(2023, 12, 31), date(2023, 12, 31))
    assert held.data.occurred_on == date(2024, 1, 9)
    assert (decision.data.outcome, decision.data.occurred_on) == ("maintain", date(2024, 1, 8))
    assert (refused.data.decision, refused.data.occurred_on) == ("refuse", date(2023, 12, 1))
    assert received2.data.occurred_on == date(2023, 8, 31) and received3.data.occurred_on == date(2023, 12, 3)
    for event in items:
        assert parse_case_event(event.to_json()) == event


def test_no_personal_data_in_any_event():
    _, items = _import()
    serialized = b"\n".join(item.to_json() for item in items).decode()
    for value in PERSONAL:
        assert value not in serialized, value
    assert "201" not in serialized.replace("sen2/201", "")  # only the LA number, in the source


def test_ids_are_deterministic():
    _, first = _import()
    _, second = _import()
    assert [e.id for e in first] == [e.id for e in second]
    assert [e.subject for e in first] == [e.subject for e in second]
    assert [e.to_json() for e in first] == [e.to_json() for e in second]
    assert len({e.id for e in first}) == len(first)


def test_path_stream_and_bytes_give_the_same_events():
    by_path = [e.to_json() for e in iter_sen2_xml(SAMPLE, case_id_key=KEY)]
    by_str = [e.to_json() for e in iter_sen2_xml(str(SAMPLE), case_id_key=KEY)]
    by_stream = [e.to_json() for e in iter_sen2_xml(io.BytesIO(RAW), case_id_key=KEY)]
    auto = [e.to_json() for e in iter_sen2(SAMPLE, case_id_key=KEY)]
    assert by_path == by_str == by_stream == auto


def test_another_key_gives_other_case_ids_and_event_ids():
    _, items = _import()
    other = list(iter_sen2_xml(RAW, case_id_key=b"another-key-0123456789abcdefghij"))
    assert {e.subject for e in items}.isdisjoint({e.subject for e in other})
    assert {e.id for e in items}.isdisjoint({e.id for e in other})


def test_lea_override():
    items = list(iter_sen2_xml(RAW, case_id_key=KEY, lea="919"))
    assert {e.source for e in items} == {"sen2/919"}


def test_a_missing_file_raises():
    with pytest.raises(FileNotFoundError):
        iter_sen2_xml("/nonexistent/sen2.xml", case_id_key=KEY)


def test_an_empty_key_is_refused():
    with pytest.raises(ValueError, match="key"):
        iter_sen2_xml(RAW, case_id_key=b"")


# --- variations of the sample ------------------------------------------------------------------------

def test_element_names_match_case_insensitively_and_wpb_is_wbp():
    varied = (RAW.replace(b"<ReceivedDate>", b"<receiveddate>").replace(b"</ReceivedDate>", b"</receiveddate>")
              .replace(b"<WBP>", b"<WPB>").replace(b"</WBP>", b"</WPB>")
              .replace(b"<AssessmentOutcome>", b"<ASSESSMENTOUTCOME>")
              .replace(b"</AssessmentOutcome>", b"</ASSESSMENTOUTCOME>"))
    assert [e.to_json() for e in iter_sen2_xml(varied, case_id_key=KEY)] == [e.to_json() for e in _import()[1]]


def test_booleans_true_false_and_week20_exception():
    raw = RAW.replace(b"<Week20>0</Week20>", b"<Week20>true</Week20>")
    imported, items = _import(raw)
    [exception] = [e for e in items if e.type == "ehc.exception.recorded"]
    assert exception.data.exception == "E3"
    assert exception.data.rule_ids == ["plan.final"]
    assert exception.data.reason == WEEK20_REASON
    assert exception.data.occurred_on == date(2023, 11, 30)  # the request's ReceivedDate
    assert _import(RAW.replace(b"<Week20>0</Week20>", b"<Week20>false</Week20>"))[0].counts.events_total == 9


def test_withdrawn_request_closes_the_case():
    raw = RAW.replace(b"<RequestOutcome>N</RequestOutcome>", b"<RequestOutcome>W</RequestOutcome>")
    closed = [e for e in _import(raw)[1] if e.type == "ehc.case.closed"]
    assert [(c.data.reason, c.data.occurred_on) for c in closed] == [("request_withdrawn", date(2023, 12, 1))]


def test_plan_not_issued():
    raw = RAW.replace(b"<AssessmentOutcome>Y</AssessmentOutcome>", b"<AssessmentOutcome>N</AssessmentOutcome>")
    types = [e.type for e in _import(raw)[1]]
    assert "ehc.plan.not_issued" in types and "ehc.plan.issued" not in types


def test_request_source_sets_requested_by():
    raw = RAW.replace(b"<RYA>0</RYA>", b"<RequestSource>2</RequestSource><RYA>0</RYA>", 1)
    assert _import(raw)[1][0].data.requested_by == "school"
    [rejection] = [i for i in _import(RAW.replace(b"<RYA>0</RYA>", b"<RequestSource>7</RequestSource><RYA>0</RYA>",
                                                      1))[1] if isinstance(i, Rejection)]
    assert rejection.reason == "field RequestSource has an unknown code (expected 1 to 5)"


def test_phase_transfer_events():
    raw = RAW.replace(b"<LastReview>2024-01-08</LastReview>",
                      b"<LastReview>2024-01-08</LastReview><PhaseTransferDueDate>2024-03-31</PhaseTransferDueDate>"
                      b"<PhaseTransferFinalDate>2024-03-20</PhaseTransferFinalDate>")
    items = _import(raw)[1]
    [planned] = [e for e in items if e.type == "ehc.phase_transfer.planned"]
    assert (planned.data.kind, planned.data.transfer_on) == ("post16", date(2024, 9, 1))
    assert planned.data.occurred_on == date(2024, 1, 18)  # known by the census day at the latest
    [amended] = [e for e in items if e.type == "ehc.plan.amended"]
    assert amended.data.occurred_on == date(2024, 3, 20)


@pytest.mark.parametrize("due,born,expected", [
    (date(2026, 2, 15), None, ("school", date(2026, 9, 1))),
    (date(2026, 2, 14), None, ("school", date(2026, 9, 1))),
    (date(2026, 3, 31), None, ("post16", date(2026, 9, 1))),
    (date(2026, 6, 10), date(2008, 1, 1), ("post16_to_post16", date(2026, 11, 10))),
    (date(2026, 6, 10), date(2015, 1, 1), None),
    (date(2026, 6, 10), None, None),
])
def test_phase_transfer_kind_inference(due, born, expected):
    assert infer_phase_transfer(due, born) == expected


# --- rejections keep the original fragment and the rest of the file goes on -------------------------

def test_a_bad_upn_rejects_the_person_with_its_xml_fragment():
    raw = RAW.replace(b"X123456789875", b"X12345", 1)
    imported, items = _import(raw)
    events, _, [rejection] = split_items(items)
    assert rejection.reason == "field UPN is not 13 characters"
    assert rejection.location == "person 1 (line 20)"
    assert rejection.original.startswith(b"<Person>") and rejection.original.endswith(b"</Person>")
    assert rejection.original in raw
    assert "X12345" not in rejection.reason
    assert [e.type for e in events] == ["ehc.request.received", "ehc.assessment.decided", "ehc.request.received"]
    assert (imported.counts.persons_rejected, imported.counts.requests_rejected) == (1, 1)


@pytest.mark.parametrize("old,new,reason", [
    (b"<ReceivedDate>2023-12-03</ReceivedDate>", b"<ReceivedDate>2023-02-30</ReceivedDate>",
     "field ReceivedDate is not a valid calendar date"),
    (b"<ReceivedDate>2023-12-03</ReceivedDate>", b"<ReceivedDate></ReceivedDate>", "field ReceivedDate is missing"),
    (b"<ReceivedDate>2023-12-03</ReceivedDate>", b"<ReceivedDate>03.12.2023</ReceivedDate>",
     "field ReceivedDate is not a date (expected YYYY-MM-DD)"),
    (b"<RequestOutcome>A</RequestOutcome>", b"<RequestOutcome>Q</RequestOutcome>",
     "field RequestOutcome has an unknown code (expected Y, N, A, W, H)"),
    (b"<RequestOutcome>A</RequestOutcome>", b"<RequestOutcome>W</RequestOutcome>",
     "field RequestOutcomeDate is missing (RequestOutcome is W)"),
])
def test_a_bad_request_is_rejected_alone(old, new, reason):
    raw = RAW.replace(old, new)
    imported, items = _import(raw)
    events, _, [rejection] = split_items(items)
    assert rejection.reason == reason
    assert rejection.location == "person 2 / request 2 (line 139)"
    assert rejection.original.startswith(b"<Requests>") and rejection.original.endswith(b"</Requests>")
    assert rejection.original in raw and new in rejection.original
    assert len(events) == 8  # everything else still converted
    assert imported.counts.requests_rejected == 1 and imported.counts.persons_rejected == 0


def test_review_outcome_code_is_checked():
    raw = RAW.replace(b"<ReviewOutcome>M</ReviewOutcome>", b"<ReviewOutcome>X</ReviewOutcome>")
    [rejection] = [i for i in _import(raw)[1] if isinstance(i, Rejection)]
    assert rejection.reason == "field ReviewOutcome has an unknown code (expected A, C, M)"


def test_a_truncated_file_rejects_the_unread_rest():
    cut = RAW.index(b"<Surname>RequestRefused")
    raw = RAW[:cut]
    imported, items = _import(raw)
    events, _, [rejection] = split_items(items)
    assert len(events) == 6  # person 1 was complete
    assert rejection.reason.startswith("malformed XML")
    assert rejection.reason.endswith("the rest of the file was not read")
    assert rejection.original == raw[raw.index(b"<Person>", RAW.index(b"</Person>")):]
    assert rejection.location.endswith("after person 1")


@pytest.mark.parametrize("raw,reason", [
    (b"", "malformed XML: no element found"),
    (b"\x89PNG\r\n", "malformed XML"),
    (b"<html><body/></html>", "not an SEN2 return: the root element is not Message"),
    (b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY e "x">]><Message/>', "XML with a DTD or entity declarations"),
    (b'<!DOCTYPE Message SYSTEM "http://example.invalid/x.dtd"><Message/>', "XML with a DTD"),
])
def test_a_file_that_is_not_sen2_gives_one_rejection_with_all_its_bytes(raw, reason):
    [rejection] = list(iter_sen2_xml(raw, case_id_key=KEY))
    assert isinstance(rejection, Rejection)
    assert rejection.reason.startswith(reason)
    assert rejection.original == raw


def test_a_billion_laughs_is_refused_quickly():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + b"".join(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10 if i > 1 else b"&lol;" * 10)
                       for i in range(1, 10))
            + b"]><Message>&lol9;</Message>")
    [rejection] = list(iter_sen2_xml(bomb, case_id_key=KEY))
    assert "DTD" in rejection.reason


def test_persons_without_header_lea_are_rejected():
    raw = RAW.replace(b"<LEA>201</LEA>", b"<LEA>Hertfordshire</LEA>")
    imported, items = _import(raw)
    reason = "the return's header has no LEA (a 3-digit DfE LA number) before this person"
    assert [i.reason for i in items] == [reason] * 2
    assert imported.counts.persons_rejected == 2


def test_identity_falls_back_to_uln_then_name_and_birth_date():
    no_upn = RAW.replace(b"<UPN>X123456789875</UPN>", b"<UPN></UPN>")
    assert _import(no_upn)[1][0].subject == opaque_case_id(KEY, "sen2/201", "uln:1234567890")
    unknown = no_upn.replace(b"<UniqueLearnerNumber>1234567890</UniqueLearnerNumber>",
                             b"<UniqueLearnerNumber></UniqueLearnerNumber>")
    unknown = unknown.replace(b"<UPNunknown></UPNunknown>", b"<UPNunknown>UN2</UPNunknown>", 1)
    case_id = _import(unknown)[1][0].subject
    assert case_id.startswith("c-") and case_id != opaque_case_id(KEY, "sen2/201", "uln:1234567890")
    # the same person written with other spacing and case gets the same case
    respaced = unknown.replace(b"<Surname>TestFamilyName1", b"<Surname> testfamilyname1 ")
    assert _import(respaced)[1][0].subject == case_id
    nothing = unknown.replace(b"<PersonBirthDate>2002-01-01</PersonBirthDate>", b"<PersonBirthDate/>")
    [rejection] = [i for i in _import(nothing)[1] if isinstance(i, Rejection)]
    assert rejection.reason == "person has no UPN, ULN, or surname, forename and birth date to identify them"


def test_timeliness_records_of_the_sample():
    header, records = read_assessment_records(SAMPLE)
    assert header.lea == "201"
    assert Counter(r.outcome for r in records) == Counter({"Y": 1, "A": 2})
    [issued] = [r for r in records if r.outcome == "Y"]
    assert (issued.received_on, issued.outcome_on, issued.week20) == (date(2023, 11, 30), date(2023, 12, 25), False)


@pytest.mark.parametrize("variant", ["namespace", "utf-16", "windows-1252"])
def test_namespaces_and_encodings(variant):
    text = RAW.decode()
    if variant == "namespace":
        raw = RAW.replace(b"<Message>", b'<Message xmlns="http://www.example.invalid/sen2">', 1)
    elif variant == "utf-16":
        raw = ('<?xml version="1.0" encoding="UTF-16"?>\n' + text).encode("utf-16")
    else:
        raw = ('<?xml version="1.0" encoding="windows-1252"?>\n' + text.replace("TestFamilyName1", "Brontë")
               ).encode("cp1252")
    assert [e.to_json() for e in _import(raw)[1]] == [e.to_json() for e in _import()[1]]


def test_lea_override_without_a_header():
    raw = RAW[:RAW.index(b"<Header>")] + RAW[RAW.index(b"</Header>") + len(b"</Header>"):]
    items = list(iter_sen2_xml(raw, case_id_key=KEY, lea="919"))
    assert len(items) == 9 and {e.source for e in items} == {"sen2/919"}


def test_elements_outside_a_person_are_counted_not_dropped_silently():
    raw = RAW.replace(b"<Persons>", b"<Persons><Requests><ReceivedDate>2023-01-01</ReceivedDate></Requests>", 1)
    imported, items = _import(raw)
    assert len(items) == 9
    assert imported.counts.notes == {"<requests> outside a Person: not read": 1}
