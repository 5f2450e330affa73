"""Intake's composition root: builds the database, Kafka clients, handlers and HTTP app.
Nothing connects at import; tests build it with their own settings.

Sources come from the settings: ``source_topics`` (mapping name -> a source system's own Kafka
topic, read by one batch subscriber each, besides intake's own canonical topic) and
``webhook_mappings`` (webhook source -> mapping name; other webhook sources send canonical
events). Mappings are the shipped examples plus the YAML files of ``mappings_dir`` (which win on
a name clash). The case id key hashes councils' references into opaque case ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.intake.adapters import tables
from services.intake.config import ConfigError, available_mappings, case_id_key, find_mapping
from services.intake.domain.mapping import MappingError
from services.intake.entrypoints.http import build_webhook_app
from services.intake.entrypoints.kafka import build_router
from services.intake.service_layer.handlers import Converter, IntakeService, mapping_converter
from shared.db import create_engine_for, session_factory
from shared.dead_letters import DeadLetters, dead_letter_cipher
from shared.kafka import build_broker, build_producer
from shared.messaging.outbox import OutboxRelay
from shared.runtime import ServiceRuntime, prepare_service, readiness_checks
from shared.settings import Settings

__all__ = ["ConfigError", "Intake", "bootstrap", "case_id_key", "configured_sources"]

SERVICE = "intake"
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
# One relay pass publishes a whole consumed batch (500 messages can stage an event, a contact update
# or a dead letter each, so up to about 1,000 rows): one pass per batch instead of three.
RELAY_BATCH = 2000


def configured_sources(settings: Settings) -> tuple[dict[str, tuple[str, Converter]], dict[str, Converter]]:
    """(mapping name -> (topic, converter)) for source topics, (webhook source -> converter) for webhooks."""
    cfg = settings.intake
    if settings.environment == "production":
        case_id_key(settings)  # required in production, whatever the sources: fail at start, not at the first file
    for source, owned in cfg.webhook_sources.items():
        if source not in cfg.webhook_secrets:
            raise ConfigError(f"EHC_INTAKE__WEBHOOK_SOURCES: webhook source {source!r} has no secret in "
                              "EHC_INTAKE__WEBHOOK_SECRETS")
        if not owned or not all(value.strip() for value in owned):
            raise ConfigError(f"EHC_INTAKE__WEBHOOK_SOURCES: webhook source {source!r} has an empty source")
    if not cfg.source_topics and not cfg.webhook_mappings:
        return {}, {}
    try:
        mappings = available_mappings(settings)
    except MappingError as exc:
        raise ConfigError(str(exc)) from None
    key = case_id_key(settings)
    topics_: dict[str, tuple[str, Converter]] = {}
    for name, topic in cfg.source_topics.items():
        mapping = find_mapping(mappings, name, f"EHC_INTAKE__SOURCE_TOPICS {topic}")
        if not topic.strip():
            raise ConfigError(f"EHC_INTAKE__SOURCE_TOPICS: mapping {name} has an empty topic name")
        topics_[name] = (topic, mapping_converter(mapping, key))
    webhooks: dict[str, Converter] = {}
    for source, name in cfg.webhook_mappings.items():
        if source not in cfg.webhook_secrets:
            raise ConfigError(f"EHC_INTAKE__WEBHOOK_MAPPINGS: webhook source {source!r} has no secret in "
                              "EHC_INTAKE__WEBHOOK_SECRETS")
        webhooks[source] = mapping_converter(find_mapping(mappings, name, f"EHC_INTAKE__WEBHOOK_MAPPINGS {source}"),
                                             key)
    return topics_, webhooks


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
    dead_letters: DeadLetters | None = None
    consuming: bool = False

    async def start(self, *, consume: bool = True) -> None:
        await prepare_service(self.settings, SERVICE, self.engine, MIGRATIONS, self.producer, self.relay)
        if consume:
            await self.broker.start()
            self.consuming = True

    async def stop(self) -> None:
        if self.consuming:
            await self.broker.stop()
            self.consuming = False
        await self.relay.drain()
        await self.producer.stop()  # type: ignore[attr-defined]
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        checks = await readiness_checks(self.engine, self.broker)
        if checks["database"] and self.dead_letters is not None:
            await self.dead_letters.refresh_gauge()
        return checks

    def runtime(self) -> ServiceRuntime:
        cfg = self.settings.intake
        return ServiceRuntime(name=SERVICE, start=self.start, stop=self.stop, background=[self.relay.run],
                              http_app=self.webhook, http_host=cfg.http_host, http_port=cfg.http_port)


def bootstrap(settings: Settings, sources: dict[str, tuple[str, Converter]] | None = None,
              webhook_converters: dict[str, Converter] | None = None) -> Intake:
    """Build intake. ``sources`` and ``webhook_converters`` add to (and win over) the configured ones.
    Raises :class:`ConfigError` for unusable settings."""
    topic_sources, webhook_sources = configured_sources(settings)
    topic_sources.update(sources or {})
    webhook_sources.update(webhook_converters or {})
    engine = create_engine_for(settings, SERVICE)
    sessions = session_factory(engine)
    producer = build_producer(settings.kafka, SERVICE)
    relay = OutboxRelay(sessions, tables.outbox, producer, batch_size=RELAY_BATCH,
                        retention=settings.outbox_retention)
    relay.wake_after_commits(sessions)  # a committed outbox row goes out at once, whoever wrote it
    service = IntakeService(sessions, settings.kafka, dead_letter_cipher(settings))
    broker = build_broker(settings.kafka, SERVICE)
    dead_letters = DeadLetters(SERVICE, settings, sessions, tables.held_records, producer)
    broker.include_router(build_router(settings, service, relay, dead_letters, topic_sources))
    intake = Intake(settings, engine, sessions, relay, service, broker, webhook=FastAPI(), producer=producer,
                    sources=topic_sources, dead_letters=dead_letters)
    intake.webhook = build_webhook_app(settings.intake, service, relay, sessions, intake.readiness, webhook_sources)
    return intake
