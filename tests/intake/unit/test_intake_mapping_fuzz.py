"""Property-based fuzzing of the source mappings: whatever arrives, conversion never raises and every
input ends as canonical events (plus contacts) or as exactly one rejection that keeps the bytes."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.domain.mapping import SourceMapping, load_mappings
from services.intake.domain.results import Rejection
from shared.contracts import CaseEventEnvelope, ContactsUpdated, parse_case_event

KEY = b"fuzz-case-id-key-0123456789abcdef"
MAPPINGS = load_mappings()
CASEFLOW, SYNERGY, CANONICAL = MAPPINGS["caseflow"], MAPPINGS["synergy-like"], MAPPINGS["canonical"]
FUZZ = settings(max_examples=int(os.environ.get("EHC_FUZZ_EXAMPLES", "250")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
PRIVATE = ("Jolene Testparent", "jolene.testparent@example.org", "07700 900123")

CASEFLOW_MESSAGE = {
    "msg_id": "CF-1", "case_ref": "CF/1", "status": "REQ_RCVD", "status_date": "16/02/2026",
    "recorded_at": "16/02/2026 10:12", "notice_date": "17/02/2026", "requested_by": "PAR", "advice_ref": "A-1",
    "advice_from": "EP", "institution_urn": "117001", "plan_ref": "P-1", "meeting_date": "03/03/2026",
    "review_outcome": "MAINTAIN", "transfer_date": "01/09/2026", "transfer_type": "POST16", "exception_code": "E3",
    "exception_rules": "plan.final", "caseworker": "cw-1", "team": "t-1", "close_reason": "MOVED",
    "parent_name": PRIVATE[0], "parent_email": PRIVATE[1], "parent_mobile": PRIVATE[2], "contact_consent": "Y",
}
SYNERGY_MESSAGE = {
    "header": {"msgId": "m-1", "sentAt": "2026-02-16T10:12:00Z"},
    "case": {"ref": "SYN-1"},
    "activity": {"code": "EHCP.REQ", "effectiveDate": "2026-02-16", "details": {
        "decision": "N", "planRef": "P-1", "outcome": "M", "meetingDate": "2026-03-03", "adviceId": "a-1",
        "providerType": "EP", "institutionUrn": "117001", "transferDate": "2026-09-01", "transferKind": "SCHOOL",
        "officerId": "cw-1", "teamId": "t-1", "reason": "OTHER", "exception": "E1", "orderType": "ASSESS",
        "moveDate": "2026-04-01", "awareDate": "2026-03-01", "otherLa": "202", "planMadeDate": "2024-01-01",
        "exceptionMsgId": "m-0", "retractsMsgId": "m-0"}},
    "contacts": [{"fullName": PRIVATE[0], "email": PRIVATE[1], "mobile": PRIVATE[2], "consent": True}],
}
CANONICAL_MESSAGE = {
    "specversion": "1.0", "id": "evt-1", "source": "cms/x", "type": "ehc.assessment.decided",
    "subject": "c-0123456789abcdef01234567", "time": "2026-01-05T10:00:00Z",
    "data": {"occurred_on": "2026-01-05", "decision": "assess", "notice_sent_on": "2026-01-06"},
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Texts that look like what councils send, so mutations get past the first checks more often.
plausible_text = st.one_of(
    st.sampled_from(["", " ", "Y", "N", "1", "0", "yes", "E3", "E9", "31/02/2026", "29/02/2024", "2026-02-16",
                     "2026-02-30", "16/02/2026 25:00", "A919000000001", "bad id", "ÿ", "\x00", "\ud800"]),
    st.sampled_from(sorted({c.upper() for m in (CASEFLOW, SYNERGY) for c in m.kind.codes})),
    st.text(max_size=20),
)


def _paths(message: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(message, dict):
        for key, value in message.items():
            found.append((*prefix, key))
            found += _paths(value, (*prefix, key))
    elif isinstance(message, list):
        for i, value in enumerate(message):
            found.append((*prefix, i))
            found += _paths(value, (*prefix, i))
    return found


def _set(message: Any, path: tuple[Any, ...], value: Any, delete: bool) -> None:
    *parents, last = path
    node = message
    for part in parents:
        node = node[part]
    if isinstance(node, list):
        node[last] = value
    elif delete:
        node.pop(last, None)
    else:
        node[last] = value


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    message = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(message)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        value = draw(st.one_of(plausible_text, json_values))
        _set(message, path, value, delete=draw(st.booleans()))
    text = json.dumps(message)
    return text.encode("utf-8", errors="surrogatepass")


def _check(mapping: SourceMapping, raw: bytes, key: bytes | None = None) -> list[Any]:
    items = mapping.convert(raw, key=key, case_id_key=KEY)
    assert items, "every input must give something"
    for item in items:
        assert isinstance(item, CaseEventEnvelope | ContactsUpdated | Rejection)
    if isinstance(items[0], Rejection):
        assert len(items) == 1, "a rejected message gives exactly one rejection"
    else:
        assert isinstance(items[0], CaseEventEnvelope | ContactsUpdated)
        assert len(items) <= 2
    for item in items:
        if isinstance(item, Rejection):
            assert item.original == raw
            assert item.reason and "\n" not in item.reason and len(item.reason) <= 300
            assert not item.reason.startswith("internal error"), item.reason
            for private in PRIVATE:
                assert private not in item.reason
        elif isinstance(item, ContactsUpdated):
            assert mapping.mode == "canonical" or item is items[1]
        else:
            assert parse_case_event(item.to_json()) == item
            if mapping.mode == "mapped":
                text = item.to_json().decode()
                for private in PRIVATE:
                    assert private not in text, "contact data must never be in a case event"
    return items


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes(raw):
    for mapping in (CASEFLOW, SYNERGY, CANONICAL):
        _check(mapping, raw)


@FUZZ
@given(json_values)
def test_arbitrary_json(value):
    raw = json.dumps(value).encode()
    for mapping in (CASEFLOW, SYNERGY, CANONICAL):
        _check(mapping, raw)


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(CASEFLOW_MESSAGE)), plausible_text | json_values, max_size=12))
def test_objects_with_caseflow_field_names(message):
    _check(CASEFLOW, json.dumps(message).encode("utf-8", errors="surrogatepass"))


@FUZZ
@given(mutated(CASEFLOW_MESSAGE))
def test_mutated_caseflow_messages(raw):
    _check(CASEFLOW, raw)


@FUZZ
@given(mutated(SYNERGY_MESSAGE))
def test_mutated_synergy_like_messages(raw):
    _check(SYNERGY, raw)


@FUZZ
@given(mutated(CANONICAL_MESSAGE))
def test_mutated_canonical_messages(raw):
    _check(CANONICAL, raw)


@FUZZ
@given(mutated(CASEFLOW_MESSAGE), st.binary(max_size=3))
def test_truncated_and_padded_messages(raw, junk):
    for cut in (raw[: len(raw) // 2], raw + junk, junk + raw):
        _check(CASEFLOW, cut)


@FUZZ
@given(st.one_of(st.none(), st.binary(max_size=20), st.text(max_size=20).map(str.encode)))
def test_message_keys_do_not_break_conversion(key):
    mapping = SourceMapping.from_yaml(
        "name: k\nsource: cms/k\nkind: {const: ehc.review.meeting_held}\ncase_id: {from: $key, hash: false}\n"
        "event_id: {derive: [d]}\ndefaults: {occurred_on: d}\nevents: {ehc.review.meeting_held: {}}\n")
    _check(mapping, b'{"d": "2026-01-05"}', key=key)
