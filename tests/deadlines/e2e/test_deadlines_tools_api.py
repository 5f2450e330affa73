"""The deadlines service's tools (issue 11) on a live service: the timeliness report from the
stored deadlines (API and `ehc report timeliness` without --from-file, with --cases and the
empty-year warning), the what-if endpoints and the admin dry run."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from services.cli import app as ehc
from services.deadlines.adapters import tables
from services.deadlines.bootstrap import bootstrap
from services.deadlines.service_layer.reports import timeliness_report
from shared.settings import Settings
from tests.conftest import eventually
from tests.deadlines.e2e.test_deadlines_api import auth
from tests.deadlines.e2e.test_deadlines_service import MovableClock, publish
from tests.deadlines.e2e.test_rebuild_dry_run import amended_version
from tests.e2e.harness import case_event, running, service_env

pytestmark = pytest.mark.infra
TOKENS = {"tok-admin": "admin", "tok-mgr": "manager", "tok-mgr-a": "manager:team-a", "tok-cw-1": "caseworker:cw-1"}


def request_and_plan(case_id: str, received: str, issued: str, exception: bool = False) -> list[bytes]:
    events = [case_event(f"{case_id}-a", case_id, "ehc.case.assigned", received, caseworker_id="cw-1",
                         team_id="team-a"),
              case_event(f"{case_id}-r", case_id, "ehc.request.received", received, route="request",
                         requested_by="parent"),
              case_event(f"{case_id}-p", case_id, "ehc.plan.issued", issued, plan_id=f"p-{case_id}")]
    if exception:
        events.append(case_event(f"{case_id}-x", case_id, "ehc.exception.recorded", received, exception="E3",
                                 rule_ids=["plan.final"], reason="test"))
    return events


CASES = {
    "case-t1": ("2025-01-06", "2025-05-19", False),  # 133 days: within 20 weeks
    "case-t2": ("2025-01-06", "2025-08-01", False),  # 207 days: over 20 up to 52 weeks
    "case-t3": ("2025-02-03", "2025-09-01", True),  # 210 days, with an exception
    "case-t4": ("2024-01-08", "2024-06-03", False),  # issued in 2024
}


async def test_timeliness_what_if_and_dry_run_on_a_live_service(isolated: Settings, producer) -> None:
    settings = isolated.model_copy(update={"deadlines": isolated.deadlines.model_copy(update={"api_tokens": TOKENS})})
    app = bootstrap(settings, clock=MovableClock(datetime(2026, 3, 20, 12, tzinfo=UTC)))
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app.api), base_url="http://d") as api:
        for case_id, (received, issued, exception) in CASES.items():
            await publish(producer, settings, *request_and_plan(case_id, received, issued, exception),
                          key=case_id.encode())
        await publish(producer, settings,
                      case_event("case-r-p", "case-r", "ehc.plan.issued", "2025-01-10", plan_id="p-r"),
                      case_event("case-r-m", "case-r", "ehc.review.meeting_held", "2026-01-05"), key=b"case-r")

        async def all_issued() -> bool:
            report = await timeliness_report(app.sessions, 2025)
            # the exception is case-t3's last event: wait for it too, not only for the plans
            return (report.including_exceptions.plans == 3 and report.plans_by_year.get(2024) == 1
                    and report.exceptions == 1)

        await eventually(all_issued, 30, "four issued plans and the exception stored")

        # -- timeliness from the stored deadlines, through the API
        r = await api.get("/v1/reports/timeliness", params={"year": 2025, "cases": True}, headers=auth("tok-mgr"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["including_exceptions"] == {
            "plans": 3, "within_20_weeks": 1, "percent_within_20_weeks": 33.3, "over_20_up_to_52_weeks": 2,
            "over_52_weeks": 0, "no_usable_received_date": 0, "mean_weeks_to_issue": 26.2}
        assert body["excluding_exceptions"]["plans"] == 2 and body["exceptions"] == 1
        assert body["cases"]["including_exceptions"]["within_20_weeks"] == ["case-t1"]
        assert sorted(body["cases"]["including_exceptions"]["over_20_up_to_52_weeks"]) == ["case-t2", "case-t3"]
        assert body["cases"]["exceptions"] == ["case-t3"] and "warnings" not in body
        empty = (await api.get("/v1/reports/timeliness", params={"year": 2023}, headers=auth("tok-admin"))).json()
        assert empty["including_exceptions"]["plans"] == 0
        assert "no plans were issued in 2023" in empty["warnings"][0] and "2024 (1), 2025 (3)" in empty["warnings"][0]
        # one endpoint (/v1/timeliness; /v1/reports/timeliness its earlier address), within the token's scope:
        # every case here is cw-1's, in team-a; another team's figures are refused
        unified = await api.get("/v1/timeliness", params={"year": 2025, "cases": True}, headers=auth("tok-mgr"))
        assert unified.json() == body
        for token in ("tok-cw-1", "tok-mgr-a"):
            mine = await api.get("/v1/timeliness", params={"year": 2025, "cases": True}, headers=auth(token))
            assert mine.status_code == 200 and mine.json() == body
        assert (await api.get("/v1/timeliness", params={"team_id": "team-b"},
                              headers=auth("tok-mgr-a"))).status_code == 403

        # the report's three facts are columns of the stored deadlines, written with them (case-t3's exception
        # came after its plan was met, and reached the columns too)
        d = tables.deadlines
        async with app.sessions() as session:
            stored = (await session.execute(select(d.c.case_id, d.c.trigger_date, d.c.completed_on, d.c.exception)
                                            .where(d.c.rule_id == "plan.final").order_by(d.c.case_id))).all()
        assert [tuple(r) for r in stored if r.case_id in CASES] == [
            (case_id, date.fromisoformat(received), date.fromisoformat(issued), "E3" if exception else None)
            for case_id, (received, issued, exception) in sorted(CASES.items())]

        # -- the same through `ehc report timeliness` without --from-file (the service's database)
        env = service_env(settings)
        runner = CliRunner()
        result = await asyncio.to_thread(runner.invoke, ehc, ["report", "timeliness", "--year", "2025", "--cases",
                                                              "--json"], env=env)
        assert result.exit_code == 0, result.output
        cli = json.loads(result.stdout)
        assert cli == {k: body[k] for k in cli} and set(body) - set(cli) == {"national_percent_2025", "months"}
        result = await asyncio.to_thread(runner.invoke, ehc, ["report", "timeliness", "--year", "2023"], env=env)
        assert result.exit_code == 0 and "warning: no plans were issued in 2023" in result.stderr
        result = await asyncio.to_thread(runner.invoke, ehc, ["report", "timeliness", "--year", "2025", "--cases"],
                                         env=env)
        assert "Within 20 weeks, including exceptions (1): case-t1" in result.stdout

        # -- what-if
        r = await api.get("/v1/what-if/forward", params={"event": "ehc.request.received@2026-03-02"},
                          headers=auth("tok-cw-1"))
        assert {d["rule_id"]: d["due_on"] for d in r.json()}["plan.final"] == "2026-07-20"
        r = await api.get("/v1/what-if/backward", headers=auth("tok-cw-1"), params=[
            ("by", "2028-02-15"), ("step", "ehc.review.meeting_held:review.decision"),
            ("step", "ehc.amendment.proposed:amendment.final")])
        assert [a["latest"] for a in r.json()] == ["2027-11-23", "2027-12-21"]
        assert r.json()[1]["deadline"]["legal_source"].startswith("Regs 22(3)")
        r = await api.get("/v1/what-if/backward", headers=auth("tok-cw-1"), params={"by": "2028-02-15",
                                                                                     "step": "plan.final"})
        assert r.status_code == 422
        r = await api.get("/v1/what-if/dependents", params={"rule_id": "review.decision"}, headers=auth("tok-cw-1"))
        assert "review.annual" in {d["rule_id"] for d in r.json()}
        r = await api.get("/v1/cases/case-r/what-if/at-risk", params={"deadline_id": "case-r:review.decision:1"},
                          headers=auth("tok-admin"))
        assert r.status_code == 200, r.text
        annual = next(d for d in r.json()["dependents"] if d["rule_id"] == "review.annual")
        assert (annual["due_if_completed_on_time"], annual["due_if_completed_on"], annual["days_later"]) == (
            "2027-02-01", "2027-03-19", 46)
        assert (await api.get("/v1/cases/case-r/what-if/at-risk", params={"deadline_id": "case-r:review.decision:1"},
                              headers=auth("tok-cw-1"))).status_code == 404  # not this caseworker's case

        # -- the admin dry run: nothing has changed, so nothing would be published
        assert (await api.post("/admin/rebuild/dry-run", headers=auth("tok-mgr"))).status_code == 403
        r = await api.post("/admin/rebuild/dry-run", headers=auth("tok-admin"))
        assert r.status_code == 200 and r.json()["cases"] == 5 and r.json()["changes"] == 0

    # -- a deployment with a new rule-set version previews its changes before any rebuild
    amended = bootstrap(settings, clock=MovableClock(datetime(2026, 3, 20, 12, tzinfo=UTC)), ruleset=amended_version())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=amended.api), base_url="http://d") as api:
            r = await api.post("/admin/rebuild/dry-run", headers=auth("tok-admin"), params={"limit": 1})
            preview = r.json()
            assert preview["changes"] >= 3 and preview["by_reason"] == {"ruleset": preview["changes"]}
            assert preview["truncated"] and len(preview["items"]) == 1
            item = preview["items"][0]
            assert item["rule_id"] == "assessment.decision" and item["new"]["ruleset_version"] == "england-bench.2"
            assert item["old"]["ruleset_version"] == "england-2014.1"
            again = (await api.post("/admin/rebuild/dry-run", headers=auth("tok-admin"))).json()
            assert again["changes"] == preview["changes"]  # a dry run changed nothing
    finally:
        await amended.engine.dispose()
