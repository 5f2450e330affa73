"""Exactly once on the embedded default too: on SQLite (no row locks) several sender workers never
claim the same row, so each email reaches a real SMTP server (aiosmtpd) once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from services.notifier.bootstrap import MIGRATIONS, SERVICE, bootstrap
from shared.db import migrate
from shared.settings import NotifierSettings, Settings
from tests.conftest import Mailbox, eventually
from tests.notifier.helpers import deadline_event, notification_rows
from tests.notifier.integration.conftest import CASEWORKER

N = 40


@pytest.mark.parametrize("workers", [2, 4])
async def test_on_sqlite_several_sender_workers_send_each_email_once(tmp_path, smtp_server: Mailbox,
                                                                     workers: int) -> None:
    cfg = NotifierSettings(smtp_host=smtp_server.host, smtp_port=smtp_server.port, sms_channel="file",
                           file_sink_dir=tmp_path / "sink", encryption_key=Fernet.generate_key().decode(),
                           council_phone="0300 123 4043", caseworker_directory=dict([CASEWORKER]),
                           sender_workers=workers, sender_concurrency=5, sender_batch=5)
    settings = Settings(environment="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/ehc-{{service}}.db",
                        notifier=cfg)
    notifier = bootstrap(settings)
    await migrate(notifier.engine, SERVICE, MIGRATIONS, None)
    service = notifier.service
    for caseworker_id, address in cfg.caseworker_directory.items():
        await service.set_caseworker_email(caseworker_id, address)
    # a breach alert for each of N cases (breached today: news, not history), planned while the
    # workers are already polling
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    sender = asyncio.create_task(service.run_sender(idle_seconds=0.01))
    try:
        for i in range(0, N, 10):
            await service.handle_deadline_events([deadline_event("deadline.breached", f"case-{j}", "plan.final",
                                                                 due_on=yesterday) for j in range(i, i + 10)])

        async def all_sent() -> bool:
            rows = await notification_rows(notifier.sessions)
            return len(rows) == N and all(r.status in ("sent", "delivered") for r in rows)

        await eventually(all_sent, 60, f"{N} alerts sent")
        await asyncio.wait_for(service.stop_sender(), 60)  # every send in flight ends before we count
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        for channel in notifier.channels.values():
            await channel.aclose()
        await notifier.engine.dispose()
    ids = Counter(str(m["Message-ID"]) for m in smtp_server.messages)
    assert [i for i, k in ids.items() if k > 1] == []
    assert len(ids) == N
    assert all(r.attempts == 1 for r in await _rows(settings, tmp_path))


async def _rows(settings: Settings, tmp_path) -> list:
    notifier = bootstrap(settings)
    try:
        return await notification_rows(notifier.sessions)
    finally:
        await notifier.engine.dispose()
