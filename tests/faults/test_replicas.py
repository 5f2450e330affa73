"""Two replicas of each service in one consumer group (issue 13, item 7): they share the work, and
when one of each is SIGKILLed in the middle of the stream the other takes over its partitions and
timers; nothing is lost, processed twice or sent twice."""

from __future__ import annotations

import time

import pytest

from tests.faults.pipeline import SERVICES
from tests.faults.scenario import conclude, events_in, workload_for
from tests.faults.workload import chunks

pytestmark = [pytest.mark.infra, pytest.mark.faults]
CASES = 50


async def test_two_replicas_of_each_service_one_of_each_killed(pipeline) -> None:
    async with pipeline() as p:
        w = workload_for(p, CASES, seed=404)
        first, second = chunks(w.stream(), 2)
        await p.start_all(replicas=2)
        await p.send(first)
        expected = events_in(first)

        async def some_stored() -> bool:
            return await p.count("deadlines", "case_events") > 0

        await p.wait_for("the first events stored", some_stored)
        for service in SERVICES:
            await p.kill(service, 0)
        t = time.monotonic()
        await p.send(second)
        expected += events_in(second)
        await p.recover("SIGKILL one of two replicas of each service", t, expected)
        await conclude(p, w)
