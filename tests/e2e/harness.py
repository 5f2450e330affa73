"""Running the services in-process for end-to-end tests: start, run their loops, stop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any


@asynccontextmanager
async def running(*services: Any) -> AsyncIterator[None]:
    tasks: list[asyncio.Task[Any]] = []
    started: list[Any] = []
    try:
        for service in services:
            await service.start()
            started.append(service)
            tasks.extend(asyncio.create_task(job()) for job in service.runtime().background)
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for service in reversed(started):
            await service.stop()


def case_event(event_id: str, case_id: str, type_: str, occurred_on: date | str, **data: Any) -> bytes:
    return json.dumps({
        "specversion": "1.0", "id": event_id, "source": "cms/test/e2e", "type": type_, "subject": case_id,
        "time": datetime.now(UTC).isoformat(), "datacontenttype": "application/json",
        "data": {"occurred_on": str(occurred_on), **data},
    }).encode()


def service_env(settings: Any, **extra: str) -> dict[str, str]:
    """Environment variables that give a subprocess the same isolated settings as the test."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("EHC_")}
    env.update({
        "EHC_ENVIRONMENT": "test",
        "EHC_DATABASE_URL": settings.database_url,
        "EHC_DB_SCHEMA_PREFIX": settings.db_schema_prefix,
        "EHC_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "EHC_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "EHC_KAFKA__GROUP_PREFIX": settings.kafka.group_prefix,
        "EHC_KAFKA__PARTITIONS": str(settings.kafka.partitions),
        **extra,
    })
    return env


class ServiceProcess:
    """`ehc <service> serve` as a real OS process, to be killed with SIGKILL and restarted."""

    def __init__(self, service: str, env: dict[str, str], log_path: Any, *, own_session: bool = False) -> None:
        self.service = service
        self.env = env
        self.log_path = log_path
        # own_session: the process leads a session of its own, so with Linux's autogroup scheduling
        # (kernel.sched_autogroup_enabled) it gets a CPU share of its own, as a replica in its own
        # container would, instead of sharing the starting session's with its siblings
        self.own_session = own_session
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        import sys
        from pathlib import Path

        ehc = str(Path(sys.executable).with_name("ehc"))
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.proc = await asyncio.create_subprocess_exec(ehc, self.service, "serve", env=self.env,
                                                         stdout=log, stderr=log, start_new_session=self.own_session)
        log.close()

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no graceful shutdown, no final flush
        await self.proc.wait()

    async def terminate(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 30)
