"""The admin dry run (POST /admin/rebuild/dry-run) previews the data-quality updates a real
recomputation would publish beside the deadline changes, as the CLI's dry run does (issue 12):
each case whose warnings would change, with the stored warnings and the new ones; nothing written."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select, update

from services.deadlines.adapters import tables
from services.deadlines.bootstrap import bootstrap
from shared.settings import Settings
from tests.conftest import eventually
from tests.deadlines.e2e.test_deadlines_api import auth
from tests.deadlines.e2e.test_deadlines_service import MovableClock, publish
from tests.e2e.harness import case_event, running

pytestmark = pytest.mark.infra
CASE = "case-dq-api"


async def stored_quality(app) -> list | None:  # type: ignore[no-untyped-def,type-arg]
    async with app.sessions() as session:
        return await session.scalar(select(tables.cases.c.data_quality).where(tables.cases.c.case_id == CASE))


async def test_the_admin_dry_run_previews_data_quality_updates(isolated: Settings, producer) -> None:  # type: ignore[no-untyped-def]
    settings = isolated.model_copy(update={"deadlines": isolated.deadlines.model_copy(
        update={"api_tokens": {"tok-admin": "admin"}})})
    app = bootstrap(settings, clock=MovableClock(datetime(2026, 3, 20, 12, tzinfo=UTC)))
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app.api), base_url="http://d") as api:
        await publish(producer, settings,
                      case_event("dqa-p", CASE, "ehc.plan.issued", "2025-05-12", plan_id="p-1"),
                      case_event("dqa-m", CASE, "ehc.review.meeting_held", "2026-03-10"),
                      case_event("dqa-d", CASE, "ehc.review.decision_issued", "2026-03-02", outcome="maintain"),
                      key=CASE.encode())

        async def warned() -> bool:
            return bool(await stored_quality(app))

        await eventually(warned, 30, "the case's data-quality warning stored")
        unchanged = (await api.post("/admin/rebuild/dry-run", headers=auth("tok-admin"))).json()
        assert (unchanged["changes"], unchanged["data_quality_updates"], unchanged["data_quality"]) == (0, 0, [])

        # The stored warnings as an earlier version of the checks left them (none): a recomputation
        # would publish the case's warning, and the dry run shows it.
        warning = await stored_quality(app)
        async with app.sessions() as session, session.begin():
            await session.execute(update(tables.cases).where(tables.cases.c.case_id == CASE).values(data_quality=[]))
        preview = (await api.post("/admin/rebuild/dry-run", headers=auth("tok-admin"))).json()
        assert preview["data_quality_updates"] == 1 and not preview["truncated"]
        [item] = preview["data_quality"]
        assert (item["case_id"], item["event_type"], item["old"], item["new"]) == (CASE, "case.data_quality", [],
                                                                                  warning)
        assert [w["code"] for w in item["new"]] == ["review_decision_before_meeting"]
        assert await stored_quality(app) == []  # a dry run writes nothing
        limited = (await api.post("/admin/rebuild/dry-run", headers=auth("tok-admin"), params={"limit": 0})).json()
        assert limited["data_quality_updates"] == 1 and limited["data_quality"] == [] and limited["truncated"]
