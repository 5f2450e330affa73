"""`ehc deadlines rebuild`: rebuild the service's state from `ehc.case-events`.

1. Replays the topic from the beginning up to its end at the start of the rebuild, storing every
   event not yet in the case histories (idempotent: processed ids are recorded as the live
   consumer does, so it will not process them again).
2. Recomputes every case with the rule sets in force and publishes only what changed; this is
   also how a new rule-set version reaches every open case.
Progress is a bar on a terminal, periodic counts otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from services.deadlines.bootstrap import Deadlines
from shared import topics
from shared.consumer import Undecodable, check_json
from shared.contracts import parse_case_event
from shared.kafka import aiokafka_security, topic_partitions
from shared.logging import get_logger
from shared.progress import Progress

log = get_logger(__name__)


@dataclass
class RebuildReport:
    read: int = 0
    stored: int = 0
    invalid: int = 0
    cases: int = 0
    published: int = 0
    seconds: float = 0.0


async def rebuild(app: Deadlines, batch: int = 500, progress: Callable[[str, int], Any] = Progress
                  ) -> RebuildReport:
    report = RebuildReport()
    started = time.monotonic()
    kafka = app.settings.kafka
    topic = kafka.topic(topics.CASE_EVENTS)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None, enable_auto_commit=False,
                                max_poll_records=batch, **aiokafka_security(kafka))
    await consumer.start()
    try:
        tps = await topic_partitions(kafka, topic)
        if not tps:
            raise RuntimeError(f"topic {topic} does not exist: nothing to rebuild from")
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        begins = await consumer.beginning_offsets(tps)
        remaining = {tp: end for tp, end in ends.items() if end > begins[tp]}
        bar = progress("replaying case events", sum(ends[tp] - begins[tp] for tp in tps))
        while remaining:
            fetched = await consumer.getmany(*remaining, timeout_ms=1000)
            events = []
            for tp, records in fetched.items():
                for record in records:
                    if record.offset >= remaining.get(tp, -1):
                        continue
                    report.read += 1
                    try:
                        check_json(record.value or b"", app.settings.dead_letters)
                        events.append(parse_case_event(record.value or b""))
                    except (ValidationError, Undecodable):  # the consumer parked these: skip them here too
                        report.invalid += 1
                    if record.offset + 1 >= remaining[tp]:
                        remaining.pop(tp)
            if events:
                report.stored += (await app.service.store_history(events)).events
            read_so_far = report.read
            bar.update(read_so_far, f"{report.stored:,} new")
            if not fetched:
                for tp in list(remaining):
                    if await consumer.position(tp) >= remaining[tp]:
                        remaining.pop(tp)
        bar.close()
    finally:
        await consumer.stop()

    case_ids = await app.service.all_case_ids()
    bar = progress("recomputing cases", len(case_ids))
    for i in range(0, len(case_ids), batch):
        chunk = case_ids[i:i + batch]
        result = await app.service.recompute_cases(chunk)
        report.published += sum(result.published.values())
        await app.relay.drain()
        bar.update(i + len(chunk), f"{report.published:,} changes published")
    bar.close()
    report.cases = len(case_ids)
    report.seconds = time.monotonic() - started
    log.info("deadlines.rebuilt", read=report.read, stored=report.stored, invalid=report.invalid,
             cases=report.cases, published=report.published, seconds=round(report.seconds, 1))
    return report
