"""The engine never crashes on valid input (issue 13): an ehc.plan.issued dated 2099 (its annual
review falls beyond the working-day calendar's years) is a data-quality problem on that case,
recorded and shown by the read API; every other case in the same batches gets its deadlines and
nothing is parked."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from services.deadlines.bootstrap import bootstrap
from shared.settings import Settings
from tests.conftest import eventually
from tests.deadlines.e2e.test_deadlines_service import publish
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
