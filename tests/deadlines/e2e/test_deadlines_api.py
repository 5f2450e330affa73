"""The deadlines read API (issue 5): bearer tokens with roles, a case's deadlines with their
explanations, filters, the at-risk list, breaches, pagination and the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest

from services.deadlines.bootstrap import bootstrap
from services.deadlines.entrypoints.scheduler import fire_all_due
from shared.settings import Settings
from tests.conftest import eventually
from tests.deadlines.e2e.test_deadlines_service import MovableClock, publish
from tests.e2e.harness import case_event, running

pytestmark = pytest.mark.infra
TOKENS = {"tok-admin": "admin", "tok-mgr-a": "manager:team-a", "tok-cw-1": "caseworker:cw-1",
          "tok-cw-9": "caseworker:cw-9"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_read_api(isolated: Settings, producer) -> None:
    settings = isolated.model_copy(update={"deadlines": isolated.deadlines.model_copy(update={"api_tokens": TOKENS})})
    clock = MovableClock(datetime(2026, 3, 20, 12, tzinfo=UTC))
    app = bootstrap(settings, clock=clock)
    cases = {"case-a1": ("cw-1", "team-a", date(2026, 2, 9)), "case-a2": ("cw-2", "team-a", date(2026, 1, 5)),
             "case-b1": ("cw-3", "team-b", date(2026, 3, 2))}
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app.api), base_url="http://d") as api:
        for case_id, (cw, team, requested) in cases.items():
            await publish(producer, settings,
                          case_event(f"{case_id}-a", case_id, "ehc.case.assigned", requested, caseworker_id=cw,
                                     team_id=team),
                          case_event(f"{case_id}-r", case_id, "ehc.request.received", requested, route="request",
                                     requested_by="parent"), key=case_id.encode())

        async def all_stored() -> bool:
            r = await api.get("/v1/deadlines", headers=auth("tok-admin"))
            return r.json()["total"] == 9

        await eventually(all_stored, 30, "nine deadlines stored")
        await fire_all_due(app.service, app.after_batch)  # case-a2's decision (due 16 Feb) is breached

        assert (await api.get("/v1/deadlines")).status_code == 401
        assert (await api.get("/v1/deadlines", headers=auth("nope"))).status_code == 401
        other_team = await api.get("/v1/deadlines", params={"team_id": "team-b"}, headers=auth("tok-mgr-a"))
        assert other_team.status_code == 403  # outside the token's scope (a token with no role cannot start)

        one = (await api.get("/v1/cases/case-a1/deadlines", headers=auth("tok-admin"))).json()
        assert one["total"] == 3
        decision = next(d for d in one["items"] if d["rule_id"] == "assessment.decision")
        assert decision["due_on"] == "2026-03-23"
        explained = decision["explanation"]
        assert explained["trigger_event_id"] == "case-a1-r" and explained["trigger_date"] == "2026-02-09"
        assert explained["legal_source"].startswith("Regs 5(1)") and explained["period_text"]

        mine = (await api.get("/v1/deadlines", headers=auth("tok-cw-1"))).json()
        assert {d["case_id"] for d in mine["items"]} == {"case-a1"}
        team = (await api.get("/v1/deadlines", headers=auth("tok-mgr-a"))).json()
        assert {d["case_id"] for d in team["items"]} == {"case-a1", "case-a2"}
        forbidden_case = (await api.get("/v1/cases/case-b1/deadlines", headers=auth("tok-cw-1"))).json()
        assert forbidden_case["total"] == 0

        by_rule = (await api.get("/v1/deadlines", params={"rule_id": "plan.final", "due_from": "2026-06-01"},
                                 headers=auth("tok-admin"))).json()
        assert sorted(d["case_id"] for d in by_rule["items"]) == ["case-a1", "case-b1"]
        bad_status = await api.get("/v1/deadlines", params={"status": "bogus"}, headers=auth("tok-admin"))
        assert bad_status.status_code == 422

        breaches = (await api.get("/v1/breaches", headers=auth("tok-admin"))).json()
        assert [(d["case_id"], d["rule_id"]) for d in breaches["items"]] == [("case-a2", "assessment.decision")]

        at_risk = (await api.get("/v1/at-risk", params={"working_days": 10}, headers=auth("tok-admin"))).json()
        assert [(d["case_id"], d["rule_id"], d["due_on"]) for d in at_risk["items"]] == [
            ("case-a1", "assessment.decision", "2026-03-23")]

        page1 = (await api.get("/v1/deadlines", params={"page_size": 4}, headers=auth("tok-admin"))).json()
        page3 = (await api.get("/v1/deadlines", params={"page_size": 4, "page": 3}, headers=auth("tok-admin"))).json()
        assert page1["total"] == 9 and len(page1["items"]) == 4 and len(page3["items"]) == 1

        spec = (await api.get("/openapi.json")).json()
        assert {"/v1/cases/{case_id}/deadlines", "/v1/deadlines", "/v1/at-risk", "/v1/breaches"} <= set(spec["paths"])
        assert (await api.get("/healthz")).json() == {"status": "ok"}
        assert (await api.get("/readyz")).status_code == 200
        metrics = (await api.get("/metrics")).text
        assert "ehc_deadlines_published_total" in metrics
        assert 'ehc_deadlines_case_events_total{outcome="processed"}' in metrics


async def test_case_view_shows_data_that_cannot_be_true(isolated: Settings, producer) -> None:
    # Issue 11 item 5: a review decision dated before its meeting is flagged on the case, beside
    # the deadlines that are still computed; only those who may see the case see its warnings.
    settings = isolated.model_copy(update={"deadlines": isolated.deadlines.model_copy(update={"api_tokens": TOKENS})})
    app = bootstrap(settings, clock=MovableClock(datetime(2028, 3, 20, 12, tzinfo=UTC)))
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app.api), base_url="http://d") as api:
        await publish(producer, settings,
                      case_event("dq-a", "case-dq", "ehc.case.assigned", "2027-05-10", caseworker_id="cw-1",
                                 team_id="team-a"),
                      case_event("dq-p", "case-dq", "ehc.plan.issued", "2027-05-10", plan_id="p-1"),
                      case_event("dq-m", "case-dq", "ehc.review.meeting_held", "2028-03-10"),
                      case_event("dq-d", "case-dq", "ehc.review.decision_issued", "2028-03-01", outcome="maintain"),
                      key=b"case-dq")

        async def flagged() -> bool:  # the four events may come in more than one batch: wait for the last
            r = await api.get("/v1/cases/case-dq/data-quality", headers=auth("tok-admin"))
            return r.status_code == 200 and bool(r.json()["warnings"])

        await eventually(flagged, 30, "the case's warnings stored")
        view = (await api.get("/v1/cases/case-dq/data-quality", headers=auth("tok-cw-1"))).json()
        assert (await api.get("/v1/cases/case-dq/deadlines", headers=auth("tok-admin"))).json()["total"] >= 4
        assert [(w["code"], w["event_ids"]) for w in view["warnings"]] == [
            ("review_decision_before_meeting", ["dq-d", "dq-m"])]
        assert (await api.get("/v1/cases/case-dq/data-quality", headers=auth("tok-mgr-a"))).status_code == 200
        assert (await api.get("/v1/cases/nope/data-quality", headers=auth("tok-admin"))).status_code == 404
        assert (await api.get("/v1/cases/case-dq/data-quality", headers=auth("tok-cw-9"))).status_code == 404
