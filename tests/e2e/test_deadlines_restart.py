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


async def test_sigkill_in_the_middle_of_a_stream_loses_nothing_and_publishes_nothing_twice(
    isolated: Settings, producer, tmp_path
) -> None:
    """Issue 5 acceptance: SIGKILL while a stream of case events is being processed, then restart.
    Every case event is processed exactly once, every deadline event id appears once on the topic,
    and the last event published for each deadline agrees with the stored state."""
    env = service_env(isolated, EHC_DEADLINES__HTTP_PORT=str(free_port()))
    service = ServiceProcess("deadlines", env, tmp_path / "deadlines.log")
    case_topic = isolated.kafka.topic(topics.CASE_EVENTS)
    schema = isolated.schema_for("deadlines")
    start = date.today() - timedelta(days=60)
    stream = []
    for i in range(80):
        c = f"case-m{i}"
        stream += [
            (c, case_event(f"{c}-a", c, "ehc.case.assigned", start, caseworker_id="cw-1", team_id="t1")),
            (c, case_event(f"{c}-r", c, "ehc.request.received", start, route="request", requested_by="parent")),
            (c, case_event(f"{c}-d", c, "ehc.assessment.decided", start + timedelta(days=30), decision="assess",
                           notice_sent_on=str(start + timedelta(days=31)))),
            (c, case_event(f"{c}-q", c, "ehc.advice.requested", start + timedelta(days=32), advice_id="ep",
                           provider_kind="educational_psychology")),
            (c, case_event(f"{c}-v", c, "ehc.advice.received", start + timedelta(days=50), advice_id="ep",
                           provider_kind="educational_psychology")),
        ]

    async def db(query: str) -> int:
        conn = await asyncpg.connect(pg_infra.dsn())
        try:
            return int(await conn.fetchval(query.replace("{s}", f'"{schema}"')))
        finally:
            await conn.close()

    await service.start()
    try:
        for n, (c, raw) in enumerate(stream):
            await producer.send(case_topic, raw, key=c.encode())
            if n == len(stream) // 3:
                await producer.flush()
                await eventually(lambda: _processed_at_least(db, 20), 60, "some events processed")
                await service.kill()  # mid-stream: the rest arrive while it is down or restarting
                await service.start()
        await producer.flush()

        async def all_done() -> bool:
            try:
                return (await db("SELECT count(*) FROM {s}.processed_events") == len(stream)
                        and await db("SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL") == 0)
            except asyncpg.UndefinedTableError:
                return False

        await eventually(all_done, 120, "every case event processed and relayed")
        published = await db("SELECT count(*) FROM {s}.outbox")
        conn = await asyncpg.connect(pg_infra.dsn())
        try:
            stored = {r["deadline_id"]: (str(r["due_on"]), r["status"])
                      for r in await conn.fetch(f'SELECT deadline_id, due_on, status FROM "{schema}".deadlines')}
        finally:
            await conn.close()
        records = await read_topic(isolated.kafka.bootstrap_servers, isolated.kafka.topic(topics.DEADLINE_EVENTS),
                                   lambda rs: len(rs) >= published, 60)
    finally:
        await service.terminate()
    events = [json.loads(r.value) for r in records]
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)) == published  # none twice, none missing
    last: dict[str, tuple[str, str]] = {}
    for e in events:  # one partition per case: the topic order is the case's order
        last[e["data"]["deadline_id"]] = (e["data"]["due_on"], e["data"]["status"])
    live = {"open", "due_soon"}
    assert set(last) == set(stored)
    for deadline_id, (due_on, status) in stored.items():
        assert last[deadline_id][0] == due_on
        assert last[deadline_id][1] == status or {last[deadline_id][1], status} <= live
    assert sum(1 for d in stored if d.endswith("assessment.decision:1")) == 80


async def _processed_at_least(db, n: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        return await db("SELECT count(*) FROM {s}.processed_events") >= n
    except asyncpg.UndefinedTableError:
        return False
