"""The deadlines service's composition root: engine, database, Kafka, scheduler, read API.
Nothing connects at import; tests pass their own settings and clock."""

from __future__ import annotations

import asyncio
import functools
import gc
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.deadlines.adapters import tables
from services.deadlines.adapters.records import record_from_row
from services.deadlines.adapters.repository import DeadlinesRepository
from services.deadlines.domain.calendar import TermCalendar, WorkingDayCalendar
from services.deadlines.domain.engine import compute
from services.deadlines.domain.events import CaseEventRecord
from services.deadlines.domain.model import Deadline
from services.deadlines.domain.rules import RuleSetHistory, load_ruleset_history
from services.deadlines.entrypoints.http import build_api
from services.deadlines.entrypoints.http_tools import build_tools_router
from services.deadlines.entrypoints.kafka import build_router
from services.deadlines.entrypoints.scheduler import build_scheduler, fire_all_due
from services.deadlines.service_layer.handlers import BatchResult, Clock, DeadlinesService, SystemClock
from shared import topics
from shared.db import create_engine_for, session_factory
from shared.dead_letters import DeadLetters
from shared.kafka import build_broker, build_producer, consumer_lag
from shared.logging import get_logger, kafka_connection_state
from shared.messaging.outbox import OutboxRelay
from shared.runtime import ServiceRuntime, prepare_service, readiness_checks
from shared.settings import DeadlinesSettings, Settings

SERVICE = "deadlines"
log = get_logger(__name__)
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
# Rows per relay pass: a consumed batch, a timers batch or a rebuild's page of cases each stage up to
# a few thousand deadline events; one pass (two statements, one commit) for them rather than several.
RELAY_BATCH = 2000

EVENTS_PROCESSED = Counter("ehc_deadlines_case_events_total", "Case events processed", ["outcome"])
DEADLINE_EVENTS = Counter("ehc_deadlines_published_total", "Deadline events published", ["type"])
DEADLINES_BY_STATUS = Gauge("ehc_deadlines_by_status", "Stored deadlines by status", ["status"])
CASE_PROBLEMS = Counter("ehc_deadlines_case_problems_total", "Recomputations stopped by a case's data-quality "
                        "problem (shown by /v1/problems)")
TIMERS_FIRED = Counter("ehc_deadlines_timers_fired_total", "Timers fired")
_published = functools.cache(DEADLINE_EVENTS.labels)  # one child per event type, looked up once
CONSUMER_LAG = Gauge("ehc_deadlines_consumer_lag", "Case events not yet consumed", ["partition"])


class DomainEngine:
    """The pure engine with this deployment's rule-set history and calendars."""

    def __init__(self, cfg: DeadlinesSettings, ruleset: RuleSetHistory | None = None) -> None:
        self.ruleset = ruleset or load_ruleset_history(cfg.ruleset)
        self.calendar = WorkingDayCalendar.from_override_file(cfg.bank_holiday_overrides)
        self.terms = TermCalendar.from_file(cfg.term_calendar)
        self.due_soon = cfg.due_soon_working_days

    def compute(self, events: list[CaseEventRecord], as_of: date) -> list[Deadline]:
        return compute(events, self.ruleset, self.calendar, as_of, terms=self.terms,
                       due_soon_working_days=self.due_soon)

    def record(self, row: Any) -> CaseEventRecord:
        return record_from_row(row)


@dataclass
class Deadlines:
    """Deadlines service: every case stored, every deadline raised on time."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    relay: OutboxRelay
    service: DeadlinesService
    broker: KafkaBroker
    scheduler: AsyncIOScheduler
    api: FastAPI
    domain: DomainEngine
    dead_letters: DeadLetters | None = None

    async def start(self, *, consume: bool = True, schedule: bool = True) -> None:
        await prepare_service(self.settings, SERVICE, self.engine, MIGRATIONS, self.producer, self.relay)
        # What start-up loaded (modules, rule set, schemas, mappers) lives as long as the process:
        # frozen out of the collector, a full collection no longer walks it (it paused the consumer
        # for 200-300 ms, the tail of the case-event-to-deadline-event latency).
        gc.collect()
        gc.freeze()
        # A batch makes tens of thousands of objects that live until it ends (rows, records, events):
        # at the default threshold (700) the collector walked them again and again, about a tenth of
        # a backlog's CPU; at 10,000 a young collection is still about a millisecond.
        gc.set_threshold(10_000, 20, 20)
        if schedule:
            await fire_all_due(self.service, self.after_batch)  # timers missed while down fire now
            self.scheduler.start()
        if consume:
            await self.broker.start()

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.broker.stop()
        await self.relay.drain()
        await self.producer.stop()
        await self.engine.dispose()

    async def after_batch(self) -> None:
        await self.relay.drain()

    async def readiness(self) -> dict[str, bool]:
        checks = await readiness_checks(self.engine, self.broker)
        if checks["database"]:
            async with self.sessions() as session:
                for status, n in (await DeadlinesRepository(session).count_by_status()).items():
                    DEADLINES_BY_STATUS.labels(status).set(n)
            if self.dead_letters is not None:
                await self.dead_letters.refresh_gauge()
        return checks

    async def watch_lag(self, every_seconds: float = 15.0) -> None:
        """Publish the consumer lag on ehc.case-events as a Prometheus gauge."""
        kafka = self.settings.kafka
        while True:
            try:
                lag = await consumer_lag(kafka, kafka.group("ehc-deadlines"), kafka.topic(topics.CASE_EVENTS))
                for partition, n in lag.items():
                    CONSUMER_LAG.labels(str(partition)).set(n)
            except Exception as exc:  # metrics must never take the service down
                if not kafka_connection_state.down:  # an outage is said once (shared.logging)
                    log.warning("deadlines.lag_unavailable", error=type(exc).__name__)
            await asyncio.sleep(every_seconds)

    def runtime(self) -> ServiceRuntime:
        cfg = self.settings.deadlines
        return ServiceRuntime(name=SERVICE, start=self.start, stop=self.stop,
                              background=[self.relay.run, self.watch_lag],
                              http_app=self.api, http_host=cfg.http_host, http_port=cfg.http_port)


def count_batch(result: BatchResult) -> None:
    EVENTS_PROCESSED.labels("processed").inc(result.events)
    EVENTS_PROCESSED.labels("duplicate").inc(result.duplicates)


def bootstrap(settings: Settings, clock: Clock | None = None, ruleset: RuleSetHistory | None = None) -> Deadlines:
    cfg = settings.deadlines
    domain = DomainEngine(cfg, ruleset)
    engine = create_engine_for(settings, SERVICE)
    sessions = session_factory(engine)
    # No linger: the relay hands a whole pass to the producer before it yields, so a pass is batched
    # anyway, and a lone deadline event goes out at once.
    producer = build_producer(settings.kafka, SERVICE, linger_ms=0)
    # Woken after every consumed batch (after_consumed): the idle poll is only the safety net.
    relay = OutboxRelay(sessions, tables.outbox, producer, batch_size=RELAY_BATCH, retention=settings.outbox_retention,
                        idle_seconds=1.0)
    service = DeadlinesService(sessions, settings.kafka, domain, clock or SystemClock(), cfg.reminder_working_days,
                               cfg.due_soon_working_days, on_published=lambda t: _published(t).inc(),
                               on_problem=CASE_PROBLEMS.inc)
    broker = build_broker(settings.kafka, SERVICE)
    app = Deadlines(settings, engine, sessions, producer, relay, service, broker,
                    scheduler=AsyncIOScheduler(), api=FastAPI(), domain=domain)

    async def after_batch() -> None:
        await relay.drain()

    async def after_consumed() -> None:
        """The batch is committed: wake the relay (its own loop publishes) and let the offsets be
        committed now; the outbox holds the events until they are published."""
        relay.wake()

    app.dead_letters = DeadLetters(SERVICE, settings, sessions, tables.held_records, producer)
    broker.include_router(build_router(settings.kafka, service, after_consumed, app.dead_letters,
                                       settings.dead_letters, on_batch=count_batch))
    app.scheduler = build_scheduler(service, cfg.tick_seconds, after_batch)
    app.api = build_api(sessions, cfg.api_tokens, app.readiness, domain.calendar, service.clock,
                        settings.http_max_body_bytes)
    app.api.include_router(build_tools_router(service, domain, sessions))
    return app
