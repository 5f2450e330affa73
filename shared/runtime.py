"""Running a service: its Kafka subscribers, background loops and HTTP server in one event loop,
with a graceful shutdown on SIGTERM/SIGINT (stop consuming, finish the batch, drain the outbox)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from shared.logging import get_logger, kafka_connection_state

log = get_logger(__name__)


@dataclass
class ServiceRuntime:
    name: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]
    background: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    http_app: Any | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 0


async def serve(runtime: ServiceRuntime, stop_event: asyncio.Event | None = None) -> None:
    stop_event = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop_event.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    await runtime.start()
    tasks = [asyncio.create_task(job(), name=f"{runtime.name}-bg") for job in runtime.background]
    server: uvicorn.Server | None = None
    if runtime.http_app is not None:
        config = uvicorn.Config(runtime.http_app, host=runtime.http_host, port=runtime.http_port,
                                log_config=None, access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        tasks.append(asyncio.create_task(server.serve(), name=f"{runtime.name}-http"))
    log.info("service.started", service=runtime.name, http_port=runtime.http_port)
    waiter = asyncio.create_task(stop_event.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not waiter and task.exception():
            log.error("service.task_failed", service=runtime.name, task=task.get_name(),
                      error=repr(task.exception()))
    log.info("service.stopping", service=runtime.name)
    if server is not None:
        server.should_exit = True
    await runtime.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    waiter.cancel()
    log.info("service.stopped", service=runtime.name)


async def prepare_service(settings: Any, service: str, engine: Any, migrations: Any, producer: Any,
                          relay: Any) -> None:
    """What every service does before it consumes: create missing topics, migrate its schema,
    start its producer and reconcile its outbox with what Kafka already has (after a crash)."""
    from functools import partial

    from shared.db import is_sqlite, migrate
    from shared.kafka import ensure_topics, recent_event_ids
    from shared.topics import topic_specs

    if settings.kafka.create_topics:
        await ensure_topics(settings.kafka, topic_specs(settings.kafka.topic_prefix, settings.kafka.partitions,
                                                        settings.dead_letters.retention_days))
    await migrate(engine, service, migrations, None if is_sqlite(engine) else settings.schema_for(service))
    await producer.start()
    await relay.reconcile(partial(recent_event_ids, settings.kafka))


async def readiness_checks(engine: Any, broker: Any) -> dict[str, bool]:
    """`/readyz`: the service's database answers and its Kafka broker answers."""
    from sqlalchemy import text

    checks = {"database": True, "kafka": True}
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        checks["database"] = False
    try:
        checks["kafka"] = bool(await broker.ping(timeout=2))
    except Exception:
        checks["kafka"] = False
    if checks["kafka"]:
        kafka_connection_state.mark_up()
    return checks
