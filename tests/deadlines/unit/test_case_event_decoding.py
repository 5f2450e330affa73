"""The deadlines service decodes a consumed case event by the compute command's msgspec Structs
(issue 12), with pydantic only for what they doubt. Nothing may move: what the fast path accepts is
stored exactly as the pydantic route stores it (``event_row``: the same values, the data's keys in
the same order), and whatever it refuses is pydantic's to accept or to refuse, with the same
exception, so the same parking reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.deadlines.adapters.records import ConsumedCaseEvent, decode_case_event
from services.deadlines.service_layer.handlers import event_row
from shared.consumer import describe_failure
from shared.contracts import parse_case_event
from tests.deadlines.unit.test_compute_cli_equivalence import _event, corpus

LINES = [line for line in corpus(60, seed=12) if line.strip()]


def _typed(row: dict[str, Any]) -> list[tuple[str, type, Any]]:
    """A row's values with their types, and the data's keys in order (the stored JSON's text)."""
    return [*((k, type(v), v) for k, v in row.items() if k != "data"),
            ("data", list, json.dumps(row["data"]))]  # type: ignore[list-item]


def test_the_fast_path_takes_the_canonical_events_and_stores_what_pydantic_stores() -> None:
    types_seen = set()
    for line in LINES:
        decoded = decode_case_event(line.encode())
        assert isinstance(decoded, ConsumedCaseEvent), line  # the fast path took it
        reference = parse_case_event(line.encode())
        assert (decoded.id, decoded.subject) == (reference.id, reference.subject)
        assert _typed(event_row(decoded)) == _typed(event_row(reference))
        types_seen.add(reference.type)
    assert len(types_seen) >= 10  # the corpus covers the event types, corrections and exceptions


def _broken() -> list[bytes]:
    good = json.loads(LINES[12])
    cases = [
        {**good, "data": {**good["data"], "occurred_on": "2026-02-30"}},  # no such day
        {**good, "data": {**good["data"], "unexpected": 1}},  # a field the contract does not have
        {**good, "id": "not an id!"},  # fails the id's pattern
        {**good, "subject": ""},  # empty case id
        {**good, "type": "ehc.no.such.type"},
        {key: value for key, value in good.items() if key != "source"},  # missing the source
        {**good, "time": "yesterday"},
        {**good, "specversion": "0.3"},
        _event("ehc.exception.recorded", "exc-2", "case-9", exception="E9", rule_ids=["plan.final"]),
    ]
    return [json.dumps(c).encode() for c in cases] + [b"{not json", b"\xff\xfe", b"[]", b"", b'{"id": 1}']


@pytest.mark.parametrize("value", _broken())
def test_what_the_fast_path_refuses_pydantic_refuses_with_the_same_reason(value: bytes) -> None:
    with pytest.raises(Exception) as reference:  # noqa: PT011 - pydantic's own error, whatever it is
        parse_case_event(value)
    with pytest.raises(type(reference.value)) as decoded:
        decode_case_event(value)
    assert describe_failure(decoded.value) == describe_failure(reference.value)


def test_a_line_the_fast_path_doubts_but_pydantic_accepts_is_pydantics() -> None:
    """Pydantic accepts a time in another spelling the fast path leaves to it: the same row."""
    good = json.loads(LINES[3])
    value = json.dumps({**good, "time": good["time"].replace("T", " ")}).encode()
    decoded = decode_case_event(value)
    assert not isinstance(decoded, ConsumedCaseEvent)
    assert event_row(decoded) == event_row(parse_case_event(value))
