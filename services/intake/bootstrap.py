"""Intake's composition root: builds the database, Kafka clients, handlers and HTTP app.
Nothing connects at import; tests build it with their own settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.intake.adapters import tables
from services.intake.entrypoints.http import build_webhook_app
from services.intake.entrypoints.kafka import build_router
from services.intake.service_layer.handlers import Converter, IntakeService
from shared.db import create_engine_for, is_sqlite, migrate, session_factory
from shared.kafka import build_broker, build_producer, ensure_topics, recent_event_ids
from shared.messaging.outbox import OutboxRelay
from shared.runtime import ServiceRuntime
from shared.settings import Settings

SERVICE = "intake"
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


@dataclass
class Intake:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    relay: OutboxRelay
    service: IntakeService
    broker: KafkaBroker
    webhook: FastAPI
    producer: object
    sources: dict[str, tuple[str, Converter]] = field(default_factory=dict)

    async def start(self, *, consume: bool = True) -> None:
        if self.settings.kafka.create_topics:
            await ensure_topics(self.settings.kafka)
        await migrate(self.engine, SERVICE, MIGRATIONS, self._schema())
        await self.producer.start()  # type: ignore[attr-defined]
        await self.relay.reconcile(partial(recent_event_ids, self.settings.kafka))
        if consume:
            await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()
        await self.relay.drain()
        await self.producer.stop()  # type: ignore[attr-defined]
        await self.engine.dispose()

    def _schema(self) -> str | None:
        return None if is_sqlite(self.engine) else self.settings.schema_for(SERVICE)

    async def readiness(self) -> dict[str, bool]:
        checks = {"database": True, "kafka": True}
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            checks["database"] = False
        try:
            await self.broker.ping(timeout=2)
        except Exception:
            checks["kafka"] = False
        return checks

    def runtime(self) -> ServiceRuntime:
        cfg = self.settings.intake
        return ServiceRuntime(name=SERVICE, start=self.start, stop=self.stop, background=[self.relay.run],
                              http_app=self.webhook, http_host=cfg.http_host, http_port=cfg.http_port)


def bootstrap(settings: Settings, sources: dict[str, tuple[str, Converter]] | None = None,
              webhook_converters: dict[str, Converter] | None = None) -> Intake:
    engine = create_engine_for(settings, SERVICE)
    sessions = session_factory(engine)
    producer = build_producer(settings.kafka, SERVICE)
    relay = OutboxRelay(sessions, tables.outbox, producer)
    service = IntakeService(sessions, settings.kafka)
    broker = build_broker(settings.kafka, SERVICE)
    broker.include_router(build_router(settings, service, relay, sources))
    intake = Intake(settings, engine, sessions, relay, service, broker, webhook=FastAPI(), producer=producer,
                    sources=sources or {})
    intake.webhook = build_webhook_app(settings.intake, service, relay, sessions, intake.readiness,
                                       webhook_converters)
    return intake
