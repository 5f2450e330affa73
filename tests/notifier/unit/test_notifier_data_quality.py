"""Issue 11 item 5 in the notifier, without infrastructure: the case.data_quality contract on
ehc.deadline-events, the "Data to check" list and its section of the daily digest (en and cy)."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from services.notifier.domain.digests import data_to_check_items
from services.notifier.domain.messages import render
from shared.contracts import CaseDataQualityEvent, DeadlineEvent, parse_deadline_event, parse_deadline_topic_event

QUALITY = {"id": "dq-1", "source": "ehc/deadlines", "subject": "case-q", "time": "2026-03-09T10:00:00Z",
           "type": "case.data_quality",
           "data": {"case_id": "case-q", "caseworker_id": "cw-1", "team_id": "team-n", "warnings": [
               {"code": "review_decision_before_meeting", "severity": "warning", "event_ids": ["rq-d", "rq-m"],
                "message": "the review decision is dated before the review meeting it follows"}]}}
DEADLINE = {"id": "dl-1", "source": "ehc/deadlines", "subject": "case-q", "time": "2026-03-09T10:00:00Z",
            "type": "deadline.opened",
            "data": {"case_id": "case-q", "deadline_id": "case-q:review.decision:1", "rule_id": "review.decision",
                     "due_on": "2026-03-30", "status": "open", "responsible": "la", "trigger_event_id": "rq-m",
                     "legal_source": "Regs 20(10)", "ruleset_version": "england-2014.1"}}


def test_the_topic_carries_deadline_events_and_data_quality_events() -> None:
    assert isinstance(parse_deadline_topic_event(DEADLINE), DeadlineEvent)
    quality = parse_deadline_topic_event(str(CaseDataQualityEvent.model_validate(QUALITY).to_json(), "utf-8"))
    assert isinstance(quality, CaseDataQualityEvent)
    assert quality.data.warnings[0].event_ids == ["rq-d", "rq-m"]
    with pytest.raises(ValidationError):  # the deadline event contract itself is unchanged
        parse_deadline_event(QUALITY)
    with pytest.raises(ValidationError):
        parse_deadline_topic_event({**QUALITY, "data": {**QUALITY["data"], "warnings": [
            {"code": "x", "severity": "fatal", "message": "m"}]}})


def test_data_to_check_lists_each_case_once_errors_first() -> None:
    items = data_to_check_items([
        ("case-b", [{"code": "b", "severity": "warning", "message": "a warning"},
                    {"code": "deadlines_not_computed", "severity": "error", "message": "an error"}]),
        ("case-a", [{"code": "a", "severity": "warning", "message": "another"}]),
    ], "https://ehc.example/cases")
    assert [(i["case_id"], i["warnings"]) for i in items] == [("case-a", ["another"]),
                                                              ("case-b", ["an error", "a warning"])]
    assert items[0]["case_url"] == "https://ehc.example/cases/case-a"


@pytest.mark.parametrize(("language", "heading", "subject"), [
    ("en", "Data to check (2 cases):", "2 cases with data to check"),
    ("cy", "Data i'w gwirio (2 achos):", "2 achos â data i'w gwirio"),
])
def test_the_digest_has_a_data_to_check_section(language: str, heading: str, subject: str) -> None:
    checks = data_to_check_items([("case-q", QUALITY["data"]["warnings"]),  # type: ignore[index]
                                  ("case-r", [{"code": "c", "severity": "warning", "message": "a second"}])],
                                 "https://ehc.example/cases")
    digest = render("caseworker_daily_digest", language, "email",
                    {"digest_date": date(2026, 3, 10), "overdue": [], "due_soon": [], "data_to_check": checks})
    assert heading in digest.body and digest.subject.endswith(subject)
    assert ("the review decision is dated before the review meeting it follows. "
            "https://ehc.example/cases/case-q") in digest.body
    without = render("caseworker_daily_digest", language, "email",
                     {"digest_date": date(2026, 3, 10), "overdue": [], "due_soon": []})
    assert heading not in without.body and subject not in without.subject
