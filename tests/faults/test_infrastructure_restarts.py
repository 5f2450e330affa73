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
from typing import Any

import pytest

from tests.faults.pipeline import Pipeline
from tests.faults.scenario import conclude, events_in, workload_for
from tests.faults.workload import chunks

pytestmark = [pytest.mark.infra, pytest.mark.faults]
CASES = 50


async def test_broker_and_database_restarts_and_a_notifier_outage(pipeline) -> None:
    async with pipeline() as p:
        w = workload_for(p, CASES, seed=202)
        parts = list(chunks(w.stream(), 5))
        await p.start_all()

        # 1. the broker, then 2. PostgreSQL, each stopped and started while a part is being worked through
        expected = await restart_mid_stream(p, "Kafka broker restart", p.stop_kafka, p.infra.start_kafka,
                                            parts[0], parts[1], 0)
        expected = await restart_mid_stream(p, "PostgreSQL restart", p.infra.stop_postgres, p.infra.start_postgres,
                                            parts[2], parts[3], expected)

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


async def restart_mid_stream(p: Pipeline, fault: str, stop: Any, start: Any, during: list[tuple[bytes, bytes]],
                             after: list[tuple[bytes, bytes]], expected: int) -> int:
    """Send ``during``; once the deadlines service stores some of it, stop and start a component;
    send ``after``; record the time from the restart until the pipeline has caught up."""
    stored = await p.count("deadlines", "case_events")
    await p.send(during)
    expected += events_in(during)

    async def storing() -> bool:
        return await p.count("deadlines", "case_events") > stored

    await p.wait_for(f"{fault}: the part being stored", storing)
    t_down = time.monotonic()
    await stop()
    await start()
    t = time.monotonic()
    await p.send(after)
    expected += events_in(after)
    await p.recover(fault, t, expected, away_s=round(t - t_down, 1))
    return expected
