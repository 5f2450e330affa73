"""The notifier's composition root: channels, database, Kafka, sender loop, scheduler, HTTP.
Nothing connects at import; tests pass their own channels, clock, calendar and retry policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.notifier.adapters import tables
from services.notifier.adapters.channels import Channel
from services.notifier.adapters.crypto import crypto_from_settings
from services.notifier.adapters.file_sink import FileSinkChannel
from services.notifier.adapters.notify import NotifyClient
from services.notifier.adapters.sms_gateway import SmsGatewayChannel
from services.notifier.adapters.smtp import SmtpChannel
from services.notifier.domain.digests import WorkingDays
from services.notifier.domain.messages import render
from services.notifier.domain.policy import RetryPolicy
from services.notifier.entrypoints.http import build_router as build_http_router
from services.notifier.entrypoints.kafka import build_router
from services.notifier.entrypoints.scheduler import build_scheduler
from services.notifier.service_layer.handlers import NotifierService
from shared.db import create_engine_for, session_factory
from shared.http_ops import ops_router
from shared.kafka import build_broker, build_producer
from shared.logging import get_logger
from shared.messaging.outbox import OutboxRelay
from shared.runtime import ServiceRuntime, prepare_service, readiness_checks
from shared.settings import NotifierSettings, Settings
from shared.working_days import WorkingDayCalendar

SERVICE = "notifier"
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
log = get_logger(__name__)


class LazyWorkingDayCalendar:
    """The England-and-Wales working-day calendar (``shared.working_days``), built at first use: it
    is only needed by the morning job, so a bad override file cannot stop texts and alerts (the
    morning job logs the error and tries again the next morning)."""

    def __init__(self, overrides: Path | None = None) -> None:
        self._overrides = overrides
        self._calendar: WorkingDays | None = None

    def is_working_day(self, day: date) -> bool:
        if self._calendar is None:
            self._calendar = WorkingDayCalendar.from_override_file(self._overrides)
        return self._calendar.is_working_day(day)


def configuration_warnings(cfg: NotifierSettings) -> list[str]:
    """Settings that leave part of the service unable to work, said once at start-up."""
    warnings = []
    if not cfg.council_phone:
        warnings.append("EHC_NOTIFIER__COUNCIL_PHONE is empty: a family cannot be told that a deadline was missed "
                        "(the message must say whom to call), so each such message fails and the caseworker is told")
    if "notify" in (cfg.email_channel, cfg.sms_channel) and cfg.notify_callback_token is None:
        warnings.append("EHC_NOTIFIER__NOTIFY_CALLBACK_TOKEN is not set: GOV.UK Notify's delivery receipts are "
                        "refused, so statuses stay at 'sent'")
    if not cfg.admin_tokens:
        warnings.append("EHC_NOTIFIER__ADMIN_TOKENS is empty: the subscriptions API refuses every request "
                        "(the command line and the subscriptions file still work)")
    return warnings


def build_channels(cfg: NotifierSettings, overrides: dict[str, Channel] | None = None) -> dict[str, Channel]:
    """Only the channels the settings use are built (a Notify key is needed only to use Notify)."""
    channels: dict[str, Channel] = {}
    wanted = {cfg.email_channel, cfg.sms_channel}
    if "smtp" in wanted:
        channels["smtp"] = SmtpChannel.from_settings(cfg, pool_size=cfg.smtp_pool_size)
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
    scheduler: AsyncIOScheduler

    async def start(self, *, consume: bool = True) -> None:
        cfg = self.settings.notifier
        for warning in configuration_warnings(cfg):
            log.warning("notifier.configuration", problem=warning)
        await prepare_service(self.settings, SERVICE, self.engine, MIGRATIONS, self.producer, self.relay)
        for caseworker_id, email in cfg.caseworker_directory.items():
            await self.service.set_caseworker_email(caseworker_id, email)
        if cfg.subscriptions_file is not None:
            await self.service.subscriptions.load_file(cfg.subscriptions_file)
        await self.service.sweep_stuck()
        await self.catch_up()
        self.scheduler.start()
        if consume:
            await self.broker.start()

    async def catch_up(self) -> int:
        """A morning the service was down for: plan its digests now (idempotent, so harmless if done)."""
        try:
            return await self.service.run_morning(catch_up=True)
        except Exception as exc:  # never stop the service from starting: alerts matter more
            log.error("notifier.morning_catch_up_failed", error=type(exc).__name__)
            return 0

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.broker.stop()
        await self.service.stop_sender()  # sends in flight finish (or are settled) while the database is open
        await self.relay.drain()
        await self.producer.stop()
        for channel in {id(c): c for c in self.channels.values()}.values():
            await channel.aclose()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        return await readiness_checks(self.engine, self.broker)

    async def send_loop(self) -> None:
        await self.service.run_sender()

    def runtime(self) -> ServiceRuntime:
        cfg = self.settings.notifier
        return ServiceRuntime(name=SERVICE, start=self.start, stop=self.stop,
                              background=[self.relay.run, self.send_loop],
                              http_app=self.api, http_host=cfg.http_host, http_port=cfg.http_port)


def bootstrap(settings: Settings, channels: dict[str, Channel] | None = None,
              clock: Callable[[], datetime] | None = None, calendar: WorkingDays | None = None,
              retry: RetryPolicy | None = None) -> Notifier:
    cfg = settings.notifier
    engine = create_engine_for(settings, SERVICE)
    sessions = session_factory(engine)
    producer = build_producer(settings.kafka, SERVICE)
    relay = OutboxRelay(sessions, tables.outbox, producer)
    crypto = crypto_from_settings(cfg.encryption_key.get_secret_value() if cfg.encryption_key else None,
                                  settings.environment, Path("var") / "notifier.key")
    built = build_channels(cfg, channels)
    clock = clock or (lambda: datetime.now(UTC))
    service = NotifierService(sessions, settings.kafka, cfg, crypto, built, render, clock=clock, retry=retry,
                              calendar=calendar or LazyWorkingDayCalendar(cfg.bank_holiday_overrides))
    broker = build_broker(settings.kafka, SERVICE)

    async def after_batch() -> None:
        await relay.drain()

    broker.include_router(build_router(settings.kafka, service, after_batch))
    scheduler = build_scheduler(service.run_morning, cfg.digest_time)
    notifier = Notifier(settings, engine, sessions, producer, relay, service, broker, FastAPI(), built, scheduler)
    api = FastAPI(title="EHC notifier", version="1")
    api.include_router(ops_router(notifier.readiness))
    api.include_router(build_http_router(service, cfg.admin_tokens, cfg.notify_callback_token))
    notifier.api = api
    return notifier
