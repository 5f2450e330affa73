"""`ehc deadlines rebuild`: rebuild the service's state from `ehc.case-events`.

1. Replays the topic from the beginning up to its end at the start of the rebuild, storing every
   event not yet in the case histories (idempotent: processed ids are recorded as the live
   consumer does, so it will not process them again).
2. Recomputes every case with the rule sets in force and publishes only what changed; this is
   also how a new rule-set version, or a bank holiday added to the override file, reaches every
   open case.

With ``dry_run`` it writes and publishes nothing: the events it would store are held in memory,
and every change a real run would publish (the same :func:`changes.diff`) goes to ``on_change``
as plain values: case, deadline, added / moved / status / removed, old and new values, reason.
Progress is a bar on a terminal, periodic counts otherwise.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from services.deadlines.bootstrap import Deadlines
from services.deadlines.service_layer.changes import describe
from services.deadlines.service_layer.handlers import event_row
from shared import topics
from shared.consumer import Undecodable, check_json
from shared.contracts import DATA_QUALITY_EVENT_TYPE, parse_case_event
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
    published: int = 0  # deadline changes (what a dry run previews)
    data_quality_updates: int = 0  # case.data_quality events published beside them (not previewed)
    seconds: float = 0.0
    dry_run: bool = False
    changed_cases: int = 0  # cases with at least one change (dry run)
    by_change: Counter[str] = field(default_factory=Counter)  # added / moved / status / removed (dry run)
    by_reason: Counter[str] = field(default_factory=Counter)  # events / ruleset / calendar / time (dry run)

    def summary(self) -> str:
        replayed = (f"replayed {self.read} events ({self.stored} new, {self.invalid} invalid); "
                    f"recomputed {self.cases} cases; ")
        if not self.dry_run:
            quality = (f" and {self.data_quality_updates} data-quality updates" if self.data_quality_updates else "")
            return replayed + f"published {self.published} changes{quality} in {self.seconds:.1f} s"
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.by_change.items())) or "none"
        reasons = ", ".join(f"{n} {k}" for k, n in sorted(self.by_reason.items())) or "none"
        return (replayed + f"dry run: {self.published} changes would be published in {self.changed_cases} cases "
                f"({kinds}; reasons: {reasons}); nothing was written, in {self.seconds:.1f} s")


async def rebuild(app: Deadlines, batch: int = 500, progress: Callable[[str, int], Any] = Progress,
                  *, dry_run: bool = False, on_change: Callable[[dict[str, Any]], Any] | None = None
                  ) -> RebuildReport:
    report = RebuildReport(dry_run=dry_run)
    events_changed: set[str] = set()  # cases with new events
    pending: dict[str, list[dict[str, Any]]] = {}  # dry run: the events a real run would store, by case
    pending_ids: set[str] = set()
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
            if events and dry_run:
                for event in await app.service.unknown_events(events):
                    if event.id not in pending_ids:
                        pending_ids.add(event.id)
                        pending.setdefault(event.subject, []).append(event_row(event))
                        report.stored += 1
            elif events:
                stored = await app.service.store_history(events)
                report.stored += stored.events
                events_changed |= stored.changed_cases
            read_so_far = report.read
            bar.update(read_so_far, f"{report.stored:,} new")
            if not fetched:
                for tp in list(remaining):
                    if await consumer.position(tp) >= remaining[tp]:
                        remaining.pop(tp)
        bar.close()
    finally:
        await consumer.stop()

    case_ids = sorted(set(await app.service.all_case_ids()) | set(pending))
    bar = progress("previewing cases" if dry_run else "recomputing cases", len(case_ids))
    for i in range(0, len(case_ids), batch):
        chunk = case_ids[i:i + batch]
        if dry_run:
            changes = await app.service.preview_cases(chunk, {c: pending[c] for c in chunk if c in pending})
            report.published += len(changes)
            report.changed_cases += len({case_id for case_id, _ in changes})
            for case_id, change in changes:
                described = describe(case_id, change)
                report.by_change[described["change"]] += 1
                report.by_reason[described["reason"]] += 1
                if on_change is not None:
                    on_change(described)
            bar.update(i + len(chunk), f"{report.published:,} changes found")
            continue
        result = await app.service.recompute_cases(chunk, events_changed)
        quality = result.published.get(DATA_QUALITY_EVENT_TYPE, 0)
        report.data_quality_updates += quality
        report.published += sum(result.published.values()) - quality
        await app.relay.drain()
        bar.update(i + len(chunk), f"{report.published:,} changes published")
    bar.close()
    report.cases = len(case_ids)
    report.seconds = time.monotonic() - started
    log.info("deadlines.rebuilt", dry_run=dry_run, read=report.read, stored=report.stored, invalid=report.invalid,
             cases=report.cases, published=report.published, seconds=round(report.seconds, 1))
    return report
