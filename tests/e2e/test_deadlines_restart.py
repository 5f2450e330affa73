"""The deadlines service killed (SIGKILL) between two events and restarted: no event lost, none
duplicated (issue 2 acceptance). The service runs as a real process: `ehc deadlines serve`."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta

import asyncpg
import pytest

from shared import topics
from shared.local_infra import postgres as pg_infra
from shared.settings import Settings
from tests.conftest import eventually, free_port, read_topic
from tests.e2e.harness import ServiceProcess, case_event, service_env

pytestmark = pytest.mark.infra


def summary(records: list) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    for r in records:
        e = json.loads(r.value)
        out[(e["subject"], e["data"]["rule_id"], e["type"])] += 1
    return out


async def test_killed_between_two_events_loses_nothing_and_duplicates_nothing(
    isolated: Settings, producer, tmp_path
) -> None:
    env = service_env(isolated, EHC_DEADLINES__HTTP_PORT=str(free_port()), EHC_DEADLINES__TICK_SECONDS="0.5")
    service = ServiceProcess("deadlines", env, tmp_path / "deadlines.log")
    case_events = isolated.kafka.topic(topics.CASE_EVENTS)
    deadline_events = isolated.kafka.topic(topics.DEADLINE_EVENTS)
    requested = date.today() - timedelta(days=10)
    schema = isolated.schema_for("deadlines")

    async def outbox_empty() -> bool:
        conn = await asyncpg.connect(pg_infra.dsn())
        try:
            return await conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL') == 0
        finally:
            await conn.close()

    await service.start()
    try:
        await producer.send_and_wait(case_events, case_event("r-1", "case-r", "ehc.request.received", requested,
                                                             route="request", requested_by="parent"), key=b"case-r")
        first = await read_topic(isolated.kafka.bootstrap_servers, deadline_events, lambda rs: len(rs) >= 3, 90)
        await eventually(outbox_empty, 30, "the outbox drained")
        await service.kill()

        # While it is down: a decision on the first case and a request on a second one.
        await producer.send_and_wait(case_events, case_event("r-2", "case-r", "ehc.assessment.decided",
                                                             requested + timedelta(days=7), decision="assess",
                                                             notice_sent_on=str(requested + timedelta(days=8))),
                                     key=b"case-r")
        await producer.send_and_wait(case_events, case_event("s-1", "case-s", "ehc.request.received", requested,
                                                             route="request", requested_by="school"), key=b"case-s")
        await service.start()
        expected = Counter({
            ("case-r", "assessment.decision", "deadline.opened"): 1,
            ("case-r", "assessment.plan_decision", "deadline.opened"): 1,
            ("case-r", "plan.final", "deadline.opened"): 1,
            ("case-r", "assessment.decision", "deadline.met"): 1,
            ("case-s", "assessment.decision", "deadline.opened"): 1,
            ("case-s", "assessment.plan_decision", "deadline.opened"): 1,
            ("case-s", "plan.final", "deadline.opened"): 1,
        })
        everything = await read_topic(isolated.kafka.bootstrap_servers, deadline_events,
                                      lambda rs: sum(summary(rs).values()) >= sum(expected.values()), 90)
        await eventually(outbox_empty, 30, "the outbox drained after restart")
        everything = await read_topic(isolated.kafka.bootstrap_servers, deadline_events,
                                      lambda rs: len(rs) >= len(everything), 10)
    finally:
        await service.terminate()
    assert len(first) == 3
    assert summary(everything) == expected
    ids = [json.loads(r.value)["id"] for r in everything]
    assert len(ids) == len(set(ids))
