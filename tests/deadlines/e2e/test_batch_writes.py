"""A batch's reads and writes in few statements (DeadlinesRepository.store_new_events, case_state,
write_recomputed) keep what the one-statement-each writes kept: processed ids and history once,
the new timer plan only, fired timers kept, vanished deadlines cancelled; the same on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from services.deadlines.adapters import tables
from services.deadlines.adapters.repository import DeadlinesRepository
from services.deadlines.bootstrap import Deadlines, bootstrap
from services.deadlines.service_layer.timers import TimerSpec
from shared.settings import Settings

pytestmark = pytest.mark.infra
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
async def app(request: pytest.FixtureRequest, isolated: Settings, tmp_path: Path) -> AsyncIterator[Deadlines]:
    settings = isolated if request.param == "postgresql" else isolated.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'deadlines.db'}"})
    service = bootstrap(settings)
    await service.start(consume=False, schedule=False)
    yield service
    await service.stop()


def case(case_id: str, team: str | None = None) -> dict[str, Any]:
    return {"case_id": case_id, "team_id": team, "caseworker_id": None, "area_id": None,
            "ruleset_version": "v1", "problem": None, "data_quality": [{"code": "x"}], "updated_at": NOW}


def deadline(deadline_id: str, case_id: str, due: date, status: str = "open") -> dict[str, Any]:
    return {"deadline_id": deadline_id, "case_id": case_id, "rule_id": "rule", "due_on": due, "status": status,
            "responsible": "la", "kind": "duty", "team_id": None, "caseworker_id": None,
            "explanation": {"ruleset_version": "v1", "flags": []}, "updated_at": NOW, "trigger_date": None,
            "completed_on": None, "exception": None}


def timer(deadline_id: str, offset: int, due: date) -> tuple[str, str, TimerSpec]:
    return deadline_id, "c1", TimerSpec("reminder", offset, due, datetime(2026, 12, offset + 1, 9, tzinfo=UTC))


def event(event_id: str, case_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "case_id": case_id, "source": "test", "type": "ehc.request.received",
            "occurred_on": date(2026, 11, 2), "recorded_at": NOW, "supersedes": None,
            "data": {"occurred_on": "2026-11-02", "route": "request"}}


async def timers_of(app: Deadlines) -> list[tuple[int, str, bool]]:
    async with app.sessions() as session:
        t = tables.timers
        rows = await session.execute(select(t.c.offset_days, t.c.due_on, t.c.fired_at).order_by(t.c.offset_days))
        return [(r.offset_days, r.due_on.isoformat(), r.fired_at is not None) for r in rows]


async def test_the_batch_statements_store_read_and_replace_as_before(app: Deadlines) -> None:
    first, later = date(2026, 12, 20), date(2027, 1, 8)
    async with app.sessions() as session, session.begin():
        repo = DeadlinesRepository(session)
        assert await repo.store_new_events("deadlines", [event("e1", "c1"), event("e2", "c2")]) == {"e1", "e2"}
        assert await repo.store_new_events("deadlines", [event("e1", "c1"), event("e3", "c1")]) == {"e3"}
        await repo.write_recomputed([case("c1", "team-1"), case("c2")],
                                    [deadline("c1:a", "c1", first), deadline("c1:b", "c1", first)], [],
                                    ["c1:a", "c1:b"], [timer("c1:a", 1, first), timer("c1:a", 2, first)])
    async with app.sessions() as session, session.begin():
        await session.execute(update(tables.timers).where(tables.timers.c.offset_days == 1).values(fired_at=NOW))
    async with app.sessions() as session, session.begin():
        state = await DeadlinesRepository(session).case_state(["c1", "c2", "c3"])
        assert sorted(r.event_id for r in state.histories["c1"]) == ["e1", "e3"] and state.histories["c3"] == []
        assert state.histories["c2"][0].data == {"occurred_on": "2026-11-02", "route": "request"}
        assert state.histories["c2"][0].recorded_at == NOW
        assert {k: (v.due_on, v.status, v.ruleset_version) for k, v in state.stored["c1"].items()} == {
            "c1:a": (first, "open", "v1"), "c1:b": (first, "open", "v1")}
        assert state.stored["c3"] == {} and "c3" not in state.routing
        assert state.routing["c1"] == ("team-1", None) and state.quality["c2"] == [{"code": "x"}]
        # c1:a moves: its unfired timers are replaced by the new plan (one planned again, one new),
        # the fired one stays; c1:b vanished: cancelled, its unfired timers dropped
        await DeadlinesRepository(session).write_recomputed(
            [case("c1", "team-1")], [deadline("c1:a", "c1", later)], ["c1:b"], ["c1:a", "c1:b"],
            [timer("c1:a", 1, first), timer("c1:a", 2, first), timer("c1:a", 3, later)])
    assert await timers_of(app) == [(1, first.isoformat(), True), (2, first.isoformat(), False),
                                    (3, later.isoformat(), False)]
    async with app.sessions() as session:
        rows = {r.deadline_id: (r.due_on, r.status) for r in await session.execute(select(tables.deadlines))}
    assert rows == {"c1:a": (later, "open"), "c1:b": (first, "cancelled")}
