"""A large batch on PostgreSQL is handled as groups of whole cases in concurrent transactions (issue
12): what is stored and published is what one transaction stores and publishes (each case's events
in order), and when one group fails the others stay committed, and the batch handled again
completes it exactly once (no event published twice)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from services.deadlines.adapters.records import record_to_json
from services.deadlines.bootstrap import Deadlines, bootstrap
from services.deadlines.domain.synthetic import synthetic_stream
from services.deadlines.service_layer import handlers
from shared.contracts import parse_case_event
from shared.settings import Settings

pytestmark = pytest.mark.infra
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


def batch() -> list[Any]:
    records, cases = synthetic_stream(400, seed=3)
    assert cases > 4 and len(records) >= handlers.GROUP_MIN_EVENTS
    return [parse_case_event(json.dumps(record_to_json(r)).encode()) for r in records]


@pytest.fixture
async def apps(isolated: Settings) -> AsyncIterator[tuple[Deadlines, Deadlines]]:
    """Two services on their own schemas: grouped, and the reference in one transaction."""
    grouped = bootstrap(isolated, clock=FixedClock())
    single = bootstrap(isolated.model_copy(update={"db_schema_prefix": isolated.db_schema_prefix + "one_"}),
                       clock=FixedClock())
    for app in (grouped, single):
        await app.start(consume=False, schedule=False)
    single.service._concurrent = False  # the one-transaction route (as on SQLite)
    yield grouped, single
    for app in (grouped, single):
        await app.stop()


async def stored(app: Deadlines) -> dict[str, Any]:
    schema = app.settings.schema_for("deadlines")
    async with app.sessions() as session:
        async def rows(sql: str) -> list[Any]:
            return [tuple(r) for r in (await session.execute(text(sql.replace("{s}", f'"{schema}"')))).all()]
        outbox = await rows("SELECT key, value, xmin::text FROM {s}.outbox ORDER BY id")
        by_case: dict[bytes, list[str]] = {}
        for key, value, _ in outbox:
            event = json.loads(value)
            by_case.setdefault(key, []).append(f"{event['type']} {event['data']['deadline_id']} {event['id']}")
        return {
            "deadlines": await rows("SELECT deadline_id, case_id, rule_id, due_on, status, explanation::text, "
                                    "team_id, trigger_date, completed_on FROM {s}.deadlines ORDER BY deadline_id"),
            "timers": await rows("SELECT deadline_id, kind, offset_days, due_on, fire_at FROM {s}.timers "
                                 "ORDER BY deadline_id, kind, offset_days"),
            "history": await rows("SELECT event_id, case_id, data::text FROM {s}.case_events ORDER BY event_id"),
            "cases": await rows("SELECT case_id, ruleset_version, data_quality::text FROM {s}.cases ORDER BY case_id"),
            "published": by_case,  # each case's events in the order they will be relayed
            "outbox rows": len(outbox),
            "transactions": len({xmin for _, _, xmin in outbox}),
        }


async def test_a_grouped_batch_stores_and_publishes_what_one_transaction_does(apps) -> None:  # type: ignore[no-untyped-def]
    grouped, single = apps
    events = batch()
    result, reference = (await grouped.service.handle_case_events(events),
                         await single.service.handle_case_events(events))
    assert result == reference
    got, expected = await stored(grouped), await stored(single)
    assert (got.pop("transactions"), expected.pop("transactions")) == (handlers.GROUPS, 1)
    assert got == expected
    assert expected["outbox rows"] > len(events)  # the comparison covers a real batch's output


async def test_when_one_group_fails_the_others_commit_and_the_batch_again_completes_it_once(apps) -> None:  # type: ignore[no-untyped-def]
    grouped, single = apps
    events = batch()
    doomed = events[-1].subject
    compute = grouped.service._engine.compute
    failures = [0]

    def failing_once(records: list[Any], as_of: Any) -> list[Any]:
        if records and records[0].case_id == doomed and not failures[0]:
            failures[0] += 1
            raise RuntimeError("this case's computation failed")
        return compute(records, as_of)

    grouped.service._engine.compute = failing_once  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await grouped.service.handle_case_events(events)
    partial = await stored(grouped)
    assert 0 < partial["outbox rows"]  # the other group committed
    assert doomed.encode() not in partial["published"]  # the failed group's transaction left nothing
    again = await grouped.service.handle_case_events(events)  # the batch redelivered
    assert again.duplicates > 0 and again.events + again.duplicates == len(events)
    await single.service.handle_case_events(events)
    got, expected = await stored(grouped), await stored(single)
    got.pop("transactions"), expected.pop("transactions")
    assert got == expected  # everything once, each case in order
