"""The notifier's composition root: channels, database, Kafka, sender loop, HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.notifier.adapters import tables
from services.notifier.adapters.channels import Channel
from services.notifier.adapters.crypto import crypto_from_settings
from services.notifier.adapters.file_sink import FileSinkChannel
from services.notifier.adapters.notify import NotifyClient
from services.notifier.adapters.sms_gateway import SmsGatewayChannel
from services.notifier.adapters.smtp import SmtpChannel
from services.notifier.domain.messages import render
from services.notifier.entrypoints.kafka import build_router
from services.notifier.service_layer.handlers import NotifierService
from shared.db import create_engine_for, is_sqlite, migrate, session_factory
from shared.http_ops import ops_router
from shared.kafka import build_broker, build_producer, ensure_topics, recent_event_ids
from shared.messaging.outbox import OutboxRelay
from shared.runtime import ServiceRuntime
from shared.settings import NotifierSettings, Settings

SERVICE = "notifier"
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


def build_channels(cfg: NotifierSettings, overrides: dict[str, Channel] | None = None) -> dict[str, Channel]:
    """Only the channels the settings use are built (a Notify key is needed only to use Notify)."""
    channels: dict[str, Channel] = {}
    wanted = {cfg.email_channel, cfg.sms_channel}
    if "smtp" in wanted:
        channels["smtp"] = SmtpChannel(cfg.smtp_host, cfg.smtp_port, cfg.mail_from, tls=cfg.smtp_tls,
                                       username=cfg.smtp_username,
                                       password=cfg.smtp_password.get_secret_value() if cfg.smtp_password else None)
    if "notify" in wanted:
        client = NotifyClient.from_settings(cfg)
        channels["notify_email"] = channels["notify_sms"] = client
    if "sms_gateway" in wanted:
        channels["sms_gateway"] = SmsGatewayChannel.from_settings(cfg)
    if "file" in wanted:
        channels["file"] = FileSinkChannel(cfg.file_sink_dir, cfg.mail_from)
    channels.update(overrides or {})
    return channels


@dataclass
class Notifier:
    """Notifier: caseworkers, families and managers told in time, exactly once."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    relay: OutboxRelay
    service: NotifierService
    broker: KafkaBroker
    api: FastAPI
    channels: dict[str, Channel]

    async def start(self, *, consume: bool = True) -> None:
        if self.settings.kafka.create_topics:
            await ensure_topics(self.settings.kafka)
        await migrate(self.engine, SERVICE, MIGRATIONS,
                      None if is_sqlite(self.engine) else self.settings.schema_for(SERVICE))
        await self.producer.start()
        await self.relay.reconcile(partial(recent_event_ids, self.settings.kafka))
        for caseworker_id, email in self.settings.notifier.caseworker_directory.items():
            await self.service.set_caseworker_email(caseworker_id, email)
        await self.service.sweep_stuck()
        if consume:
            await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()
        await self.relay.drain()
        await self.producer.stop()
        for channel in {id(c): c for c in self.channels.values()}.values():
            await channel.aclose()
        await self.engine.dispose()

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

    async def send_loop(self) -> None:
        await self.service.run_sender()

    def runtime(self) -> ServiceRuntime:
        cfg = self.settings.notifier
        return ServiceRuntime(name=SERVICE, start=self.start, stop=self.stop,
                              background=[self.relay.run, self.send_loop],
                              http_app=self.api, http_host=cfg.http_host, http_port=cfg.http_port)


def bootstrap(settings: Settings, channels: dict[str, Channel] | None = None, clock: Any = None) -> Notifier:
    cfg = settings.notifier
    engine = create_engine_for(settings, SERVICE)
    sessions = session_factory(engine)
    producer = build_producer(settings.kafka, SERVICE)
    relay = OutboxRelay(sessions, tables.outbox, producer)
    crypto = crypto_from_settings(cfg.encryption_key.get_secret_value() if cfg.encryption_key else None,
                                  settings.environment, Path("var") / "notifier.key")
    built = build_channels(cfg, channels)
    kwargs = {"clock": clock} if clock else {}
    service = NotifierService(sessions, settings.kafka, cfg, crypto, built, render, **kwargs)
    broker = build_broker(settings.kafka, SERVICE)

    async def after_batch() -> None:
        await relay.drain()

    broker.include_router(build_router(settings.kafka, service, after_batch))
    notifier = Notifier(settings, engine, sessions, producer, relay, service, broker, FastAPI(), built)
    api = FastAPI(title="EHC notifier", version="1")
    api.include_router(ops_router(notifier.readiness))
    notifier.api = api
    return notifier
