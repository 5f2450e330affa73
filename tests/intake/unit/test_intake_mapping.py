"""Declarative source mappings: the example mappings, bad messages, contacts, bad mapping files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from services.intake.domain.case_ids import opaque_case_id
from services.intake.domain.mapping import EXAMPLES_DIR, MappingError, SourceMapping, load_mappings
from services.intake.domain.results import Rejection, split_items
from shared.contracts import CASE_EVENT_TYPES, CaseEventEnvelope, ContactsUpdated, parse_case_event

KEY = b"test-case-id-key-0123456789abcdef"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MAPPINGS = load_mappings()
CASEFLOW = MAPPINGS["caseflow"]
SYNERGY = MAPPINGS["synergy-like"]
CANONICAL = MAPPINGS["canonical"]

PARENT = {"name": "Jolene Testparent", "email": "jolene.testparent@example.org", "phone": "07700 900123"}

CASEFLOW_BASE = {
    "msg_id": "CF-000123", "case_ref": "CF/2026/0042", "status": "REQ_RCVD", "status_date": "16/02/2026",
    "recorded_at": "16/02/2026 10:12", "notice_date": "17/02/2026", "requested_by": "SCH",
    "advice_ref": "ADV-7", "advice_from": "EP", "provider_code": "EP-TEAM-2", "institution_urn": "117001",
    "plan_ref": "PLAN-42", "meeting_date": "03/03/2026", "review_outcome": "AMEND",
    "transfer_date": "01/09/2026", "transfer_type": "SCHOOL", "exception_code": "E4",
    "exception_rules": "plan.final, assessment.plan_decision", "exception_note": "family abroad for 5 weeks",
    "caseworker": "cw-17", "team": "north", "close_reason": "WITHDRAWN", "health_issues": "Y",
    "parent_name": PARENT["name"], "parent_email": PARENT["email"], "parent_mobile": PARENT["phone"],
    "contact_consent": "Y", "contact_pref": "SMS", "contact_lang": "EN",
}

SYNERGY_BASE = {
    "header": {"msgId": "7d0f3c9e-0001", "sentAt": "2026-02-16T10:12:00Z"},
    "case": {"ref": "SYN-004211"},
    "activity": {
        "code": "EHCP.REQ", "effectiveDate": "2026-02-16",
        "details": {
            "requestor": "SCH", "decision": "Y", "noticeDate": "2026-02-17", "adviceId": "adv-9",
            "providerType": "HEALTH", "providerRef": "NHS-TRUST-1", "institutionUrn": "117001",
            "planRef": "P-77", "underFive": False, "meetingDate": "2026-03-03", "outcome": "C",
            "transferDate": "2026-09-01", "transferKind": "POST16", "moveDate": "2026-04-01",
            "awareDate": "2026-03-01", "otherLa": "202", "planMadeDate": "2024-05-01",
            "lastReviewDate": "2025-05-01", "includesHealth": True, "sentToLaDate": "2026-02-20",
            "orderType": "AMEND", "exception": "E3", "rules": ["plan.final"], "note": "bereavement",
            "exceptionMsgId": "7d0f3c9e-0000", "officerId": "cw-3", "teamId": "south", "areaId": "east",
            "reason": "MOVEDAWAY", "retractsMsgId": "7d0f3c9e-0000",
        },
    },
    "contacts": [
        {"role": "PARENT", "fullName": PARENT["name"], "email": PARENT["email"], "mobile": PARENT["phone"],
         "consent": True, "preferredChannel": "EMAIL", "language": "cy"},
        {"role": "CARER", "fullName": "Carer Testname", "consent": False},
    ],
}


def _caseflow(**changes) -> bytes:
    return json.dumps({**CASEFLOW_BASE, **changes}).encode()


def _synergy(code: str, **details) -> bytes:
    message = json.loads(json.dumps(SYNERGY_BASE))
    message["activity"]["code"] = code
    message["activity"]["details"].update(details)
    return json.dumps(message).encode()


def _convert(mapping: SourceMapping, raw: bytes, **kw):
    return mapping.convert(raw, case_id_key=KEY, now=NOW, **kw)


# --- the example mappings -----------------------------------------------------------------------

def test_the_examples_folder_has_the_three_mappings():
    assert set(MAPPINGS) == {"caseflow", "synergy-like", "canonical"}
    assert {p.name for p in EXAMPLES_DIR.glob("*.yaml")} == {"caseflow.yaml", "synergy_like.yaml", "canonical.yaml"}


@pytest.mark.parametrize("mapping", [CASEFLOW, SYNERGY], ids=["caseflow", "synergy-like"])
def test_each_mapping_covers_at_least_12_canonical_types(mapping):
    produced = set(mapping.kind.codes.values())
    assert produced <= CASE_EVENT_TYPES
    assert len(produced) >= 12


@pytest.mark.parametrize("code,type_", sorted(CASEFLOW.kind.codes.items()))
def test_caseflow_converts_a_message_of_each_type(code, type_):
    items = _convert(CASEFLOW, _caseflow(status=code.upper()))
    events, contacts, rejections = split_items(items)
    assert rejections == []
    assert [e.type for e in events] == [type_]
    event = events[0]
    assert event.id == "CF-000123"
    assert event.source == "cms/caseflow/example"
    assert event.subject == opaque_case_id(KEY, "cms/caseflow/example", "CF/2026/0042")
    assert event.data.occurred_on == date(2026, 2, 16)
    assert event.time == datetime(2026, 2, 16, 10, 12, tzinfo=UTC)  # 10:12 GMT in February
    assert parse_case_event(event.to_json()) == event  # a valid canonical event, round trip
    assert len(contacts) == 1


@pytest.mark.parametrize("code,type_", sorted(SYNERGY.kind.codes.items()))
def test_synergy_like_converts_a_message_of_each_type(code, type_):
    events, contacts, rejections = split_items(_convert(SYNERGY, _synergy(code.upper())))
    assert rejections == []
    assert [e.type for e in events] == [type_]
    assert events[0].id == "7d0f3c9e-0001"
    assert events[0].data.occurred_on == date(2026, 2, 16)
    assert events[0].time == datetime(2026, 2, 16, 10, 12, tzinfo=UTC)
    assert parse_case_event(events[0].to_json()) == events[0]
    assert len(contacts) == 1 and len(contacts[0].data.contacts) == 2


def test_caseflow_data_fields_are_mapped():
    decided = _convert(CASEFLOW, _caseflow(status="DEC_REFUSE"))[0]
    assert decided.data.decision == "refuse"
    assert decided.data.notice_sent_on == date(2026, 2, 17)
    received = _convert(CASEFLOW, _caseflow(status="REQ_RCVD"))[0]
    assert (received.data.route, received.data.requested_by) == ("request", "school")
    exception = _convert(CASEFLOW, _caseflow(status="EXC_REC"))[0]
    assert exception.data.exception == "E4"
    assert exception.data.rule_ids == ["plan.final", "assessment.plan_decision"]
    review = _convert(CASEFLOW, _caseflow(status="REVIEW_DEC"))[0]
    assert review.data.outcome == "amend"
    mediation = _convert(CASEFLOW, _caseflow(status="MED_REQ", health_issues="n"))[0]
    assert mediation.data.includes_health is False
    no_notice = json.loads(_caseflow(status="NO_PLAN"))
    del no_notice["notice_date"]  # falls back to the status date
    assert _convert(CASEFLOW, json.dumps(no_notice).encode())[0].data.notice_sent_on == date(2026, 2, 16)


def test_synergy_like_data_fields_are_mapped():
    out = _convert(SYNERGY, _synergy("TRANSFER.OUT"))[0]
    assert (out.data.move_on, out.data.aware_on, out.data.to_la) == (date(2026, 4, 1), date(2026, 3, 1), "202")
    retracted = _convert(SYNERGY, _synergy("EVENT.RETRACT"))[0]
    assert retracted.data.retracts == "7d0f3c9e-0000"
    responsible = _convert(SYNERGY, _synergy("EHCP.RESPONSIBLE"))[0]
    assert responsible.data.route == "became_responsible"
    order = _convert(SYNERGY, _synergy("TRIBUNAL.ORDER"))[0]
    assert order.data.order_type == "amend"
    closed = _convert(SYNERGY, _synergy("CASE.CLOSED"))[0]
    assert closed.data.reason == "moved_away"


def test_supersedes_comes_from_the_header_when_given():
    message = json.loads(_synergy("EHCP.FINAL"))
    message["header"]["replaces"] = "7d0f3c9e-0000"
    assert _convert(SYNERGY, json.dumps(message).encode())[0].supersedes == "7d0f3c9e-0000"
    assert _convert(SYNERGY, _synergy("EHCP.FINAL"))[0].supersedes is None


def test_reimporting_gives_the_same_ids_and_case_ids():
    first = _convert(CASEFLOW, _caseflow(status="FINAL_ISSUED"))
    again = _convert(CASEFLOW, _caseflow(status="FINAL_ISSUED"))
    assert [i.id for i in first] == [i.id for i in again]
    assert [i.subject for i in first] == [i.subject for i in again]


# --- contacts -------------------------------------------------------------------------------------

def test_contacts_go_only_to_contacts_updated():
    for mapping, raw in ((CASEFLOW, _caseflow(status="FINAL_ISSUED")), (SYNERGY, _synergy("EHCP.FINAL"))):
        events, contacts, rejections = split_items(_convert(mapping, raw))
        assert not rejections
        event_json = events[0].to_json().decode()
        for value in (*PARENT.values(), "Testparent", "07700", "example.org", "Carer Testname"):
            assert value not in event_json
        contact = contacts[0]
        assert isinstance(contact, ContactsUpdated)
        assert contact.subject == events[0].subject
        assert contact.type == "ehc.contacts.updated"
        first = contact.data.contacts[0]
        assert (first.name, first.email, first.phone, first.consent) == (
            PARENT["name"], PARENT["email"], PARENT["phone"], True)


def test_caseflow_contact_details():
    contact = split_items(_convert(CASEFLOW, _caseflow()))[1][0]
    person = contact.data.contacts[0]
    assert (person.role, person.channel, person.language) == ("parent", "sms", "en")
    assert contact.data.local_offer_url == "https://www.example.gov.uk/send-local-offer"


def test_synergy_contacts_two_people_and_welsh():
    contact = split_items(_convert(SYNERGY, _synergy("EHCP.REQ")))[1][0]
    first, second = contact.data.contacts
    assert (first.role, first.channel, first.language) == ("parent", "email", "cy")
    assert (second.role, second.name, second.consent, second.channel) == ("carer", "Carer Testname", False, "none")
    assert contact.data.sendiass_contact.startswith("Example SENDIASS")


def test_no_contact_fields_no_contacts_update():
    message = {k: v for k, v in CASEFLOW_BASE.items() if not k.startswith(("parent_", "contact_"))}
    items = _convert(CASEFLOW, json.dumps(message).encode())
    assert [type(i) for i in items] == [type(items[0])] and isinstance(items[0], CaseEventEnvelope)


def test_missing_consent_means_no_consent():
    message = {k: v for k, v in CASEFLOW_BASE.items() if k != "contact_consent"}
    contact = split_items(_convert(CASEFLOW, json.dumps(message).encode()))[1][0]
    assert contact.data.contacts[0].consent is False


def test_a_bad_email_keeps_the_case_event_and_rejects_the_contacts():
    raw = _caseflow(parent_email="not-an-address")
    events, contacts, rejections = split_items(_convert(CASEFLOW, raw))
    assert len(events) == 1 and contacts == []
    [rejection] = rejections
    assert rejection.reason == "contacts not imported: data.contacts.0.email: not a valid email address"
    assert rejection.original == raw and rejection.location == "contacts"
    assert "not-an-address" not in rejection.reason


# --- bad messages: exactly one rejection, a clear reason, no values ---------------------------------

BAD_CASEFLOW = [
    (b"not json at all", "message is not valid JSON"),
    (b"\xff\xfe\x00garbage", "message is not valid JSON"),
    (b"[1, 2, 3]", "message is not a JSON object"),
    (b'"just a string"', "message is not a JSON object"),
    (_caseflow(status="SOMETHING_NEW"), "field status has a code that is not in the mapping's code list"),
    (_caseflow(status=None), "field status is missing"),
    (_caseflow(status=["REQ_RCVD"]), "field status is not a single value"),
    (_caseflow(status_date="31/02/2026"), "field status_date is not a valid date (expected %d/%m/%Y or %d/%m/%y)"),
    (_caseflow(status_date="2026-02-16"), "field status_date is not a valid date (expected %d/%m/%Y or %d/%m/%y)"),
    (_caseflow(status_date=""), "field status_date is missing"),
    (_caseflow(case_ref=" "), "field case_ref (case reference) is missing"),
    (_caseflow(msg_id=None), "field msg_id (event id) is missing"),
    (_caseflow(recorded_at="yesterday"), "field recorded_at is not a valid date and time"),
    (_caseflow(status="DEC_ASSESS", notice_date="30/13/2026"), "field notice_date is not a valid date"),
    (_caseflow(status="REVIEW_DEC", review_outcome="KEEP"), "field review_outcome has a code that is not in"),
    (_caseflow(status="MED_REQ", health_issues="maybe"), "field health_issues is not a yes/no value"),
    (_caseflow(status="FINAL_ISSUED", plan_ref="has spaces in it"), "ehc.plan.issued: data.plan_id: String should"),
    (_caseflow(status="CLOSED", close_reason=None), "field close_reason is missing"),
    (_caseflow(msg_id="bad id with spaces"), "ehc.request.received: id: String should match pattern"),
]


@pytest.mark.parametrize("raw,reason", BAD_CASEFLOW)
def test_a_bad_message_gives_exactly_one_rejection(raw, reason):
    items = _convert(CASEFLOW, raw)
    assert len(items) == 1
    [rejection] = items
    assert isinstance(rejection, Rejection)
    assert rejection.reason.startswith(reason)
    assert rejection.original == raw
    assert "\n" not in rejection.reason


def test_rejection_reasons_never_echo_values():
    for raw in (_caseflow(status="SECRET_CODE_Z"), _caseflow(status_date="Jolene 31/02"),
                _caseflow(status="FINAL_ISSUED", plan_ref="Jolene Testparent")):
        [rejection] = _convert(CASEFLOW, raw)
        assert "SECRET" not in rejection.reason and "Jolene" not in rejection.reason


def test_an_oversized_message_is_rejected():
    raw = b'{"x": "' + b"a" * 1_000_001 + b'"}'
    [rejection] = _convert(CASEFLOW, raw)
    assert rejection.reason == "message is larger than 1000000 bytes"


def test_synergy_like_bad_nested_shapes():
    message = json.loads(_synergy("EHCP.FINAL"))
    message["activity"] = "EHCP.FINAL"
    [rejection] = _convert(SYNERGY, json.dumps(message).encode())
    assert rejection.reason == "field activity.code is missing"
    [rejection] = _convert(SYNERGY, _synergy("EHCP.DECISION", decision="maybe"))
    assert rejection.reason == "field activity.details.decision has a code that is not in the mapping's code list"
    message = json.loads(_synergy("EHCP.REQ"))
    message["header"]["sentAt"] = "16/02/2026"
    [rejection] = _convert(SYNERGY, json.dumps(message).encode())
    assert rejection.reason == "field header.sentAt is not a valid date and time (expected iso)"


# --- canonical pass-through ----------------------------------------------------------------------

def _canonical_event(**changes) -> dict:
    event = {
        "specversion": "1.0", "id": "evt-1", "source": "cms/own-adapter/herts", "type": "ehc.request.received",
        "subject": "c-0123456789abcdef01234567", "time": "2026-01-05T10:00:00Z",
        "data": {"occurred_on": "2026-01-05", "requested_by": "school"},
    }
    event.update(changes)
    return event


def test_canonical_events_pass_through():
    raw = json.dumps(_canonical_event()).encode()
    [event] = CANONICAL.convert(raw, case_id_key=KEY)
    assert event.type == "ehc.request.received" and event.data.requested_by == "school"
    assert event.subject == "c-0123456789abcdef01234567"


def test_canonical_contacts_pass_through():
    raw = json.dumps({
        "id": "contacts-1", "source": "cms/own-adapter/herts", "type": "ehc.contacts.updated",
        "subject": "c-0123456789abcdef01234567", "time": "2026-01-05T10:00:00Z",
        "data": {"contacts": [{"name": "A Parent", "email": "a@example.org", "consent": True}]},
    }).encode()
    [contacts] = CANONICAL.convert(raw, case_id_key=KEY)
    assert isinstance(contacts, ContactsUpdated)


@pytest.mark.parametrize("changes,reason", [
    ({"type": "ehc.unknown.thing"}, "type: unknown event type"),
    ({"subject": "A919000000001"}, "subject looks like a UPN or ULN: case ids must be opaque"),
    ({"time": "2026-01-05T10:00:00"}, "time: must carry a UTC offset"),
    ({"data": {"occurred_on": "2026-02-30"}}, "data.occurred_on: Input should be a valid date"),
    ({"data": {"occurred_on": "2026-01-05", "parent_email": "x@example.org"}},
     "data.parent_email: Extra inputs are not permitted"),
])
def test_canonical_rejections(changes, reason):
    raw = json.dumps(_canonical_event(**changes)).encode()
    [rejection] = CANONICAL.convert(raw, case_id_key=KEY)
    assert isinstance(rejection, Rejection)
    assert rejection.reason.startswith(reason), rejection.reason
    assert "ehc.unknown" not in rejection.reason


def test_canonical_accept_sources():
    mapping = SourceMapping.from_yaml("name: c\nsource: cms/c\nmode: canonical\naccept_sources: [cms/herts/]\n")
    [rejection] = mapping.convert(json.dumps(_canonical_event()).encode(), case_id_key=KEY)
    assert rejection.reason == "source is not one this mapping accepts"


def test_canonical_mapping_does_not_take_csv_rows():
    with pytest.raises(ValueError, match="canonical"):
        CANONICAL.convert_record({}, original=b"", case_id_key=KEY)


# --- other mapping features -----------------------------------------------------------------------

MINIMAL = """
name: minimal
source: cms/minimal
kind: {const: ehc.review.meeting_held}
case_id: {from: $key, hash: false}
event_id: {derive: [held_on]}
defaults: {occurred_on: held_on}
events:
  ehc.review.meeting_held: {}
"""


def test_case_id_from_the_message_key_used_as_is_and_derived_event_ids():
    mapping = SourceMapping.from_yaml(MINIMAL)
    raw = b'{"held_on": "2026-03-03"}'
    [event] = mapping.convert(raw, key=b"case-77", case_id_key=KEY, now=NOW)
    assert event.subject == "case-77"
    assert event.time == NOW
    [again] = mapping.convert(raw, key=b"case-77", case_id_key=KEY)
    assert again.id == event.id
    [other] = mapping.convert(b'{"held_on": "2026-03-04"}', key=b"case-77", case_id_key=KEY)
    assert other.id != event.id


@pytest.mark.parametrize("key,reason", [
    (None, "field $key (case reference) is missing"),
    (b"A919000000001", "field $key is not an opaque case id (hash: false needs one)"),
    (b"has space", "field $key is not an opaque case id (hash: false needs one)"),
    (b"\xff\xfe", "the message key is not UTF-8 text"),
])
def test_unhashed_case_ids_must_be_opaque(key, reason):
    [rejection] = SourceMapping.from_yaml(MINIMAL).convert(b'{"held_on": "2026-03-03"}', key=key, case_id_key=KEY)
    assert rejection.reason == reason


def test_from_yaml_reads_a_path_and_a_string_path(tmp_path: Path):
    path = tmp_path / "m.yaml"
    path.write_text(MINIMAL)
    assert SourceMapping.from_yaml(path).name == "minimal"
    assert SourceMapping.from_yaml(str(path)).name == "minimal"


# --- bad mapping files -----------------------------------------------------------------------------

@pytest.mark.parametrize("text,message", [
    ("name: [", "not valid YAML at line"),
    ("- a\n- b\n", "a mapping file is a YAML mapping"),
    ("name: Bad Name\nsource: s\nmode: canonical\n", "name: String should match pattern"),
    ("name: x\nsource: s\n", "mode mapped needs kind; mode mapped needs case_id"),
    ("name: x\nsource: s\nmode: canonical\nkind: status\n", "mode canonical takes no kind"),
    ("name: x\nsource: s\nmode: other\n", "mode: Input should be 'mapped' or 'canonical'"),
    (MINIMAL.replace("ehc.review.meeting_held}", "ehc.review.meeting_hold}"),
     "kind: 'ehc.review.meeting_hold' is not a canonical event type"),
    (MINIMAL + "  ehc.plan.issued: {plan_id: p}\n", "events.ehc.plan.issued: no code of kind gives this type"),
    (MINIMAL.replace("{const: ehc.review.meeting_held}", "{from: s, codes: {A: ehc.plan.issued}}")
     + "  ehc.plan.issued: {plan_idd: p}\n",
     "events.ehc.plan.issued.plan_idd: ehc.plan.issued has no data field plan_idd"),
    (MINIMAL.replace("{const: ehc.review.meeting_held}", "{from: s, codes: {A: ehc.plan.issued}}")
     + "  ehc.plan.issued: {}\n", "events.ehc.plan.issued.plan_id: required by the contract but not mapped"),
    (MINIMAL.replace("{const: ehc.review.meeting_held}", "{from: s, codes: {yes: ehc.review.meeting_held}}"),
     "a code read as true/false/null"),
    (MINIMAL.replace("{const: ehc.review.meeting_held}", "{from: s, codes: {A: x, a: y}}"),
     "code 'a' is listed twice"),
    (MINIMAL.replace("events:", "timezone: Mars/Olympus\nevents:"), "timezone: unknown time zone"),
    (MINIMAL.replace("events:", "colour: blue\nevents:"), "colour: Extra inputs are not permitted"),
    (MINIMAL.replace("{derive: [held_on]}", "{from: a, derive: [b]}"), "give exactly one of 'from'"),
    (MINIMAL.replace("ehc.review.meeting_held: {}", "ehc.review.meeting_held: {x: {from: a, const: 1}}"),
     "give exactly one of 'from' (a path in the message) or 'const'"),
    (MINIMAL + "contacts: {people: [{name: parent_name, consent: ok}]}\n"
     + "supersedes: parent_name\n", "supersedes: parent_name is a contact field"),
    (MINIMAL.replace("{derive: [held_on]}", "{derive: [email]}")
     + "contacts: {people: [{email: email, consent: ok}]}\n", "event_id: email is a contact field"),
    (MINIMAL.replace("{from: $key, hash: false}", "{from: phone, hash: false}")
     + "contacts: {people: [{phone: phone, consent: ok}]}\n", "case_id: phone is a contact field"),
])
def test_a_bad_mapping_fails_at_load_with_a_clear_error(text, message):
    with pytest.raises(MappingError) as caught:
        SourceMapping.from_yaml(text)
    assert message in str(caught.value), str(caught.value)


def test_a_contact_field_may_be_hashed_into_the_case_id():
    text = MINIMAL.replace("{from: $key, hash: false}", "{from: phone, hash: true}")
    mapping = SourceMapping.from_yaml(text + "contacts: {people: [{phone: phone, consent: ok}]}\n")
    items = mapping.convert(b'{"held_on": "2026-03-03", "phone": "07700900123"}', case_id_key=KEY)
    assert "07700900123" not in items[0].to_json().decode()


def test_a_missing_mapping_file_is_a_mapping_error(tmp_path: Path):
    with pytest.raises(MappingError, match="cannot read the mapping file"):
        SourceMapping.from_yaml(tmp_path / "absent.yaml")


def test_load_mappings_refuses_a_repeated_name(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(MINIMAL)
    (tmp_path / "b.yaml").write_text(MINIMAL)
    with pytest.raises(MappingError, match="used by another mapping"):
        load_mappings(tmp_path)


def test_contacts_carry_the_councils_case_reference_and_only_they_do():
    """Issue 9: staff see the council's own reference; it travels with the contact data only."""
    events, contacts, _ = split_items(_convert(CASEFLOW, _caseflow()))
    assert contacts[0].data.case_reference == "CF/2026/0042"
    assert all("CF/2026/0042" not in e.to_json().decode() for e in events)
    synergy = split_items(_convert(SYNERGY, _synergy("EHCP.REQ")))[1][0]
    assert synergy.data.case_reference == "SYN-004211"
