"""`ehc deadlines compute` reads with a fast path and writes with orjson (issue 12 item 1); its output
must stay what the straightforward route gives: every line through the shared pydantic contracts,
``compute_cases``, ``json.dumps(Deadline.to_dict())`` (the oracle below), on a seeded corpus of
synthetic cases in recorded order (cases interleaved). And whatever the fast reader accepts, the
contracts accept with the same record; whatever they refuse, it leaves to them."""

from __future__ import annotations

import json
import random
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from services.cli import app
from services.deadlines.adapters.event_lines import contract_record, fast_record
from services.deadlines.adapters.records import record_to_json
from services.deadlines.domain import (
    TermCalendar,
    WorkingDayCalendar,
    compute_cases,
    data_quality,
    load_ruleset_history,
)
from services.deadlines.domain.synthetic import synthetic_case

AS_OF = "2026-11-02"


def corpus(cases: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    events = sorted((e for n in range(cases) for e in synthetic_case(n, rng)), key=lambda e: e.recorded_at)
    lines = [json.dumps(record_to_json(e)) for e in events]
    # a correction (supersedes), a retraction and an exception on a few cases, and a blank line
    lines.append(json.dumps({**json.loads(lines[3]), "id": "fix-1", "supersedes": json.loads(lines[3])["id"]}))
    lines.append(json.dumps(_event("ehc.event.retracted", "retract-1", json.loads(lines[7])["subject"],
                                   retracts=json.loads(lines[7])["id"])))
    lines.append(json.dumps(_event("ehc.exception.recorded", "exc-1", json.loads(lines[9])["subject"],
                                   exception="E3", rule_ids=["plan.final"], reason="illness")))
    lines.insert(5, "")
    return lines


def _event(type_: str, id_: str, case_id: str, **data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": id_, "source": "cms/test", "type": type_, "subject": case_id,
            "time": "2024-03-01T10:00:00+01:00", "data": {"occurred_on": "2024-03-01", **data}}


def oracle(lines: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The straightforward route: pydantic per line, compute_cases, json.dumps of to_dict."""
    events = [contract_record(line) for line in lines if line.strip()]
    deadlines = compute_cases(events, load_ruleset_history("england"), WorkingDayCalendar(), date.fromisoformat(AS_OF),
                              terms=TermCalendar.from_file())
    out = [json.loads(json.dumps(d.to_dict(), ensure_ascii=False)) for d in deadlines]
    by_case: dict[str, list[Any]] = {}
    for e in events:
        by_case.setdefault(e.case_id, []).append(e)
    warnings = [f"{w.severity}: case {c}: {w.code}: {w.message}"
                for c in sorted(by_case) for w in data_quality(by_case[c])]
    return out, warnings


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_output_is_the_straightforward_routes(workers: str) -> None:
    lines = corpus(400, seed=12)
    result = CliRunner().invoke(app, ["deadlines", "compute", "--as-of", AS_OF, "--workers", workers],
                                input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.stderr
    expected, warnings = oracle(lines)
    assert len(expected) > 4000
    assert [json.loads(line) for line in result.stdout.splitlines()] == expected
    assert result.stderr.splitlines() == warnings


def test_a_bad_line_is_named_as_before_and_nothing_is_written() -> None:
    lines = corpus(20, seed=3)
    broken = json.loads(lines[12])
    broken["data"]["occurred_on"] = "2026-02-30"
    lines[12] = json.dumps(broken)
    result = CliRunner().invoke(app, ["deadlines", "compute", "--as-of", AS_OF], input="\n".join(lines) + "\n")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == "error: line 13: data.occurred_on: must be a real date as YYYY-MM-DD\n"


# --- the fast reader against the contracts -------------------------------------------------------

ODD_VALUES: list[Any] = [None, "", "x", 0, 1, 1.5, True, False, [], ["a", 1], {}, "2026-02-30", "2026-1-5",
                         "2026-01-05",
                         "2026-01-05T10:00:00", "2026-01-05T10:00:00Z", "2026-01-05T10:00:00.1234567+01:00",
                         "2026-01-05t10:00:00z", "2026-01-05T24:00:00Z", "2026-01-05T10:00:60Z",
                         "2026-01-05T10:00:00+23:59", "2026-01-05 10:00:00Z", "0000-01-01", "9999-12-31", " a",
                         "a\n", "a b", "é", "a" * 200, "a" * 201, "x" * 501, "123", "12a", "١٢٣", "assess",
                         "school", "E3", "amend", "true", "1.0", "2", "application/json", "plan.final"]


def _base_events() -> list[dict[str, Any]]:
    rng = random.Random(5)
    seen: dict[str, dict[str, Any]] = {}
    for n in range(300):
        for e in synthetic_case(n, rng):
            seen.setdefault(e.type, record_to_json(e))
    extra = [("ehc.plan.transfer_out", {"move_on": "2024-04-01", "aware_on": "2024-03-01", "to_la": "123"}),
             ("ehc.plan.transferred_in", {"transfer_on": "2024-04-01", "plan_made_on": "2023-01-01", "from_la": "456",
                                          "last_reviewed_on": None}),
             ("ehc.duty.done", {"rule_id": "transfer.send_plan", "instance": "1"}),
             ("ehc.case.assigned", {"caseworker_id": "cw-1", "team_id": "t-1", "area_id": "a-1"}),
             ("ehc.exception.withdrawn", {"exception_event_id": "exc-1"}),
             ("ehc.family.message", {"topic": "question", "message_id": "m-1"}),
             ("ehc.reassessment.decided", {"decision": "refuse", "notice_sent_on": "2024-03-02"}),
             ("ehc.mediation.agreement", {"appealable": True})]
    for type_, data in extra:
        seen.setdefault(type_, _event(type_, "e-1", "case-1", **data))
    return list(seen.values())


def _mutations(event: dict[str, Any]) -> list[Any]:
    out: list[Any] = [event, [event], "[]", "null", '{"type": ["x"]}', {**event, "extra": 1},
                      {**event, "data": {**event["data"], "extra": 1}}, {**event, "data": None}]
    for key in event:
        out.append({k: v for k, v in event.items() if k != key})
        out.extend({**event, key: value} for value in ODD_VALUES)
    for key in event["data"]:
        out.append({**event, "data": {k: v for k, v in event["data"].items() if k != key}})
        out.extend({**event, "data": {**event["data"], key: value}} for value in ODD_VALUES)
    return out + _spellings(event)


def _spellings(event: dict[str, Any]) -> list[str]:
    """The same event (or nearly) spelled oddly as JSON: what a decoder reads differently, if anything."""
    text = json.dumps(event)
    body = text[1:-1]
    first_data = next(iter(event["data"]))
    return [
        f' {text}\r\n', text + " x", text + ",", text[:-1], "{" + body + ', "id": "other-1"}',
        '{"id": "", ' + body + "}", "{" + body + ', "id": ""}', '{"id": 1, ' + body + "}",
        "{" + body + ', "type": "ehc.nothing"}', '{"type": "ehc.nothing", ' + body + "}",
        text.replace('"id": "', '"id": "\\u0061', 1), text.replace('"source": "', '"source": "\\ud800', 1),
        text.replace('"source": "', '"source": "\\u00e9', 1), text.replace('"subject": "', '"subject": "\\n', 1),
        text.replace('"data": {', '"data": {"' + first_data + '": null, ', 1),
        text.replace('"specversion": "1.0"', '"specversion": 1.0', 1),
        json.dumps({**event, "supersedes": None}), json.dumps({**event, "supersedes": event["id"]}),
        json.dumps({**event, "time": "2026-01-05T10:00:00.123456+01:00"}),
        json.dumps({"type": event["type"], **{k: v for k, v in event.items() if k != "type"}}),
        json.dumps(event, ensure_ascii=False).encode("utf-8").decode("latin-1"),
    ]


@pytest.mark.parametrize("event", _base_events(), ids=lambda e: e["type"])
def test_the_fast_reader_accepts_only_what_the_contracts_accept_and_reads_it_alike(event: dict[str, Any]) -> None:
    accepted = 0
    for mutated in _mutations(event):
        line = mutated if isinstance(mutated, str) else json.dumps(mutated)
        fast = fast_record(line.encode())
        try:
            expected = contract_record(line)
        except ValidationError:
            assert fast is None, line
            continue
        if fast is None:
            continue
        accepted += 1
        assert fast == expected, line
        assert [type(v) for v in fast.data.values()] == [type(v) for v in expected.data.values()], line
        assert list(fast.data) == list(expected.data), line
        assert fast.recorded_at.utcoffset() == expected.recorded_at.utcoffset(), line
    assert accepted > 1  # the event itself at least, and some valid variants
