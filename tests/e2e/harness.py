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
