"""The broker restarted, PostgreSQL restarted, and the notifier away while cases flow (issue 13,
item 7), in one pipeline and one stream in five parts:

1. the Kafka broker is stopped and started while the services work through the first part; the
   second part is sent once it is back;
2. PostgreSQL is stopped and started while they work through the third; the fourth follows;
3. the notifier is stopped (an outage), the fifth part flows through intake and the deadlines
   service, and the notifier is started again with that backlog waiting.

After each, the pipeline must catch up on its own; at the end the invariants hold.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.scenario import conclude, events_in, workload_for
from tests.faults.workload import chunks

pytestmark = [pytest.mark.infra, pytest.mark.faults]
CASES = 50


async def test_broker_and_database_restarts_and_a_notifier_outage(pipeline) -> None:
    async with pipeline() as p:
        w = workload_for(p, CASES, seed=202)
        parts = list(chunks(w.stream(), 5))
        await p.start_all()

        async def stored_more_than(n: int) -> bool:
            return await p.count("deadlines", "case_events") > n

        # 1. broker restart in the middle of the first part
        await p.send(parts[0])
        expected = events_in(parts[0])
        await p.wait_for("the first events stored", lambda: stored_more_than(0))
        t_down = time.monotonic()
        await p.infra.stop_kafka()
        await p.infra.start_kafka()
        t = time.monotonic()
        await p.send(parts[1])
        expected += events_in(parts[1])
        await p.recover("Kafka broker restart", t, expected, broker_away_s=round(t - t_down, 1))

        # 2. PostgreSQL restart in the middle of the third part
        before = await p.count("deadlines", "case_events")
        await p.send(parts[2])
        expected += events_in(parts[2])
        await p.wait_for("the third part being stored", lambda: stored_more_than(before))
        t_down = time.monotonic()
        await p.infra.stop_postgres()
        await p.infra.start_postgres()
        t = time.monotonic()
        await p.send(parts[3])
        expected += events_in(parts[3])
        await p.recover("PostgreSQL restart", t, expected, database_away_s=round(t - t_down, 1))

        # 3. the notifier away while the fifth part flows; started again with the backlog waiting
        notifier = await p.stop("notifier")
        await p.send(parts[4])
        expected += events_in(parts[4])

        async def backlog_waiting() -> bool:
            return (await p.count("deadlines", "case_events") == expected
                    and await p.count("deadlines", "outbox WHERE published_at IS NULL") == 0)

        await p.wait_for("the fifth part through the deadlines service", backlog_waiting)
        backlog = (await p.lags())["ehc-notifier"]
        t = time.monotonic()
        await p.restart(notifier)
        await p.recover("notifier outage with a backlog", t, expected, backlog_deadline_events=backlog)
        await conclude(p, w)
