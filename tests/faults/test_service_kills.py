"""Two replicas of each service in one consumer group, and each service SIGKILLed in the middle of
a stream of cases and restarted (issue 13, item 7).

One pipeline with two processes of each service, one stream in four parts: one intake replica is
killed while intake works through the first part, and the second part arrives meanwhile; one
deadlines replica while the deadlines service works through the third; one notifier replica while
the texts of the fourth are being sent. Each killed replica is restarted at once; the other
replica takes over its partitions and timers meanwhile. After each fault the pipeline must catch
up, and at the end every case event is stored, every deadline is the engine's, every family text
was sent exactly once and nothing is stuck.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.scenario import conclude, events_in, workload_for
from tests.faults.workload import chunks

pytestmark = [pytest.mark.infra, pytest.mark.faults]
CASES = 60
REPLICAS = 2


async def test_two_replicas_each_service_killed_mid_stream_and_restarted(pipeline) -> None:
    async with pipeline() as p:
        w = workload_for(p, CASES, seed=101)
        parts = list(chunks(w.stream(), 4))
        await p.start_all(replicas=REPLICAS)

        async def more(count, n: int) -> bool:  # type: ignore[no-untyped-def]
            return bool(await count() > n)

        # intake: killed while it works through the first part; the second arrives meanwhile
        await p.send(parts[0])
        expected = events_in(parts[0])
        await p.wait_for("intake started on the stream", lambda: more(lambda: p.count("intake", "received_events"), 0))
        intake = await p.kill("intake")
        await p.send(parts[1])
        expected += events_in(parts[1])
        t = time.monotonic()
        await p.restart(intake)
        await p.recover("SIGKILL intake (1 of 2)", t, expected)

        # deadlines: killed while it works through the third part
        stored = await p.count("deadlines", "case_events")
        await p.send(parts[2])
        expected += events_in(parts[2])
        await p.wait_for("deadlines started on the third part",
                         lambda: more(lambda: p.count("deadlines", "case_events"), stored))
        deadlines = await p.kill("deadlines")
        t = time.monotonic()
        await p.restart(deadlines)
        await p.recover("SIGKILL deadlines (1 of 2)", t, expected)

        # notifier: killed while the texts of the fourth part are being sent
        texts = await p.texts_sent()
        await p.send(parts[3])
        expected += events_in(parts[3])
        await p.wait_for("the notifier sending the fourth part's texts", lambda: more(p.texts_sent, texts))
        notifier = await p.kill("notifier")
        t = time.monotonic()
        await p.restart(notifier)
        await p.recover("SIGKILL notifier (1 of 2)", t, expected)

        await conclude(p, w)
