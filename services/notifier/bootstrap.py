"""The notifier's composition root: channels, database, Kafka, sender loop, scheduler, HTTP.
Nothing connects at import; tests pass their own channels, clock, calendar and retry policy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

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
from services.notifier.domain.messages import FIELD_HARD_MAX_LENGTHS, FIELD_MAX_LENGTHS, TEMPLATES, render
from services.notifier.domain.policy import RetryPolicy
from services.notifier.entrypoints.http import build_router as build_http_router
from services.notifier.entrypoints.kafka import build_router
from services.notifier.entrypoints.scheduler import build_scheduler
from services.notifier.service_layer.handlers import NotifierService
from services.notifier.service_layer.short_links import ShortLinks
from shared.db import create_engine_for, session_factory
from shared.dead_letters import DeadLetters
from shared.family_links import SHORT_CODE_LENGTH, link_url, secret_from_settings, short_link_url
from shared.http_ops import RequestLimits, ops_router
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


class ConfigurationError(RuntimeError):
    """The settings would make messages fail when they are sent: refused at start-up in production."""


#: Template variables that come from settings: the variable -> (the setting's variable, its value).
def _template_settings(cfg: NotifierSettings, short_link_base: str | None = None) -> dict[str, tuple[str, str]]:
    link = (("EHC_NOTIFIER__SHORT_LINK_BASE", short_link_url(short_link_base, "x" * SHORT_CODE_LENGTH))
            if short_link_base is not None else
            ("EHC_NOTIFIER__FAMILY_LINK_BASE", cfg.family_link_base or cfg.info_url))
    return {
        "council_name": ("EHC_NOTIFIER__COUNCIL_NAME", cfg.council_name),
        "council_phone": ("EHC_NOTIFIER__COUNCIL_PHONE", cfg.council_phone),
        "sendiass_contact": ("EHC_NOTIFIER__SENDIASS_CONTACT", cfg.sendiass_contact),
        "info_url": ("EHC_NOTIFIER__INFO_URL", cfg.info_url),
        "link": link,
        "case_url": ("EHC_NOTIFIER__CASE_URL_BASE", cfg.case_url_base),
    }


def template_setting_problems(cfg: NotifierSettings, short_link_base: str | None = None
                              ) -> tuple[list[str], list[str]]:
    """(errors, warnings) about the settings the templates read. An error: a template needs a variable
    whose setting is empty (every such message would fail when sent), or a value longer than a text
    takes. A warning: a value longer than one SMS fragment allows (texts go, in more fragments).
    ``short_link_base``: texts carry short links to the web front at this address (family links on)."""
    values = _template_settings(cfg, short_link_base)
    errors, warnings = [], []
    for variable, (env, value) in values.items():
        needing = sorted(name for name, spec in TEMPLATES.items() if variable in spec.required)
        if needing and not value.strip():
            errors.append(f"{env} is empty, but {', '.join(needing)} must show it: each such message would fail "
                          "when sent")
        hard, soft = FIELD_HARD_MAX_LENGTHS.get(variable), FIELD_MAX_LENGTHS.get(variable)
        if hard is not None and len(value) > hard:
            errors.append(f"{env} is longer than {hard} characters: texts to families would be refused")
        elif soft is not None and len(value) > soft:
            warnings.append(f"{env} is longer than {soft} characters ({len(value)}): texts to families take more "
                            f"SMS fragments than they need (set {env} to a shorter address)"
                            if variable == "link" else
                            f"{env} is longer than {soft} characters ({len(value)}): texts to families take more "
                            "SMS fragments than they need")
    return errors, warnings


def check_template_settings(cfg: NotifierSettings, environment: str,
                            say: Callable[[str], None] | None = None, short_link_base: str | None = None) -> None:
    """At start-up: refuse to start in production when messages would fail at send time; elsewhere say
    so loudly (an error line each), and the warnings."""
    errors, warnings = template_setting_problems(cfg, short_link_base)
    if errors and environment == "production":
        raise ConfigurationError("the notifier's settings would make messages fail: " + "; ".join(errors))
    for problem in errors:
        (say or (lambda text: log.error("notifier.configuration_error", problem=text)))(problem)
    for problem in warnings:
        (say or (lambda text: log.warning("notifier.configuration", problem=text)))(problem)


def configuration_warnings(cfg: NotifierSettings) -> list[str]:
    """Settings that leave part of the service unable to work, said once at start-up."""
    warnings = []
    if "notify" in (cfg.email_channel, cfg.sms_channel) and cfg.notify_callback_token is None:
        warnings.append("EHC_NOTIFIER__NOTIFY_CALLBACK_TOKEN is not set: GOV.UK Notify's delivery receipts are "
                        "refused, so statuses stay at 'sent'")
    if not cfg.admin_tokens:
        warnings.append("EHC_NOTIFIER__ADMIN_TOKENS is empty: the subscriptions API refuses every request "
                        "(the command line and the subscriptions file still work)")
    return warnings


SEALED_SUFFIX = "_encrypted"


def opening_render(crypto: Any, render_: Callable[..., Any] = render) -> Callable[..., Any]:
    """``render`` that first opens a stored context's sealed fields (``case_reference_encrypted`` ->
    ``case_reference``): what must not be stored in clear is in clear only while a message is made."""

    def render_opened(template: str, language: str, channel_kind: str, context: Mapping[str, Any]) -> Any:
        opened = {k: v for k, v in context.items() if not k.endswith(SEALED_SUFFIX)}
        for key, token in context.items():
            if key.endswith(SEALED_SUFFIX) and token:
                opened[key[:-len(SEALED_SUFFIX)]] = crypto.decrypt_json(str(token).encode())
        return render_(template, language, channel_kind, opened)

    return render_opened


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
    dead_letters: DeadLetters | None = None

    async def start(self, *, consume: bool = True) -> None:
        cfg = self.settings.notifier
        links = self.service.sender.short_links
        check_template_settings(cfg, self.settings.environment, short_link_base=links.base_url if links else None)
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
        checks = await readiness_checks(self.engine, self.broker)
        if checks["database"] and self.dead_letters is not None:
            await self.dead_letters.refresh_gauge()
        return checks

    async def send_loop(self) -> None:
        await self.service.run_sender()

    def runtime(self) -> ServiceRuntime:
        cfg = self.settings.notifier
        return ServiceRuntime(name=SERVICE, start=self.start, stop=self.stop,
                              background=[self.relay.run, self.send_loop],
                              http_app=self.api, http_host=cfg.http_host, http_port=cfg.http_port)


def short_link_base(settings: Settings) -> str:
    """Where a text's short link points: EHC_NOTIFIER__SHORT_LINK_BASE, else the web front's address."""
    return (settings.notifier.short_link_base or settings.web.base_url).rstrip("/")


def bootstrap(settings: Settings, channels: dict[str, Channel] | None = None,
              clock: Callable[[], datetime] | None = None, calendar: WorkingDays | None = None,
              retry: RetryPolicy | None = None) -> Notifier:
    cfg = settings.notifier
    # first: a missing or bad key stops the start before anything is opened
    crypto = crypto_from_settings(cfg.encryption_key.get_secret_value() if cfg.encryption_key else None,
                                  settings.environment, Path("var") / "notifier.key")
    engine = create_engine_for(settings, SERVICE)
    sessions = session_factory(engine)
    producer = build_producer(settings.kafka, SERVICE)
    relay = OutboxRelay(sessions, tables.outbox, producer, retention=settings.outbox_retention)
    relay.wake_after_commits(sessions)  # a committed outbox row goes out at once, whoever wrote it
    built = build_channels(cfg, channels)
    clock = clock or (lambda: datetime.now(UTC))
    service = NotifierService(sessions, settings.kafka, cfg, crypto, built, opening_render(crypto), clock=clock,
                              retry=retry,
                              calendar=calendar or LazyWorkingDayCalendar(cfg.bank_holiday_overrides))
    family_secret = secret_from_settings(settings.web.family_link_secret, settings.environment)
    if family_secret:  # every family email links to the child's timeline on the web front, every text too
        service.timeline_link = partial(link_url, settings.web.base_url, family_secret)
        service.sender.short_links = ShortLinks(family_secret, short_link_base(settings),
                                                timedelta(days=settings.web.family_link_days))
    broker = build_broker(settings.kafka, SERVICE)

    async def after_batch() -> None:
        await relay.drain()

    dead_letters = DeadLetters(SERVICE, settings, sessions, tables.held_records, producer)
    broker.include_router(build_router(settings.kafka, service, after_batch, dead_letters, settings.dead_letters))
    scheduler = build_scheduler(service.run_morning, cfg.digest_time)
    notifier = Notifier(settings, engine, sessions, producer, relay, service, broker, FastAPI(), built, scheduler)
    api = FastAPI(title="EHC notifier", version="1")
    api.add_middleware(RequestLimits, max_body_bytes=settings.http_max_body_bytes)
    api.include_router(ops_router(notifier.readiness))
    api.include_router(build_http_router(service, cfg.admin_tokens, cfg.notify_callback_token))
    notifier.api = api
    notifier.dead_letters = dead_letters
    return notifier
