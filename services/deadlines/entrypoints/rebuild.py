"""`ehc deadlines rebuild`: rebuild the service's state from `ehc.case-events`, as a streaming job.

1. Replays the topic from the beginning up to its end at the start of the rebuild, in bounded
   reads, storing every event not yet in the case histories in large batches (``store_batch``
   events per transaction; idempotent: processed ids are recorded as the live consumer does, so
   neither it nor a re-run processes them again).
2. Recomputes every case with the rule sets in force, ``batch`` cases per transaction, reading the
   case ids a page at a time, and publishes only what changed; this is also how a new rule-set
   version, or a bank holiday added to the override file, reaches every open case.

Memory stays bounded whatever the number of cases: one read, one store batch and one page of cases
at a time; which cases got new events is asked of the database (events received after the latest
one stored before the replay) rather than held. Interrupting it is safe: every batch is its own
transaction, outgoing events have deterministic ids, and a re-run skips the events already stored
and publishes only what is still different.

With ``dry_run`` it writes and publishes nothing: the events it would store are held in memory (the
live service normally has them stored already, so these are few), every change a real run would
publish (the same :func:`changes.diff`) goes to ``on_change`` as plain values: case, deadline,
added / moved / status / removed, old and new values, reason; and every ``case.data_quality``
update to ``on_quality``: case, stored and new warnings.
Progress (events read, cases recomputed, rate, time left) is a bar on a terminal, periodic lines
otherwise; the summary gives the rates.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from services.deadlines.adapters.repository import DeadlinesRepository
from services.deadlines.bootstrap import Deadlines
from services.deadlines.service_layer.changes import describe, describe_quality
from services.deadlines.service_layer.handlers import CONSUMER, event_row
from shared import topics
from shared.consumer import Undecodable, check_json
from shared.contracts import DATA_QUALITY_EVENT_TYPE, CaseEventEnvelope, parse_case_event
from shared.kafka import aiokafka_security, topic_partitions
from shared.logging import get_logger
from shared.progress import Progress

log = get_logger(__name__)
STORE_BATCH = 5000  # events per transaction while replaying


@dataclass
class RebuildReport:
    read: int = 0
    stored: int = 0
    invalid: int = 0
    cases: int = 0
    published: int = 0  # deadline changes (what a dry run previews)
    data_quality_updates: int = 0  # case.data_quality events published beside them (previewed by a dry run)
    seconds: float = 0.0
    replay_seconds: float = 0.0
    dry_run: bool = False
    changed_cases: int = 0  # cases with at least one change (dry run)
    by_change: Counter[str] = field(default_factory=Counter)  # added / moved / status / removed (dry run)
    by_reason: Counter[str] = field(default_factory=Counter)  # events / ruleset / calendar / time (dry run)

    def rates(self) -> str:
        recompute = max(self.seconds - self.replay_seconds, 1e-9)
        return (f"{self.read / max(self.replay_seconds, 1e-9):,.0f} events/s replayed, "
                f"{self.cases / recompute:,.0f} cases/s recomputed")

    def summary(self) -> str:
        replayed = (f"replayed {self.read} events ({self.stored} new, {self.invalid} invalid); "
                    f"recomputed {self.cases} cases; ")
        quality = f" and {self.data_quality_updates} data-quality updates" if self.data_quality_updates else ""
        if not self.dry_run:
            return replayed + f"published {self.published} changes{quality} in {self.seconds:.1f} s ({self.rates()})"
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.by_change.items())) or "none"
        reasons = ", ".join(f"{n} {k}" for k, n in sorted(self.by_reason.items())) or "none"
        return (replayed + f"dry run: {self.published} changes would be published in {self.changed_cases} cases "
                f"({kinds}; reasons: {reasons}){quality}; nothing was written, in {self.seconds:.1f} s "
                f"({self.rates()})")


class Pace:
    """Rate and time left of one stage, for the progress lines."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.monotonic()

    def text(self, done: int, unit: str) -> str:
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f", {timedelta(seconds=round((self.total - done) / rate))} left" if rate and self.total > done else ""
        return f"{rate:,.0f} {unit}/s{left}"


class Behind:
    """One job at a time in the background, so that the next batch is read or computed while the
    previous one is written or relayed; submitting waits for the previous job (at most one batch
    in flight: memory stays bounded) and raises what it raised."""

    def __init__(self) -> None:
        self._job: asyncio.Task[Any] | None = None

    async def submit(self, job: Coroutine[Any, Any, Any]) -> None:
        await self.wait()
        self._job = asyncio.create_task(job)

    async def wait(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            await job

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    async def settle(self) -> None:
        """Let the job in flight finish (after a failure elsewhere: its error is logged, not raised)."""
        try:
            await self.wait()
        except Exception as exc:
            log.warning("deadlines.rebuild_job_failed", error=type(exc).__name__)


async def rebuild(app: Deadlines, batch: int = 500, progress: Callable[[str, int], Any] = Progress,
                  *, dry_run: bool = False, on_change: Callable[[dict[str, Any]], Any] | None = None,
                  on_quality: Callable[[dict[str, Any]], Any] | None = None,
                  store_batch: int = STORE_BATCH) -> RebuildReport:
    # What a page allocates is dropped with it (memory stays bounded) and seldom cyclic: the collector
    # runs every 50,000 allocations, not every 700 (it took about 12% of the CPU), what start-up
    # loaded is frozen out of it (Deadlines.start), and its thresholds come back after.
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        return await _rebuild(app, batch, progress, dry_run=dry_run, on_change=on_change, on_quality=on_quality,
                              store_batch=store_batch)
    finally:
        gc.set_threshold(*thresholds)


async def _rebuild(app: Deadlines, batch: int, progress: Callable[[str, int], Any], *, dry_run: bool,
                   on_change: Callable[[dict[str, Any]], Any] | None,
                   on_quality: Callable[[dict[str, Any]], Any] | None, store_batch: int) -> RebuildReport:
    report = RebuildReport(dry_run=dry_run)
    started = time.monotonic()
    async with app.sessions() as session:
        watermark = await DeadlinesRepository(session).latest_received_at()
    pending = await _replay(app, report, progress, dry_run, max(store_batch, batch), watermark is not None)
    report.replay_seconds = time.monotonic() - started

    async with app.sessions() as session:
        repo = DeadlinesRepository(session)
        total = await repo.count_cases()
        if pending:  # a dry run: the cases only the replay has
            total += len(pending) - len(await repo.cases_received_since(list(pending), None))
    bar = progress("previewing cases" if dry_run else "recomputing cases", total)
    pace = Pace(total)
    relaying = Behind()  # the outbox relayed after each page, while the next page is recomputed
    try:
        async for chunk in _case_pages(app, batch, pending):
            if dry_run:
                await _preview(app, report, chunk, pending, on_change, on_quality)
                done_text = f"{report.published:,} changes found"
            else:
                async with app.sessions() as session:
                    events_changed = await DeadlinesRepository(session).cases_received_since(chunk, watermark)
                result = await app.service.recompute_cases(chunk, events_changed)
                quality = result.published.get(DATA_QUALITY_EVENT_TYPE, 0)
                report.data_quality_updates += quality
                report.published += sum(result.published.values()) - quality
                await relaying.submit(app.relay.drain())
                done_text = f"{report.published:,} changes published"
            report.cases += len(chunk)
            bar.update(report.cases, f"{done_text}, {pace.text(report.cases, 'cases')}")
        await relaying.wait()
    finally:
        await relaying.settle()  # interrupted: what was committed is still relayed (the outbox is the record)
    bar.close()
    report.seconds = time.monotonic() - started
    log.info("deadlines.rebuilt", dry_run=dry_run, read=report.read, stored=report.stored, invalid=report.invalid,
             cases=report.cases, published=report.published, data_quality_updates=report.data_quality_updates,
             seconds=round(report.seconds, 1))
    return report


def _event_id(value: bytes) -> str | None:
    """A record's event id, read without validating the record (None when it has none)."""
    try:
        raw = json.loads(value)
    except ValueError:
        return None
    event_id = raw.get("id") if isinstance(raw, dict) else None
    return event_id if isinstance(event_id, str) else None


async def _replay(app: Deadlines, report: RebuildReport, progress: Callable[[str, int], Any], dry_run: bool,
                  store_batch: int, history_stored: bool) -> dict[str, list[dict[str, Any]]]:
    """Read the topic up to its end as of now, storing its new events (a dry run: holding them).
    With ``history_stored``, the events already processed are recognised by their id and skipped
    without being validated again. Returns the dry run's events by case (empty for a real run)."""
    pending: dict[str, list[dict[str, Any]]] = {}
    pending_ids: set[str] = set()
    kafka = app.settings.kafka
    topic = kafka.topic(topics.CASE_EVENTS)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None, enable_auto_commit=False,
                                max_poll_records=store_batch, fetch_max_bytes=64 * 1024 * 1024,
                                max_partition_fetch_bytes=8 * 1024 * 1024, **aiokafka_security(kafka))
    storing = Behind()  # a batch is stored while the next one is read and parsed
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
        total = sum(ends[tp] - begins[tp] for tp in tps)
        bar = progress("replaying case events", total)
        pace = Pace(total)
        buffered: list[bytes] = []

        async def store(values: list[bytes]) -> None:
            if history_stored:  # a re-run, a change of law: most events are known, and not parsed again
                ids = [_event_id(v) for v in values]
                async with app.sessions() as session:
                    known = await DeadlinesRepository(session).known_event_ids(CONSUMER, [i for i in ids if i])
                values = [v for v, i in zip(values, ids, strict=True) if i is None or i not in known]
            events: list[CaseEventEnvelope] = []
            for value in values:
                try:
                    events.append(parse_case_event(value))
                except ValidationError:  # the consumer parked these: skip them here too
                    report.invalid += 1
            if dry_run:
                for event in await app.service.unknown_events(events):
                    if event.id not in pending_ids:
                        pending_ids.add(event.id)
                        pending.setdefault(event.subject, []).append(event_row(event))
                        report.stored += 1
            else:
                report.stored += (await app.service.store_history(events)).events

        while remaining:
            fetched = await consumer.getmany(*remaining, timeout_ms=1000, max_records=store_batch)
            for tp, records in fetched.items():
                end = remaining.get(tp, -1)
                for record in records:
                    if record.offset >= end:
                        continue
                    report.read += 1
                    try:
                        check_json(record.value or b"", app.settings.dead_letters)
                        buffered.append(record.value or b"")
                    except Undecodable:  # the consumer parked these: skip them here too
                        report.invalid += 1
                if records and records[-1].offset + 1 >= end:
                    remaining.pop(tp, None)
            if len(buffered) >= store_batch:
                await storing.submit(store(buffered))
                buffered = []
            if not fetched:
                for tp in list(remaining):
                    if await consumer.position(tp) >= remaining[tp]:
                        remaining.pop(tp)
            bar.update(report.read, f"{report.stored:,} new, {pace.text(report.read, 'events')}")
        if buffered:
            await storing.submit(store(buffered))
        await storing.wait()
        bar.close()
    finally:
        storing.cancel()
        await consumer.stop()
    return pending


async def _case_pages(app: Deadlines, size: int, pending: dict[str, list[dict[str, Any]]]
                      ) -> AsyncIterator[list[str]]:
    """Every case id, in order, a page of at most ``size`` at a time: the stored ones read page by page
    (keyset), merged with a dry run's cases that only have events not yet stored."""
    extra = sorted(pending)
    after: str | None = None
    while True:
        async with app.sessions() as session:
            page = await DeadlinesRepository(session).case_ids_after(after, size)
        upto = bisect.bisect_right(extra, page[-1]) if len(page) == size else len(extra)
        start = 0 if after is None else bisect.bisect_right(extra, after)
        merged = sorted(set(page).union(extra[start:upto]))
        for i in range(0, len(merged), size):
            yield merged[i:i + size]
        if len(page) < size:
            return
        after = page[-1]


async def _preview(app: Deadlines, report: RebuildReport, chunk: list[str], pending: dict[str, list[dict[str, Any]]],
                   on_change: Callable[[dict[str, Any]], Any] | None,
                   on_quality: Callable[[dict[str, Any]], Any] | None) -> None:
    def quality(case_id: str, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        report.data_quality_updates += 1
        if on_quality is not None:
            on_quality(describe_quality(case_id, old, new))

    changes = await app.service.preview_cases(chunk, {c: pending[c] for c in chunk if c in pending}, quality)
    report.published += len(changes)
    report.changed_cases += len({case_id for case_id, _ in changes})
    for case_id, change in changes:
        described = describe(case_id, change)
        report.by_change[described["change"]] += 1
        report.by_reason[described["reason"]] += 1
        if on_change is not None:
            on_change(described)
