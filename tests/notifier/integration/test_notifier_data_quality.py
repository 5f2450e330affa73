"""Issue 11 item 5: the caseworker's daily digest lists the data-quality warnings of their cases
("Data to check"), kept from the ``case.data_quality`` events of ``ehc.deadline-events``, against
PostgreSQL. Working days: Monday to Friday (the test's own calendar)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import pytest

from shared.contracts import parse_case_event
from shared.contracts.deadline_events import CaseDataQualityEvent
from tests.notifier.helpers import FakeClock, WeekdaysAndHolidays, deadline_event, london
from tests.notifier.integration.conftest import CASEWORKER

pytestmark = pytest.mark.infra
CALENDAR = WeekdaysAndHolidays()
REVIEW = {"code": "review_decision_before_meeting", "severity": "warning", "event_ids": ["rq-d", "rq-m"],
          "message": "the review decision is dated before the review meeting it follows (2026-03-01 before "
                     "2026-03-10)"}


def quality_event(case_id: str, *warnings: dict[str, Any], time: datetime, caseworker_id: str | None = "cw-1",
                  event_id: str | None = None) -> CaseDataQualityEvent:
    return CaseDataQualityEvent.model_validate({
        "id": event_id or str(uuid.uuid4()), "source": "ehc/deadlines", "subject": case_id,
        "time": time.isoformat(), "type": "case.data_quality",
        "data": {"case_id": case_id, "warnings": list(warnings), "team_id": "team-n",
                 "caseworker_id": caseworker_id}})


async def drain(built) -> None:  # type: ignore[no-untyped-def]
    while await built.service.send_due():
        pass


async def test_the_daily_digest_lists_the_data_to_check(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 9, 16, 0)), calendar=CALENDAR)
    service = built.service
    cleared_first = quality_event("case-fixed", REVIEW, time=london(2026, 3, 9, 9))
    stale = quality_event("case-q", time=london(2026, 3, 9, 8))  # older than the warning below
    await service.handle_data_quality_events([
        quality_event("case-q", REVIEW, time=london(2026, 3, 9, 10)),
        cleared_first,
        quality_event("case-fixed", time=london(2026, 3, 9, 11)),  # corrected since: nothing to check
        quality_event("case-other", REVIEW, time=london(2026, 3, 9, 10), caseworker_id="cw-2"),
    ])
    await service.handle_data_quality_events([stale, cleared_first])  # late and redelivered: change nothing
    await service.handle_deadline_events([
        deadline_event("deadline.opened", "case-a", due_on=date(2026, 3, 12), time=london(2026, 2, 1))])

    built.clock.set(london(2026, 3, 10, 8, 0))
    assert await service.run_morning() == 1
    await drain(built)
    digest = built.email.to(CASEWORKER[1])[-1]
    assert digest.template == "caseworker_daily_digest"
    assert digest.subject.endswith(", 1 case with data to check")
    body = digest.body
    assert "Data to check (1 case):" in body
    assert ("- Case case-q: the review decision is dated before the review meeting it follows "
            "(2026-03-01 before 2026-03-10).") in body
    assert "case-fixed" not in body and "case-other" not in body  # cleared; someone else's case
    assert "Case case-a: Decide whether to assess" in body


async def test_data_to_check_alone_is_worth_a_digest(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 8, 0)), calendar=CALENDAR)
    await built.service.handle_data_quality_events([quality_event("case-q", REVIEW, time=london(2026, 3, 9))])
    assert await built.service.run_morning() == 1
    await drain(built)
    [digest] = built.email.to(CASEWORKER[1])
    assert "Data to check (1 case):" in digest.body and "Case case-q:" in digest.body


async def test_data_to_check_follows_the_case_to_its_new_caseworker(make_notifier) -> None:
    built = await make_notifier(clock=FakeClock(london(2026, 3, 10, 8, 0)), calendar=CALENDAR,
                                caseworker_directory={CASEWORKER[0]: CASEWORKER[1], "cw-2": "kim@council.example"})
    await built.service.handle_data_quality_events([quality_event("case-q", REVIEW, time=london(2026, 3, 9))])
    assigned = parse_case_event({"id": "as-2", "source": "cms/test", "type": "ehc.case.assigned", "subject": "case-q",
                                 "time": "2026-03-09T12:00:00Z",
                                 "data": {"occurred_on": "2026-03-09", "caseworker_id": "cw-2", "team_id": "team-s"}})
    assert await built.service.handle_case_events([assigned]) == 1
    assert await built.service.run_morning() == 1
    await drain(built)
    assert built.email.to(CASEWORKER[1]) == []
    [digest] = built.email.to("kim@council.example")
    assert "Case case-q:" in digest.body
