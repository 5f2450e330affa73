"""`ehc run`: the whole pipeline on one machine, on the embedded defaults.

Starts the local Kafka broker (KRaft, from its jars), runs intake, deadlines, notifier and the web
front in one process on SQLite files under var/, with an in-process SMTP server that saves what it receives in
var/mail/ and texts written to var/outbox-mail/. With a sample, it sends a request for an EHC
needs assessment through intake and shows the caseworker's email when it lands.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiosmtpd.controller import Controller

from shared import topics
from shared.family_links import link_url
from shared.kafka import build_producer
from shared.local_infra import kafka as kafka_infra
from shared.logging import configure_logging
from shared.settings import Settings

VAR = Path("var")
SAMPLE_CASEWORKER = ("cw-sample", "caseworker@council.example")
SAMPLE_CASES = ("case-sample-late", "case-sample-on-time", "case-sample-exception", "case-sample-other")
WEB_PORT = 8004
LOCAL_SECRET = "local-development-only-secret"  # `ehc run` on one machine; never a deployment's


class _SaveMail:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saved: list[Path] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        self.saved.append(path)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _deadlines_known(notifier: Any, case_id: str) -> bool:
    from sqlalchemy import func, select

    from services.notifier.adapters.tables import deadline_view

    async with notifier.sessions() as session:
        n = await session.scalar(select(func.count()).select_from(deadline_view)
                                 .where(deadline_view.c.case_id == case_id))
    return bool(n)


def sample_events(case_id: str, today: date) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [
        {"specversion": "1.0", "id": f"{case_id}-assigned", "source": "cms/sample/local",
         "type": "ehc.case.assigned", "subject": case_id, "time": now,
         "data": {"occurred_on": today.isoformat(), "caseworker_id": SAMPLE_CASEWORKER[0], "team_id": "team-north"}},
        {"specversion": "1.0", "id": f"{case_id}-request", "source": "cms/sample/local",
         "type": "ehc.request.received", "subject": case_id, "time": now,
         "data": {"occurred_on": today.isoformat(), "route": "request", "requested_by": "parent"}},
    ]


SAMPLE_COUNCIL_PHONE = "01234 567890"
SAMPLE_SENDIASS = "Sample SENDIASS, 01234 000000"


def pipeline_settings(bootstrap_servers: str, smtp_port: int, web_port: int) -> Settings:
    """The embedded default's settings: every service in one process, mail to a local SMTP server,
    texts to files, the web front signed in by a development sign-in. The notifier and the web front
    tell families the same council phone number and SENDIASS contact."""
    web_url = f"http://127.0.0.1:{web_port}"
    return Settings(kafka={"bootstrap_servers": bootstrap_servers},  # type: ignore[arg-type]
                    intake={"webhook_secrets": {"ehc/web": LOCAL_SECRET}},  # type: ignore[arg-type]
                    deadlines={"api_tokens": {LOCAL_SECRET: "admin"}},  # type: ignore[arg-type]
                    notifier={"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "sms_channel": "file",  # type: ignore[arg-type]
                              "council_name": "Sample County Council", "council_phone": SAMPLE_COUNCIL_PHONE,
                              "sendiass_contact": SAMPLE_SENDIASS,
                              "caseworker_directory": {SAMPLE_CASEWORKER[0]: SAMPLE_CASEWORKER[1]},
                              "admin_tokens": [LOCAL_SECRET], "case_url_base": f"{web_url}/cases",
                              "breaches_url": f"{web_url}/dashboard/cases?only=overdue",
                              "at_risk_url": f"{web_url}/dashboard/cases?only=due_soon"},
                    web={"base_url": web_url, "http_port": web_port, "dev_sign_in": True,  # type: ignore[arg-type]
                         "secure_cookies": False, "deadlines_api_token": LOCAL_SECRET,
                         "notifier_api_token": LOCAL_SECRET, "intake_secret": LOCAL_SECRET,
                         "council_phone": SAMPLE_COUNCIL_PHONE, "sendiass_contact": SAMPLE_SENDIASS})


async def run_pipeline(sample: bool = True, keep_running: bool = False, timeout: float = 60.0) -> int:
    configure_logging("WARNING", json_output=False)
    from services.deadlines.bootstrap import bootstrap as deadlines_bootstrap
    from services.intake.bootstrap import bootstrap as intake_bootstrap
    from services.notifier.bootstrap import bootstrap as notifier_bootstrap
    from services.web.bootstrap import bootstrap as web_bootstrap

    print("Starting the local Kafka broker (KRaft) ...", flush=True)
    await asyncio.to_thread(kafka_infra.start)
    await kafka_infra.wait_ready(120)

    mail = _SaveMail(VAR / "mail")
    smtp = Controller(mail, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    web_port = WEB_PORT if _port_free(WEB_PORT) else _free_port()
    settings = pipeline_settings(kafka_infra.bootstrap_servers(), smtp.port, web_port)
    web_url = settings.web.base_url
    services = [intake_bootstrap(settings), deadlines_bootstrap(settings), notifier_bootstrap(settings)]
    web = web_bootstrap(settings, deadlines_transport=httpx.ASGITransport(app=services[1].api),
                        notifier_transport=httpx.ASGITransport(app=services[2].api),
                        intake_transport=httpx.ASGITransport(app=services[0].webhook))
    web.deps.intake.url = "http://intake/v1/events"
    services.append(web)
    tasks: list[asyncio.Task[Any]] = []
    try:
        for service in services:
            await service.start()
            tasks.extend(asyncio.create_task(job()) for job in service.runtime().background)
        server = uvicorn.Server(uvicorn.Config(web.api, host="127.0.0.1", port=web_port, log_config=None,
                                               access_log=False, lifespan="off"))
        tasks.append(asyncio.create_task(server.serve()))
        print(f"Pipeline running: Kafka {settings.kafka.bootstrap_servers}, SQLite in {VAR}/, "
              f"SMTP on 127.0.0.1:{smtp.port} saving to {VAR / 'mail'}/", flush=True)
        if sample:
            code = await _send_sample(settings, mail, services[2], timeout)
            if code:
                return code
            await _send_more_samples(settings)
        print(f"\nThe web front: {web_url}/  (development sign-in: {SAMPLE_CASEWORKER[0]}, roles "
              f"'caseworker manager:team-north')", flush=True)
        if sample:
            print(f"A family's page: {link_url(web_url, web.deps.family_secret, SAMPLE_CASES[0])}", flush=True)
        if keep_running:
            print("Running until Ctrl-C.", flush=True)
            await asyncio.Event().wait()
        return 0
    finally:
        # as `serve` does: each service stops first (the notifier lets its sends in flight finish),
        # then what is left of the background loops is cancelled
        for service in reversed(services):
            await service.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        smtp.stop()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _event(event_id: str, case_id: str, type_: str, on: date, **data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": "cms/sample/local", "type": type_, "subject": case_id,
            "time": datetime.now(UTC).isoformat(), "data": {"occurred_on": on.isoformat(), **data}}


async def _send_more_samples(settings: Settings) -> None:
    """A few cases at other stages, so that the pages have something to show: a late decision, a
    plan issued in time, one issued late under an exception, and a case of another caseworker."""
    today = datetime.now(UTC).date()
    events: list[dict[str, Any]] = []
    for n, (case_id, caseworker, received, issued, exception) in enumerate([
        (SAMPLE_CASES[0], SAMPLE_CASEWORKER[0], today - timedelta(days=50), None, False),
        (SAMPLE_CASES[1], SAMPLE_CASEWORKER[0], today - timedelta(days=130), today - timedelta(days=10), False),
        (SAMPLE_CASES[2], SAMPLE_CASEWORKER[0], today - timedelta(days=200), today - timedelta(days=20), True),
        (SAMPLE_CASES[3], "cw-other", today - timedelta(days=30), None, False),
    ]):
        events.append(_event(f"{case_id}-assigned", case_id, "ehc.case.assigned", received, caseworker_id=caseworker,
                             team_id="team-north"))
        events.append(_event(f"{case_id}-request", case_id, "ehc.request.received", received, route="request",
                             requested_by="parent"))
        if exception:
            events.append(_event(f"{case_id}-e4", case_id, "ehc.exception.recorded", received + timedelta(days=60),
                                 exception="E4", rule_ids=["plan.final"], reason="Family away from the area"))
        if issued:
            events.append(_event(f"{case_id}-decided", case_id, "ehc.assessment.decided", received + timedelta(days=35),
                                 decision="assess", notice_sent_on=(received + timedelta(days=35)).isoformat()))
            events.append(_event(f"{case_id}-plan", case_id, "ehc.plan.issued", issued, plan_id=f"plan-{n}"))
    producer = build_producer(settings.kafka, "sample")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(settings.kafka.topic(topics.INTAKE_CANONICAL), json.dumps(event).encode(),
                                         key=event["subject"].encode())
    finally:
        await producer.stop()


async def _send_sample(settings: Settings, mail: _SaveMail, notifier: Any, timeout: float) -> int:
    case_id = f"case-sample-{uuid.uuid4().hex[:8]}"
    today = datetime.now(UTC).date()
    producer = build_producer(settings.kafka, "sample")
    await producer.start()
    try:
        for event in sample_events(case_id, today):
            await producer.send_and_wait(settings.kafka.topic(topics.INTAKE_CANONICAL),
                                         json.dumps(event).encode(), key=case_id.encode())
    finally:
        await producer.stop()
    print(f"Sent a sample request for {case_id} (received {today}) to {topics.INTAKE_CANONICAL}.", flush=True)
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    # Caseworkers get new deadlines in their 08:00 digest; the sample runs today's digest now.
    while loop.time() < end and not await _deadlines_known(notifier, case_id):
        await asyncio.sleep(0.1)
    print("The deadlines service opened the case's deadlines; running the caseworker digest now.", flush=True)
    if not await notifier.service.digests.caseworker_digests(today, datetime.now(UTC)):
        # one digest a day per caseworker, and nothing is sent twice: a second run on the same day
        # (var/ kept) plans none; the new case is in the next working day's digest
        print(f"Today's digest for {SAMPLE_CASEWORKER[1]} was planned already (at start-up or by an earlier "
              f"run today) and is not sent twice; earlier emails are in {mail.folder}/.", flush=True)
        return 0
    notifier.service.wakeup.set()
    while loop.time() < end:
        for path in mail.saved:
            message = message_from_bytes(path.read_bytes())
            if case_id in path.read_text(errors="replace") or SAMPLE_CASEWORKER[1] in (message["To"] or ""):
                print(f"\nThe caseworker's email landed in {path}")
                print(f"  To: {message['To']}\n  Subject: {message['Subject']}\n")
                return 0
        await asyncio.sleep(0.1)
    print(f"No email for {case_id} within {timeout:.0f} s: see the logs above.", flush=True)
    return 1
