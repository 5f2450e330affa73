"""Data that cannot be true, against real Kafka and PostgreSQL.

Issue 13: the engine never crashes on valid input: an ehc.plan.issued dated 2099 (its annual
review falls beyond the working-day calendar's years) is a data-quality problem on that case,
recorded and shown by the read API; every other case in the same batches gets its deadlines and
nothing is parked.

Issue 11 item 5: a case's data-quality warnings are stored when it is recomputed, shown on the
case, and published as ``case.data_quality`` on ``ehc.deadline-events`` when (and only when) they
change; correcting the data clears them with a new event."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import select, update

from services.deadlines.adapters import tables
from services.deadlines.bootstrap import bootstrap
from shared.settings import Settings
from tests.conftest import eventually
from tests.deadlines.e2e.test_deadlines_service import MovableClock, deadline_events, publish
from tests.e2e.harness import case_event, running

pytestmark = pytest.mark.infra
ADMIN = {"Authorization": "Bearer tok-admin"}


async def test_a_date_beyond_the_calendar_is_a_problem_on_its_case_not_a_crash(isolated: Settings, producer) -> None:
    settings = isolated.model_copy(update={"deadlines": isolated.deadlines.model_copy(
        update={"api_tokens": {"tok-admin": "admin"}})})
    app = bootstrap(settings)
    cases = [f"case-dq-{i}" for i in range(12)]
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app.api), base_url="http://d") as api:
        for i, case in enumerate(cases):
            await publish(producer, settings, case_event(f"{case}-r", case, "ehc.request.received", date(2026, 3, 2),
                                                         route="request", requested_by="parent"), key=case.encode())
            if i == 3:
                await publish(producer, settings, case_event("far-1", "case-far", "ehc.plan.issued", date(2099, 6, 1),
                                                             plan_id="p-1"), key=b"case-far")

        async def all_computed() -> bool:
            r = await api.get("/v1/deadlines", headers=ADMIN, params={"page_size": 500})
            return {d["case_id"] for d in r.json()["items"]} >= set(cases)

        await eventually(all_computed, 60, "every good case got its deadlines")

        async def problem_shown() -> bool:
            r = await api.get("/v1/problems", headers=ADMIN)
            return r.status_code == 200 and [p["case_id"] for p in r.json()] == ["case-far"]

        await eventually(problem_shown, 30, "the case's data-quality problem shown")
        problem = (await api.get("/v1/problems", headers=ADMIN, params={"case_id": "case-far"})).json()[0]
        assert "far-1: occurred_on 2099-06-01 is outside the years" in problem["problem"]
        assert (await api.get("/v1/problems")).status_code == 401
        assert await app.dead_letters.held_case_count() == 0  # type: ignore[union-attr]

        # The problem surfaces like any data-quality warning: on the case's view and as an event.
        view = (await api.get("/v1/cases/case-far/data-quality", headers=ADMIN)).json()
        assert view["problem"] == problem["problem"]
        assert [(w["code"], w["severity"]) for w in view["warnings"]] == [("deadlines_not_computed", "error")]
        published = await deadline_events(settings, lambda es: any(e["type"] == "case.data_quality" for e in es))
        quality = [e for e in published if e["type"] == "case.data_quality"]
        assert [e["subject"] for e in quality] == ["case-far"]  # the good cases have nothing to check
        assert quality[0]["data"]["warnings"] == view["warnings"]


def quality_events(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "case.data_quality"]


async def test_warnings_are_stored_published_when_they_change_and_cleared_by_a_correction(
        isolated: Settings, producer) -> None:
    settings = isolated.model_copy(update={"deadlines": isolated.deadlines.model_copy(
        update={"api_tokens": {"tok-admin": "admin"}})})
    app = bootstrap(settings, clock=MovableClock(datetime(2028, 3, 20, 12, tzinfo=UTC)))
    case = "case-rq"
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app.api), base_url="http://d") as api:
        await publish(producer, settings,
                      case_event("rq-a", case, "ehc.case.assigned", "2027-05-10", caseworker_id="cw-1",
                                 team_id="team-a"),
                      case_event("rq-p", case, "ehc.plan.issued", "2027-05-10", plan_id="p-1"),
                      case_event("rq-m", case, "ehc.review.meeting_held", "2028-03-10"),
                      case_event("rq-d", case, "ehc.review.decision_issued", "2028-03-01", outcome="maintain"),
                      key=case.encode())
        first = quality_events(await deadline_events(settings, lambda es: len(quality_events(es)) >= 1))
        assert len(first) == 1
        event = first[0]
        assert event["subject"] == case and event["data"]["case_id"] == case
        assert (event["data"]["team_id"], event["data"]["caseworker_id"]) == ("team-a", "cw-1")
        [warning] = event["data"]["warnings"]
        assert (warning["code"], warning["severity"], warning["event_ids"]) == (
            "review_decision_before_meeting", "warning", ["rq-d", "rq-m"])
        assert "review decision is dated before the review meeting" in warning["message"]

        async with app.sessions() as session:  # stored on the case, not only computed on read
            stored = await session.scalar(select(tables.cases.c.data_quality).where(tables.cases.c.case_id == case))
        assert stored == event["data"]["warnings"]
        view = (await api.get(f"/v1/cases/{case}/data-quality", headers=ADMIN)).json()
        assert view == {"case_id": case, "problem": None, "warnings": event["data"]["warnings"]}
        async with app.sessions() as session, session.begin():  # a case not recomputed since the upgrade
            await session.execute(update(tables.cases).where(tables.cases.c.case_id == case).values(data_quality=None))
        assert (await api.get(f"/v1/cases/{case}/data-quality", headers=ADMIN)).json() == view  # computed on read
        async with app.sessions() as session, session.begin():
            await session.execute(update(tables.cases).where(tables.cases.c.case_id == case)
                                  .values(data_quality=event["data"]["warnings"]))

        # Recomputing with nothing changed publishes nothing.
        again = await app.service.recompute_cases([case])
        assert again.published == {}

        # The council corrects the decision's date: the warning goes, and a new event says so.
        corrected = json.loads(case_event("rq-d2", case, "ehc.review.decision_issued", "2028-03-12",
                                          outcome="maintain"))
        corrected["supersedes"] = "rq-d"
        await publish(producer, settings, json.dumps(corrected).encode(), key=case.encode())
        events = quality_events(await deadline_events(settings, lambda es: len(quality_events(es)) >= 2))
        assert len(events) == 2 and events[1]["id"] != events[0]["id"]
        assert events[1]["data"]["warnings"] == []
        assert (await api.get(f"/v1/cases/{case}/data-quality", headers=ADMIN)).json()["warnings"] == []
        async with app.sessions() as session:
            assert await session.scalar(select(tables.cases.c.data_quality)
                                        .where(tables.cases.c.case_id == case)) == []
