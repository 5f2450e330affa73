"""`ehc deadlines rebuild` (issue 5): state rebuilt by replaying ehc.case-events from the beginning,
and a new rule-set version recomputes every case and publishes only what changed."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import yaml

from services.deadlines.adapters import tables
from services.deadlines.bootstrap import bootstrap
from services.deadlines.domain.rules import RULESETS_DIR, RuleSetHistory, load_ruleset_history, parse_ruleset
from services.deadlines.entrypoints.rebuild import rebuild
from shared import topics
from shared.settings import Settings
from tests.conftest import read_topic
from tests.deadlines.e2e.test_deadlines_service import MovableClock, publish
from tests.e2e.harness import case_event, running

pytestmark = pytest.mark.infra


class Quiet:
    def __init__(self, label: str, total: int) -> None:
        self.total = total

    def update(self, completed: int, text: str = "") -> None: ...

    def close(self) -> None: ...


async def stored(app) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    async with app.sessions() as session:
        rows = (await session.execute(tables.deadlines.select())).all()
    return {r.deadline_id: (r.due_on, r.status, r.rule_id) for r in rows}


def hypothetical_2026_version() -> RuleSetHistory:
    """A made-up amendment for the test only: from 1 March 2026, 5 weeks to decide whether to assess
    (between the shipped versions england-2014.1 and england-2026.1)."""
    shipped = load_ruleset_history("england").versions
    raw = yaml.safe_load((RULESETS_DIR / "england.yaml").read_text())
    raw["version"], raw["effective_from"] = "england-test.2", "2026-03-01"
    for rule in raw["rules"]:
        if rule["rule_id"] == "assessment.decision":
            rule["period"]["amount"] = 5
    return RuleSetHistory.of([*shipped, parse_ruleset(raw, "test")])


async def test_rebuild_from_the_topic_and_a_new_ruleset_version(isolated: Settings, producer) -> None:
    clock = MovableClock(datetime(2026, 3, 20, 12, tzinfo=UTC))
    old_case, new_case = "case-before", "case-after"
    live = bootstrap(isolated, clock=clock)
    async with running(live):
        await publish(producer, isolated,
                      case_event("b1", old_case, "ehc.request.received", date(2026, 2, 2), route="request",
                                 requested_by="parent"), key=old_case.encode())
        await publish(producer, isolated,
                      case_event("a1", new_case, "ehc.request.received", date(2026, 3, 2), route="request",
                                 requested_by="parent"), key=new_case.encode())
        await read_topic(isolated.kafka.bootstrap_servers, isolated.kafka.topic(topics.DEADLINE_EVENTS),
                         lambda rs: len(rs) >= 6)
    original = await stored(bootstrap(isolated, clock=clock))

    # 1. A fresh deployment (empty schemas) rebuilt from the topic has the same state.
    fresh = isolated.model_copy(update={"db_schema_prefix": isolated.db_schema_prefix + "fresh_"})
    app = bootstrap(fresh, clock=clock)
    await app.start(consume=False, schedule=False)
    try:
        report = await rebuild(app, progress=Quiet)
        assert (report.read, report.stored, report.cases) == (2, 2, 2)
        assert await stored(app) == original
    finally:
        await app.stop()

    # 2. A new rule-set version: only the case whose clock started after it changes.
    before = len(await read_topic(isolated.kafka.bootstrap_servers, isolated.kafka.topic(topics.DEADLINE_EVENTS),
                                  lambda rs: len(rs) >= 12))
    app = bootstrap(isolated, clock=clock, ruleset=hypothetical_2026_version())
    await app.start(consume=False, schedule=False)
    try:
        report = await rebuild(app, progress=Quiet)
        assert report.stored == 0  # the history was already there
        assert report.published == 1
    finally:
        await app.stop()
    records = await read_topic(isolated.kafka.bootstrap_servers, isolated.kafka.topic(topics.DEADLINE_EVENTS),
                               lambda rs: len(rs) >= before + 1)
    changed = [json.loads(r.value) for r in records[before:]]
    assert [(e["type"], e["subject"], e["data"]["rule_id"], e["data"]["due_on"], e["data"]["ruleset_version"])
            for e in changed] == [("deadline.changed", new_case, "assessment.decision", "2026-04-06", "england-test.2")]
