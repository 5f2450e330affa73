"""End-to-end set-up for the notifier: real Kafka and PostgreSQL (``isolated``), a real SMTP server
(aiosmtpd), the GOV.UK Notify stand-in, and the test data's personal details, which must never
appear in a log line, an audit event or the notifications' context column."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from cryptography.fernet import Fernet
from sqlalchemy import select

from services.notifier.adapters import tables
from services.notifier.bootstrap import Notifier
from services.notifier.domain.messages import TEMPLATES
from shared import topics
from shared.contracts import ContactsUpdated, DeadlineEvent
from shared.settings import NotifierSettings, Settings
from tests.conftest import Mailbox, read_topic
from tests.notifier.conftest import EMAIL_TEMPLATE
from tests.notifier.notify_stub import NotifyStub, StubTemplate

CALLBACK_TOKEN = "notify-callback-token-0123456789"
ADMIN_TOKEN = "admin-token-0123456789"
GENERIC_SMS = StubTemplate(id="5c1b3f0e-8d2a-4e7b-9a61-2f4c8d9e0b13", type="sms", body="((body))")

# The test data's people. Each string is personal data: none may reach a log, an audit event or a
# notification's context.
CASEWORKER = ("cw-1", "sam.caseworker@council.example")
MANAGER_TEAM = "north.manager@council.example"
MANAGER_AREA = "area.manager@council.example"
PARENT_NAME = "Alex Morgan"
PARENT_MOBILE = "07700 900111"
PARENT_EMAIL = "alex.morgan@example.org"
CARER_NAME = "Jordan Pemberton"
CARER_MOBILE = "07700 900222"  # no consent
SECOND_MOBILE = "07700 900333"
PERSONAL = [CASEWORKER[1], MANAGER_TEAM, MANAGER_AREA, PARENT_NAME, "Alex", "Morgan", PARENT_EMAIL, CARER_NAME,
            "Jordan", "Pemberton", PARENT_MOBILE, CARER_MOBILE, SECOND_MOBILE,
            # the same numbers as E.164 (+44...) or without spaces all contain these
            "7700900111", "7700900222", "7700900333", "7700 900111", "7700 900222", "7700 900333"]


def personal_data_in(text: str) -> list[str]:
    return sorted({p for p in PERSONAL if p.lower() in text.lower()})


@pytest.fixture
def notify(notify_stub: NotifyStub) -> NotifyStub:
    """The Notify stand-in, emptied, with a pass-through text template (``((body))``)."""
    notify_stub.templates.setdefault(GENERIC_SMS.id, GENERIC_SMS)
    return notify_stub


def notify_templates() -> dict[str, str]:
    ids = {f"{name}.sms": GENERIC_SMS.id for name in TEMPLATES}
    ids.update({f"{name}.email": EMAIL_TEMPLATE.id for name in TEMPLATES})
    return ids


def e2e_settings(isolated: Settings, mailbox: Mailbox, notify: NotifyStub, notify_url: str, **cfg: Any) -> Settings:
    values = {**isolated.notifier.model_dump(), "email_channel": "smtp", "sms_channel": "notify",
              "smtp_host": mailbox.host, "smtp_port": mailbox.port, "notify_base_url": notify_url,
              "notify_api_key": notify.api_key(), "notify_templates": notify_templates(),
              "notify_callback_token": CALLBACK_TOKEN, "admin_tokens": [ADMIN_TOKEN],
              "encryption_key": Fernet.generate_key().decode(), "council_name": "Hertfordshire County Council",
              "council_phone": "0300 123 4043", "caseworker_directory": {CASEWORKER[0]: CASEWORKER[1]}, **cfg}
    return isolated.model_copy(update={"notifier": NotifierSettings.model_validate(values)})


async def publish(producer: Any, settings: Settings, *events: DeadlineEvent | ContactsUpdated) -> None:
    for event in events:
        topic = topics.CONTACTS if isinstance(event, ContactsUpdated) else topics.DEADLINE_EVENTS
        await producer.send_and_wait(settings.kafka.topic(topic), event.to_json(), key=event.key())


async def audit_events(settings: Settings, until: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    records = await read_topic(settings.kafka.bootstrap_servers, settings.kafka.topic(topics.NOTIFICATION_EVENTS),
                               lambda rs: until([json.loads(r.value) for r in rs]), timeout)
    return [json.loads(r.value) for r in records]


async def rows(notifier: Notifier, **where: Any) -> list[Any]:
    n = tables.notifications
    q = select(n).order_by(n.c.created_at)
    for key, value in where.items():
        q = q.where(n.c[key] == value)
    async with notifier.sessions() as session:
        return list((await session.execute(q)).all())


async def assert_no_personal_data_stored_in_clear(notifier: Notifier, audit: list[dict[str, Any]]) -> None:
    """Audit events and the notifications' context column hold no personal data."""
    assert personal_data_in(json.dumps(audit)) == []
    contexts = [r.context for r in await rows(notifier)]
    assert personal_data_in(json.dumps(contexts)) == []


# --- logs ------------------------------------------------------------------------------------

@dataclass
class CapturedLogs:
    buffer: io.StringIO

    @property
    def text(self) -> str:
        return self.buffer.getvalue()


class _NotTheTestServers(logging.Filter):
    """The aiosmtpd server and the stand-ins run in this process too; their logs are not ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(("mail.log", "uvicorn"))


@pytest.fixture
def captured_logs() -> Iterator[CapturedLogs]:
    """Every log line of the run (structlog and stdlib), at DEBUG for our code, *without* the
    redaction processor of shared.logging: the code itself must not log personal data. At the end
    of the test no personal detail of the test data may appear."""
    buffer = io.StringIO()
    previous = structlog.get_config()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    noisy = {name: logging.getLogger(name).level for name in ("aiokafka", "faststream", "apscheduler", "httpx",
                                                                "httpcore", "asyncio", "sqlalchemy")}
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True), structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(file=buffer), cache_logger_on_first_use=False)
    handler = logging.StreamHandler(buffer)
    handler.addFilter(_NotTheTestServers())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG)
    for name in noisy:  # warnings and up (INFO on "sqlalchemy" would echo every statement and its values)
        logging.getLogger(name).setLevel(logging.WARNING)
    logs = CapturedLogs(buffer)
    try:
        yield logs
    finally:
        structlog.reset_defaults()
        structlog.configure(**previous)
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)
    found = personal_data_in(logs.text)
    lines = [line for line in logs.text.splitlines() if personal_data_in(line)][:5]
    assert not found, f"personal data in the logs: {found}; e.g. {lines}"
    assert "notifier." in logs.text  # the capture did see the notifier's own log lines
