"""The whole service for the web front's tests: intake, deadlines and notifier on the shared Kafka
and PostgreSQL (their own topics and schemas), the web front served by uvicorn on a free port,
a real SMTP server for the caseworker's email, and (for sign-in) a real OpenID Connect provider."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from services.deadlines.bootstrap import bootstrap as deadlines_bootstrap
from services.intake.bootstrap import bootstrap as intake_bootstrap
from services.notifier.bootstrap import bootstrap as notifier_bootstrap
from services.web.bootstrap import bootstrap as web_bootstrap
from shared import topics
from shared.settings import Settings
from tests.conftest import Mailbox, eventually, free_port
from tests.e2e.harness import case_event, running

WEBHOOK_SECRET = "web-test-webhook-secret-0123456789"
FAMILY_SECRET = "family-link-test-secret-0123456789abcdef"
CASEWORKERS = {"cw-a": "cw-a@council.example", "cw-b": "cw-b@council.example", "cw-c": "cw-c@council.example"}


class EveryDayWorks:
    def is_working_day(self, day: date) -> bool:
        return True


@dataclass
class Stack:
    settings: Settings
    url: str
    deadlines: Any
    notifier: Any
    web: Any
    producer: Any

    async def send(self, *events: tuple[str, str, str, date, dict[str, Any]]) -> None:
        source = self.settings.kafka.topic(topics.INTAKE_CANONICAL)
        for event_id, case_id, type_, on, data in events:
            await self.producer.send_and_wait(source, case_event(event_id, case_id, type_, on, **data),
                                              key=case_id.encode())

    async def wait_deadlines(self, case_id: str, n: int, timeout: float = 60) -> None:
        async def stored() -> bool:
            return len(await self.web.deps.deadlines.case_deadlines(case_id)) >= n

        await eventually(stored, timeout, f"{n} deadlines of {case_id}")


def stack_settings(isolated: Settings, mailbox: Mailbox, port: int, notifier: dict[str, Any] | None = None,
                   **web: Any) -> Settings:
    return isolated.model_copy(update={
        "intake": isolated.intake.model_copy(update={"webhook_secrets": {"ehc/web": SecretStr(WEBHOOK_SECRET)}}),
        "deadlines": isolated.deadlines.model_copy(update={"api_tokens": {"tok-web": "admin"}}),
        "notifier": isolated.notifier.model_copy(update={
            "smtp_host": mailbox.host, "smtp_port": mailbox.port, "email_channel": "smtp", "sms_channel": "file",
            "caseworker_directory": CASEWORKERS, "admin_tokens": [SecretStr("tok-web-notifier")],
            "case_url_base": f"http://127.0.0.1:{port}/cases", **(notifier or {})}),
        "web": isolated.web.model_copy(update={
            "base_url": f"http://127.0.0.1:{port}", "http_port": port, "secure_cookies": False,
            "deadlines_api_token": SecretStr("tok-web"), "notifier_api_token": SecretStr("tok-web-notifier"),
            "intake_secret": SecretStr(WEBHOOK_SECRET), "family_link_secret": SecretStr(FAMILY_SECRET),
            "council_name": "Testshire Council", "council_phone": "01234 567890",
            "sendiass_contact": "Testshire SENDIASS, 01234 000000", **web}),
    })


@pytest.fixture
async def make_stack(isolated: Settings, smtp_server: Mailbox, producer: Any) -> AsyncIterator[Any]:
    """Start the stack with extra web settings; at most one per test."""
    stopping: list[Any] = []

    async def start(clock: Any = None, notifier: dict[str, Any] | None = None,
                    team_names: dict[str, str] | None = None, **web: Any) -> Stack:
        port = free_port()
        settings = stack_settings(isolated, smtp_server, port, notifier, **web)
        if team_names:
            settings = settings.model_copy(update={"team_names": team_names})
        intake = intake_bootstrap(settings)
        deadlines = deadlines_bootstrap(settings, clock=clock) if clock else deadlines_bootstrap(settings)
        notifier = notifier_bootstrap(settings, calendar=EveryDayWorks())
        web_front = web_bootstrap(settings, deadlines_transport=httpx.ASGITransport(app=deadlines.api),
                                  notifier_transport=httpx.ASGITransport(app=notifier.api),
                                  intake_transport=httpx.ASGITransport(app=intake.webhook))
        web_front.deps.intake.url = "http://intake/v1/events"
        context = running(intake, deadlines, notifier, web_front)
        await context.__aenter__()
        server = uvicorn.Server(uvicorn.Config(web_front.api, host="127.0.0.1", port=port, log_config=None,
                                               access_log=False, lifespan="off"))
        task = asyncio.create_task(server.serve())

        async def up() -> bool:
            return server.started

        await eventually(up, 10, "the web front listening")
        stopping.append((server, task, context))
        return Stack(settings, f"http://127.0.0.1:{port}", deadlines, notifier, web_front, producer)

    yield start
    for server, task, context in stopping:
        server.should_exit = True
        await task
        await context.__aexit__(None, None, None)


def assigned(case_id: str, caseworker: str, team: str, on: date) -> tuple[str, str, str, date, dict[str, Any]]:
    return (f"{case_id}-assigned", case_id, "ehc.case.assigned", on, {"caseworker_id": caseworker, "team_id": team})


def requested(case_id: str, on: date) -> tuple[str, str, str, date, dict[str, Any]]:
    return (f"{case_id}-request", case_id, "ehc.request.received", on, {"route": "request", "requested_by": "parent"})


def now() -> datetime:
    return datetime.now(UTC)
