"""Firing due timers against real PostgreSQL, one transaction at a time (DESIGN §4): what each kind
of timer publishes, what it marks fired silently, and that a deadline another replica holds is
skipped, not waited for. Deadlines and timers are written straight into the tables, so each case
is exactly the state it names; the events are read from the outbox, in the order they will go out."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import insert, select

from services.deadlines.adapters import tables
from services.deadlines.bootstrap import bootstrap
from services.deadlines.entrypoints.scheduler import fire_all_due
from services.deadlines.service_layer.timers import london
from shared.local_infra import postgres as pg_infra
from shared.settings import Settings

pytestmark = pytest.mark.infra

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)  # a Friday
TODAY = NOW.date()
EXPLANATION = {"rule_id": "assessment.decision", "legal_source": "Regs 5(1); 4(1)", "period_text": "6 weeks",
               "trigger_event_id": "e1", "ruleset_version": "england-2014.1", "responsible": "la", "kind": "duty",
               "flags": []}


class FixedClock:
    def now(self) -> datetime:
        return NOW


def deadline(case: str, due_on: date, status: str = "open") -> dict[str, Any]:
    return {"deadline_id": f"{case}:assessment.decision:1", "case_id": case, "rule_id": "assessment.decision",
            "due_on": due_on, "status": status, "responsible": "la", "kind": "duty", "team_id": "team-1",
            "caseworker_id": "cw-1", "explanation": EXPLANATION, "updated_at": NOW}


def timer(case: str, kind: str, offset: int, due_on: date, fire_at: datetime) -> dict[str, Any]:
    return {"deadline_id": f"{case}:assessment.decision:1", "case_id": case, "kind": kind, "offset_days": offset,
            "due_on": due_on, "fire_at": fire_at}


async def outbox_events(service: Any) -> list[dict[str, Any]]:
    async with service.sessions() as session:
        rows = (await session.execute(select(tables.outbox.c.value).order_by(tables.outbox.c.id))).scalars()
        return [json.loads(v) for v in rows]


async def timer_rows(service: Any) -> list[Any]:
    async with service.sessions() as session:
        return list((await session.execute(select(tables.timers).order_by(tables.timers.c.id))).all())


async def statuses(service: Any) -> dict[str, str]:
    async with service.sessions() as session:
        rows = await session.execute(select(tables.deadlines.c.deadline_id, tables.deadlines.c.status))
        return {d.split(":")[0]: s for d, s in rows.all()}


async def write(service: Any, deadlines: list[dict[str, Any]], timers: list[dict[str, Any]]) -> None:
    async with service.sessions() as session, session.begin():
        if deadlines:
            await session.execute(insert(tables.deadlines), deadlines)
        await session.execute(insert(tables.timers), timers)


async def test_each_kind_of_due_timer_fires_once_as_it_should(isolated: Settings) -> None:
    await check_each_kind(isolated)


async def test_each_kind_of_due_timer_fires_once_on_sqlite(isolated: Settings, tmp_path: Path) -> None:
    await check_each_kind(isolated.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/d.db"}))
    assert (tmp_path / "d.db").stat().st_size > 0


async def check_each_kind(settings: Settings) -> None:
    service = bootstrap(settings, clock=FixedClock())
    await service.start(consume=False, schedule=False)
    try:
        past, later = TODAY - timedelta(days=1), TODAY + timedelta(days=20)
        await write(service, [
            deadline("a-outage", past), deadline("b-reminder", TODAY + timedelta(days=4)),
            deadline("c-moved", later), deadline("d-exception", past, "exception"), deadline("e-met", past, "met"),
        ], [
            # a: after an outage its reminders and breach are all due: only the breach speaks
            timer("a-outage", "reminder", 10, past, NOW - timedelta(days=20)),
            timer("a-outage", "breach", 0, past, NOW - timedelta(hours=12)),
            timer("a-outage", "reminder", 3, past, NOW - timedelta(days=5)),
            # b: one reminder due (3 working days, within due_soon), the next not yet
            timer("b-reminder", "reminder", 3, TODAY + timedelta(days=4), NOW - timedelta(hours=4)),
            timer("b-reminder", "reminder", 0, TODAY + timedelta(days=4), NOW + timedelta(days=4)),
            # c: planned for a due date the deadline has since moved from: stale, dropped
            timer("c-moved", "breach", 0, past, NOW - timedelta(hours=12)),
            # d: under an exception, its weekly nudge is due: published and planned again a week on
            timer("d-exception", "nudge", 7, past, NOW - timedelta(hours=3)),
            # e: met since its breach was planned: nothing to say
            timer("e-met", "breach", 0, past, NOW - timedelta(hours=12)),
            # an orphan (its deadline row is gone): kept from piling up
            timer("f-gone", "breach", 0, past, NOW - timedelta(hours=12)),
        ])
        fired = await fire_all_due(service.service, _nothing)
        events = await outbox_events(service)
        timers = await timer_rows(service)
        assert [(e["type"], e["data"]["deadline_id"].split(":")[0], e["data"]["status"],
                 e["data"].get("reminder_offset_days")) for e in events] == [
            ("deadline.breached", "a-outage", "breached", None),
            ("deadline.due_soon", "b-reminder", "due_soon", 3),
            ("deadline.exception", "d-exception", "exception", None),
        ]
        assert all(e["subject"] == e["data"]["case_id"] and e["data"]["legal_source"] == "Regs 5(1); 4(1)"
                   for e in events)
        assert fired == 8
        unfired = [(t.case_id, t.kind, t.offset_days, t.fire_at) for t in timers if t.fired_at is None]
        assert unfired == [("b-reminder", "reminder", 0, NOW + timedelta(days=4)),
                           ("d-exception", "nudge", 7, london(TODAY + timedelta(days=7)))]
        assert all(t.fired_at == NOW for t in timers if t.fired_at is not None)
        assert await statuses(service) == {"a-outage": "breached", "b-reminder": "due_soon", "c-moved": "open",
                                           "d-exception": "exception", "e-met": "met"}
        # exactly once: nothing is due any more, a second pass publishes nothing
        assert await fire_all_due(service.service, _nothing) == 0
        assert len(await outbox_events(service)) == 3
    finally:
        await service.stop()


async def test_a_deadline_another_replica_holds_is_skipped_then_fired(isolated: Settings) -> None:
    """FOR UPDATE SKIP LOCKED: a deadline locked by another transaction is not waited for; its timers
    fire once it is let go. Deadlines are claimed earliest first, a batch at a time."""
    service = bootstrap(isolated, clock=FixedClock())
    await service.start(consume=False, schedule=False)
    past = TODAY - timedelta(days=1)
    cases = [f"case-{i:02d}" for i in range(30)]
    await write(service, [deadline(c, past) for c in cases],
                [timer(c, "breach", 0, past, NOW - timedelta(minutes=60 - i)) for i, c in enumerate(cases)])
    held = await asyncpg.connect(pg_infra.dsn())
    try:
        lock = held.transaction()
        await lock.start()
        await held.execute(f'SELECT 1 FROM "{isolated.schema_for("deadlines")}".deadlines '
                           f"WHERE deadline_id = $1 FOR UPDATE", f"{cases[0]}:assessment.decision:1")
        first = await service.service.fire_due_timers(40)  # a batch of 10 deadlines: the earliest after the held one
        assert first == 10
        assert [e["subject"] for e in await outbox_events(service)] == cases[1:11]
        while await service.service.fire_due_timers(40):
            pass
        assert [t.case_id for t in await timer_rows(service) if t.fired_at is None] == [cases[0]]
        await lock.rollback()
        assert await fire_all_due(service.service, _nothing) == 1
        subjects = [e["subject"] for e in await outbox_events(service)]
        assert sorted(subjects) == cases and subjects[-1] == cases[0]
    finally:
        await held.close()
        await service.stop()


async def _nothing() -> None:
    return None
