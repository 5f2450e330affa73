"""The deadlines read API's case views (issue 10, for the web front): one row per case with its next
due date and counts, a case's history, counts by team and caseworker, the 20-week figures; each
within the token's scope."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest

from services.deadlines.bootstrap import bootstrap
from services.deadlines.entrypoints.scheduler import fire_all_due
from shared.settings import Settings
from tests.conftest import eventually
from tests.deadlines.e2e.test_deadlines_api import auth
from tests.deadlines.e2e.test_deadlines_service import MovableClock, publish
from tests.e2e.harness import case_event, running

pytestmark = pytest.mark.infra
TOKENS = {"tok-admin": "admin", "tok-mgr-a": "manager:team-a", "tok-cw-1": "caseworker:cw-1"}


async def test_case_views_within_scope(isolated: Settings, producer) -> None:
    settings = isolated.model_copy(update={"deadlines": isolated.deadlines.model_copy(update={"api_tokens": TOKENS})})
    app = bootstrap(settings, clock=MovableClock(datetime(2026, 3, 20, 12, tzinfo=UTC)))
    cases = {"case-a1": ("cw-1", "team-a", date(2026, 2, 9)), "case-a2": ("cw-2", "team-a", date(2026, 1, 5)),
             "case-b1": ("cw-3", "team-b", date(2026, 3, 2))}
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app.api), base_url="http://d") as api:
        for case_id, (cw, team, requested) in cases.items():
            await publish(producer, settings,
                          case_event(f"{case_id}-a", case_id, "ehc.case.assigned", requested, caseworker_id=cw,
                                     team_id=team, area_id="east" if case_id == "case-b1" else "west"),
                          case_event(f"{case_id}-r", case_id, "ehc.request.received", requested, route="request",
                                     requested_by="parent"), key=case_id.encode())
        await publish(producer, settings, case_event("case-a2-p", "case-a2", "ehc.plan.issued", date(2026, 3, 16),
                                                     plan_id="p-1"), key=b"case-a2")
        await publish(producer, settings,  # a plan of January 2025 whose annual review is overdue
                      case_event("case-c1-a", "case-c1", "ehc.case.assigned", date(2024, 9, 2), caseworker_id="cw-4",
                                 team_id="team-c"),
                      case_event("case-c1-r", "case-c1", "ehc.request.received", date(2024, 9, 2), route="request",
                                 requested_by="parent"),
                      case_event("case-c1-p", "case-c1", "ehc.plan.issued", date(2025, 1, 10), plan_id="p-0"),
                      key=b"case-c1")

        async def stored() -> bool:
            r = await api.get("/v1/deadlines", headers=auth("tok-admin"))
            review = await api.get("/v1/cases/case-c1/deadlines", headers=auth("tok-admin"))
            return r.json()["total"] >= 14 and any(d["rule_id"] == "review.annual" for d in review.json()["items"])

        await eventually(stored, 30, "the deadlines stored")
        await fire_all_due(app.service, app.after_batch)  # case-a2's decision (due 16 Feb) is breached

        assert (await api.get("/v1/cases")).status_code == 401
        mine = (await api.get("/v1/cases", headers=auth("tok-cw-1"))).json()
        assert [c["case_id"] for c in mine["items"]] == ["case-a1"]
        assert mine["items"][0]["next_due_on"] == "2026-03-23" and mine["items"][0]["due_soon"] == 1
        everyone = (await api.get("/v1/cases", headers=auth("tok-admin"))).json()
        assert [c["case_id"] for c in everyone["items"]][:3] == ["case-a1", "case-b1", "case-a2"]  # next due first
        late = (await api.get("/v1/cases", params={"only": "overdue"}, headers=auth("tok-mgr-a"))).json()
        assert [c["case_id"] for c in late["items"]] == ["case-a2"]
        reviews = (await api.get("/v1/cases", params={"only": "reviews_overdue"}, headers=auth("tok-admin"))).json()
        assert [c["case_id"] for c in reviews["items"]] == ["case-c1"]

        east = (await api.get("/v1/cases", params={"area_id": "east"}, headers=auth("tok-admin"))).json()
        assert [c["case_id"] for c in east["items"]] == ["case-b1"]
        history = (await api.get("/v1/cases/case-a1/events", headers=auth("tok-cw-1"))).json()
        assert [e["type"] for e in history["items"]] == ["ehc.case.assigned", "ehc.request.received"]
        assert (history["team_id"], history["caseworker_id"], history["area_id"]) == ("team-a", "cw-1", "west")
        assert (await api.get("/v1/cases/case-b1/events", headers=auth("tok-cw-1"))).status_code == 404
        assert (await api.get("/v1/cases/case-b1/events", headers=auth("tok-mgr-a"))).status_code == 404

        summary = (await api.get("/v1/summary", headers=auth("tok-mgr-a"))).json()
        assert {(g["caseworker_id"], g["cases"], g["breached"]) for g in summary["groups"]} == {
            ("cw-1", 1, 0), ("cw-2", 1, 1)}

        figures = (await api.get("/v1/timeliness", params={"year": 2026}, headers=auth("tok-admin"))).json()
        assert figures["including_exceptions"]["plans"] == 1  # case-a2: 70 days, within 20 weeks
        assert figures["including_exceptions"]["percent_within_20_weeks"] == 100.0
        assert figures["national_percent_2025"] == 46.1
        assert [m["month"] for m in figures["months"]][-1] == "2026-03"
