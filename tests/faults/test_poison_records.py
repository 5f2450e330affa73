"""Poison records on every input topic (issue 13, item 7): on intake's canonical topic, on a
council's own topic read through a mapping, on ehc.case-events, ehc.deadline-events and
ehc.contacts; bytes that are not JSON, JSON nested 100,000 deep, invalid UTF-8, and valid JSON
that is not a valid message. Each must be parked on the dead-letter topic of the service that
reads it, and the valid cases sent before and after must go through as if nothing happened."""

from __future__ import annotations

import json
import time

import pytest

from shared import topics
from tests.faults.pipeline import CASEFLOW
from tests.faults.scenario import conclude, events_in, workload_for
from tests.faults.workload import chunks, poison_records

pytestmark = [pytest.mark.infra, pytest.mark.faults]
CASES = 30
POISONED = {topics.INTAKE_CANONICAL: "case-event", CASEFLOW: "caseflow", topics.CASE_EVENTS: "case-event",
            topics.DEADLINE_EVENTS: "deadline-event", topics.CONTACTS: "contacts"}


def caseflow_message(i: int) -> tuple[bytes, bytes]:
    """A valid message of the shipped `caseflow` mapping: a request received, one case event."""
    ref = f"CF/FAULTS/{i}"
    return ref.encode(), json.dumps({"msg_id": f"CF-F{i:04d}", "case_ref": ref, "status": "REQ_RCVD",
                                     "status_date": time.strftime("%d/%m/%Y"),
                                     "recorded_at": time.strftime("%d/%m/%Y 09:00")}).encode()


async def test_poison_on_every_input_topic_is_parked_and_stops_nothing(pipeline) -> None:
    async with pipeline() as p:
        w = workload_for(p, CASES, seed=303)
        before, after = chunks(w.stream(), 2)
        await p.start_all()
        await p.send(before)
        expected = events_in(before)
        t = time.monotonic()
        for topic, kind in POISONED.items():
            await p.send_poison(topic, poison_records(kind))
        valid_mapped = [caseflow_message(i) for i in range(5)]
        await p.send(valid_mapped, CASEFLOW)
        expected += len(valid_mapped)
        await p.send(after)
        expected += events_in(after)
        await p.recover("poison records on every input topic", t, expected,
                        poison=sum(p.poison_sent.values()))
        await conclude(p, w)
