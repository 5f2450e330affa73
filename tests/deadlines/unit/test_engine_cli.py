"""``ehc deadlines compute``: JSON lines in, one JSON object per deadline out; exit 2 on bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from services.deadlines.entrypoints.cli import InputError, deadlines_app, parse_line

RUNNER = CliRunner()


def envelope(
    type_: str = "ehc.request.received", id: str = "evt-1", subject: str = "case-0001", **data: Any
) -> dict[str, Any]:
    data.setdefault("occurred_on", "2026-01-05")
    return {
        "specversion": "1.0",
        "id": id,
        "source": "cms/example/herts",
        "type": type_,
        "subject": subject,
        "time": "2026-01-05T10:00:00Z",
        "datacontenttype": "application/json",
        "data": data,
    }


def run(lines: list[str], *args: str) -> Any:
    return RUNNER.invoke(deadlines_app, ["compute", "--as-of", "2026-02-17", *args], input="\n".join(lines) + "\n")


def test_prints_one_json_object_per_deadline() -> None:
    lines = [
        json.dumps(envelope(route="request", requested_by="parent")),
        "",  # blank lines are skipped
        json.dumps(envelope("ehc.assessment.decided", id="evt-2", occurred_on="2026-02-10", decision="assess",
                            notice_sent_on="2026-02-10")),
        json.dumps(envelope(id="evt-9", subject="case-0000")),
    ]
    result = run(lines)
    assert result.exit_code == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["case_id"] for o in out] == ["case-0000"] * 3 + ["case-0001"] * 3
    first = next(o for o in out if o["deadline_id"] == "case-0001:assessment.decision:1")
    for key in ("case_id", "rule_id", "deadline_id", "due_on", "status", "legal_source", "trigger_event_id",
                "period_text", "flags", "convention", "responsible", "ruleset_version"):
        assert key in first
    assert (first["due_on"], first["status"], first["completed_on"]) == ("2026-02-16", "met", "2026-02-10")
    assert first["legal_source"] == "Regs 5(1); 4(1)"


def test_supersedes_is_read_from_the_envelope() -> None:
    corrected = envelope(id="evt-2", occurred_on="2026-01-12")
    corrected["supersedes"] = "evt-1"
    result = run([json.dumps(envelope()), json.dumps(corrected)])
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 3 and out[0]["due_on"] == "2026-02-23" and out[0]["trigger_event_id"] == "evt-2"


def _bad(change: Any) -> str:
    env = envelope(route="request")
    change(env)
    return json.dumps(env)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("{not json", "not valid JSON", id="bad JSON"),
        pytest.param("[1, 2]", "must be a JSON object", id="not an object"),
        pytest.param(_bad(lambda e: e.update(specversion="0.3")), "specversion", id="wrong specversion"),
        pytest.param(_bad(lambda e: e.update(type="ehc.unknown.thing")), "unknown event type", id="unknown type"),
        pytest.param(_bad(lambda e: e.pop("subject")), "subject is missing", id="missing subject"),
        pytest.param(_bad(lambda e: e.update(time="yesterday")), "time", id="bad time"),
        pytest.param(_bad(lambda e: e.update(time="2026-01-05T10:00:00")), "UTC offset", id="naive time"),
        pytest.param(_bad(lambda e: e["data"].update(occurred_on="2026-02-30")), "must be a real date",
                     id="impossible date"),
        pytest.param(_bad(lambda e: e["data"].update(occurred_on="5/1/2026")), "YYYY-MM-DD", id="not ISO"),
        pytest.param(_bad(lambda e: e["data"].pop("occurred_on")), "occurred_on is missing", id="no occurred_on"),
        pytest.param(json.dumps(envelope("ehc.assessment.decided", decision="assess")),
                     "data.notice_sent_on is missing", id="missing field"),
        pytest.param(json.dumps(envelope("ehc.assessment.decided", decision="maybe", notice_sent_on="2026-01-05")),
                     "must be one of", id="bad choice"),
        pytest.param(json.dumps(envelope("ehc.mediation.agreement", appealable="perhaps")), "true or false",
                     id="bad bool"),
        pytest.param(_bad(lambda e: e.update(data="x")), "data: must be a JSON object", id="data not an object"),
    ],
)
def test_invalid_input_exits_2_naming_the_line(line: str, message: str) -> None:
    result = run([json.dumps(envelope(route="request")), line])
    assert result.exit_code == 2
    assert result.stdout == ""
    err = result.stderr.strip()
    assert err.startswith("error: line 2: ") and message in err, err
    assert "\n" not in err and "Traceback" not in err


def test_bad_as_of_exits_2() -> None:
    result = RUNNER.invoke(deadlines_app, ["compute", "--as-of", "2026-13-01"], input="")
    assert result.exit_code == 2 and "--as-of" in result.stderr


def test_unknown_rule_set_exits_2() -> None:
    result = RUNNER.invoke(deadlines_app, ["compute", "--as-of", "2026-01-01", "--ruleset", "wales"], input="")
    assert result.exit_code == 2 and "wales" in result.stderr


def test_due_soon_days_option() -> None:
    result = RUNNER.invoke(
        deadlines_app, ["compute", "--as-of", "2026-01-06", "--due-soon-days", "40"],
        input=json.dumps(envelope()) + "\n",
    )
    statuses = [json.loads(line)["status"] for line in result.stdout.splitlines()]
    assert statuses == ["due_soon", "open", "open"]


def test_parse_line_keeps_its_signature_and_types() -> None:
    record = parse_line(7, json.dumps(envelope("ehc.draft_plan.issued", served_on="2026-04-21")))
    assert record.type == "ehc.draft_plan.issued" and record.case_id == "case-0001"
    assert record.data["served_on"].isoformat() == "2026-04-21" and "occurred_on" not in record.data
    assert record.recorded_at.tzinfo is not None
    with pytest.raises(InputError) as info:
        parse_line(7, "{}")
    assert info.value.line_no == 7 and str(info.value).startswith("line 7:")


def test_bad_utf8_exits_2_naming_the_line() -> None:
    good = json.dumps(envelope()).encode()
    result = RUNNER.invoke(deadlines_app, ["compute", "--as-of", "2026-01-06"], input=good + b"\n\xff\xfe\n")
    assert result.exit_code == 2 and "line 2: not valid UTF-8" in result.stderr



def test_bad_utf8_inside_a_string_exits_2_naming_the_line() -> None:
    good = json.dumps(envelope()).encode()
    for field in (b'"source": "', b'"subject": "'):  # msgspec leaves a string's bytes to Python
        bad = good.replace(field, field + b"\xff", 1)
        result = RUNNER.invoke(deadlines_app, ["compute", "--as-of", "2026-01-06"], input=good + b"\n" + bad + b"\n")
        assert result.exit_code == 2 and result.stderr == "error: line 2: not valid UTF-8\n", result.output

def test_missing_calendar_files_exit_2(tmp_path: Any) -> None:
    for option in ("--bank-holidays", "--terms"):
        result = RUNNER.invoke(
            deadlines_app, ["compute", "--as-of", "2026-01-06", option, str(tmp_path / "nope.yaml")], input=""
        )
        assert result.exit_code == 2 and "nope.yaml" in result.stderr, option


def test_calendar_options_are_used(tmp_path: Any) -> None:
    overrides = tmp_path / "bank.yaml"
    overrides.write_text("extra: [2026-02-16]\n")
    refused = envelope("ehc.assessment.decided", id="evt-2", occurred_on="2025-12-16", decision="refuse",
                       notice_sent_on="2025-12-16")
    result = RUNNER.invoke(
        deadlines_app, ["compute", "--as-of", "2026-01-06", "--bank-holidays", str(overrides)],
        input=json.dumps(envelope(occurred_on="2025-11-03")) + "\n" + json.dumps(refused) + "\n",
    )
    appeal = next(json.loads(x) for x in result.stdout.splitlines() if '"appeal.deadline"' in x)
    assert appeal["due_on"] == "2026-02-17"  # 16 Feb declared a holiday: C9 moves to the next day


@pytest.mark.parametrize("occurred_on", ["9999-12-30", "9999-12-31", "9999-11-20"])
def test_a_date_at_the_end_of_the_calendar_is_an_error_on_its_line_not_a_traceback(occurred_on: str) -> None:
    lines = [json.dumps(envelope(id="evt-0", subject="case-ok")),
             json.dumps(envelope(route="request", requested_by="parent", occurred_on=occurred_on))]
    result = run(lines)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: line 2: ") and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_data_that_cannot_be_true_is_reported_on_stderr() -> None:
    # Issue 11 item 5: a decision dated before its request; the deadlines are still printed.
    lines = [
        json.dumps(envelope("ehc.assessment.decided", id="evt-2", occurred_on="2026-01-02", decision="assess",
                            notice_sent_on="2026-01-02")),
        json.dumps(envelope(route="request", requested_by="parent")),
    ]
    result = run(lines)
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 3
    assert "warning: case case-0001: decision_before_request: " in result.stderr
