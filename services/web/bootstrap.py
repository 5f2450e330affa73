"""The web front's composition root: its own small database (calendar feeds, revoked family
links), clients of the deadlines read API, the notifier's API and intake's webhook, and the
FastAPI app. Nothing connects at import; tests pass transports to reach the services in-process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.web.adapters.apis import DeadlinesApi, IntakeWebhook, NotifierApi
from services.web.entrypoints.http import build_web_app
from services.web.service_layer.actions import WebDeps
from shared.db import create_engine_for, is_sqlite, migrate, session_factory
from shared.runtime import ServiceRuntime
from shared.settings import Settings

SERVICE = "web"
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
DEV_WEBHOOK_SECRET = "local-development-webhook-secret"


def _bearer(secret: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret.get_secret_value()}"} if secret else {}


@dataclass
class Web:
    settings: Settings
    engine: AsyncEngine
    deps: WebDeps
    api: FastAPI
    clients: list[httpx.AsyncClient]

    async def start(self) -> None:
        schema = None if is_sqlite(self.engine) else self.settings.schema_for(SERVICE)
        await migrate(self.engine, SERVICE, MIGRATIONS, schema)

    async def stop(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        checks = {"database": True}
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            checks["database"] = False
        return checks

    def runtime(self) -> ServiceRuntime:
        cfg = self.settings.web
        return ServiceRuntime(name=SERVICE, start=self.start, stop=self.stop, http_app=self.api,
                              http_host=cfg.http_host, http_port=cfg.http_port)


def bootstrap(settings: Settings, *, deadlines_transport: Any = None, notifier_transport: Any = None,
              intake_transport: Any = None, clock: Callable[[], datetime] | None = None) -> Web:
    cfg = settings.web
    if settings.environment == "production":
        missing = [name for name, value in (("EHC_WEB__SESSION_SECRET", cfg.session_secret),
                                            ("EHC_WEB__FAMILY_LINK_SECRET", cfg.family_link_secret),
                                            ("EHC_WEB__INTAKE_SECRET", cfg.intake_secret)) if value is None]
        if missing:
            raise ValueError(f"{', '.join(missing)} required in production")
    engine = create_engine_for(settings, SERVICE)
    timeout = httpx.Timeout(10.0)
    deadlines = httpx.AsyncClient(base_url=cfg.deadlines_api_url, headers=_bearer(cfg.deadlines_api_token),
                                  transport=deadlines_transport, timeout=timeout)
    notifier = httpx.AsyncClient(base_url=cfg.notifier_api_url, headers=_bearer(cfg.notifier_api_token),
                                 transport=notifier_transport, timeout=timeout)
    intake = httpx.AsyncClient(transport=intake_transport, timeout=timeout)
    secret = cfg.intake_secret.get_secret_value() if cfg.intake_secret else DEV_WEBHOOK_SECRET
    deps = WebDeps(cfg, settings.environment, DeadlinesApi(deadlines, cfg.dashboard_seconds), NotifierApi(notifier),
                   IntakeWebhook(intake, cfg.intake_webhook_url, cfg.intake_source, secret),
                   session_factory(engine), clock or (lambda: datetime.now(UTC)))
    web = Web(settings, engine, deps, FastAPI(), [deadlines, notifier, intake])
    web.api = build_web_app(deps, web.readiness, settings.team_names, settings.area_names)
    return web
