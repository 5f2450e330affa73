"""Each service SIGKILLed in the middle of a stream of cases and restarted (issue 13, item 7).

One pipeline, one stream in four parts: intake is killed while it works through the first
backlog and the second part arrives while it is down; the deadlines service is killed while it
works through the third; the notifier while it sends the texts of the fourth. After each restart
the pipeline must catch up, and at the end every case event is stored, every deadline is the
engine's, every family text was sent exactly once and nothing is stuck.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.scenario import conclude, events_in, workload_for
from tests.faults.workload import chunks

pytestmark = [pytest.mark.infra, pytest.mark.faults]
CASES = 60


async def test_each_service_killed_mid_stream_and_restarted(pipeline) -> None:
    async with pipeline() as p:
        w = workload_for(p, CASES, seed=101)
        parts = list(chunks(w.stream(), 4))
        expected = 0

        await p.start_all()
        # intake: killed while it works through the first part; the second arrives while it is down
        await p.send(parts[0])
        expected += events_in(parts[0])
        await p.wait_for("intake started on the stream", lambda: _at_least(p.count("intake", "received_events"), 1))
        intake = await p.kill("intake")
        await p.send(parts[1])
        expected += events_in(parts[1])
        t = time.monotonic()
        await p.restart(intake)
        await p.recover("SIGKILL intake", t, expected)

        # deadlines: killed while it works through the third part
        stored = await p.count("deadlines", "case_events")
        await p.send(parts[2])
        expected += events_in(parts[2])
        await p.wait_for("deadlines started on the third part",
                         lambda: _at_least(p.count("deadlines", "case_events"), stored + 1))
        deadlines = await p.kill("deadlines")
        t = time.monotonic()
        await p.restart(deadlines)
        await p.recover("SIGKILL deadlines", t, expected)

        # notifier: killed while it sends the texts of the fourth part
        texts = await p.texts_sent()
        await p.send(parts[3])
        expected += events_in(parts[3])
        await p.wait_for("the notifier sending the fourth part's texts", lambda: _texts_above(p, texts))
        notifier = await p.kill("notifier")
        t = time.monotonic()
        await p.restart(notifier)
        await p.recover("SIGKILL notifier", t, expected)

        await conclude(p, w)


async def _at_least(count, n: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await count >= n)


async def _texts_above(p, n: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await p.texts_sent() > n)
