"""Intake's HTTP webhook: councils POST one canonical event or a batch, signed per source.

Signature: ``X-EHC-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`` with
``X-EHC-Timestamp`` (Unix seconds) and ``X-EHC-Source``. Stale timestamps and replayed
signatures are refused. The answer is 202 only once every accepted event (and every dead letter)
is durably in Kafka (acks=all).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.adapters import tables
from services.intake.service_layer.handlers import Converter, IntakeService, RawInput, canonical_converter
from shared.http_ops import ReadinessCheck, ops_router
from shared.logging import get_logger
from shared.messaging.outbox import OutboxRelay
from shared.settings import IntakeSettings

log = get_logger(__name__)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def build_webhook_app(
    cfg: IntakeSettings,
    service: IntakeService,
    relay: OutboxRelay,
    sessions: async_sessionmaker[AsyncSession],
    readiness: ReadinessCheck,
    converters: dict[str, Converter] | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    app = FastAPI(title="EHC intake webhook", version="1")
    app.include_router(ops_router(readiness))
    converters = converters or {}

    @app.post("/v1/events", status_code=202, summary="Submit one case event or a JSON array of them")
    async def post_events(request: Request) -> JSONResponse:
        source = request.headers.get("x-ehc-source", "")
        timestamp = request.headers.get("x-ehc-timestamp", "")
        signature = request.headers.get("x-ehc-signature", "")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cfg.webhook_max_body_bytes:
            return _error(413, "payload_too_large", f"body over {cfg.webhook_max_body_bytes} bytes")
        body = await request.body()
        if len(body) > cfg.webhook_max_body_bytes:
            return _error(413, "payload_too_large", f"body over {cfg.webhook_max_body_bytes} bytes")
        secret = cfg.webhook_secrets.get(source)
        if secret is None or not signature or not timestamp:
            return _error(401, "unauthenticated", "X-EHC-Source, X-EHC-Timestamp and X-EHC-Signature are required")
        expected = sign(secret.get_secret_value(), timestamp, body)
        if not hmac.compare_digest(expected, signature):
            return _error(401, "bad_signature", "the signature does not match the body and timestamp")
        if not timestamp.isdigit() or abs(clock() - int(timestamp)) > cfg.webhook_max_skew_seconds:
            return _error(401, "stale_timestamp", f"timestamp outside ±{cfg.webhook_max_skew_seconds} s")
        if not await _first_use_of_signature(sessions, source, signature):
            return _error(409, "replayed", "this signed request was already received")

        inputs = _split(body, source)
        outcome = await service.accept(inputs, converters.get(source, canonical_converter))
        await relay.drain()  # 202 only once durably in Kafka
        result = {"accepted": outcome.published, "duplicates": outcome.duplicates,
                  "contacts": outcome.contacts, "rejected": outcome.rejected, "errors": outcome.errors[:50]}
        if outcome.rejected:
            return JSONResponse({"error": "invalid_events", **result}, status_code=422)
        return JSONResponse(result, status_code=202)

    return app


def _split(body: bytes, source: str) -> list[RawInput]:
    """A JSON array is a batch: each element is one input (kept as its own bytes)."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return [RawInput(value=body, channel="webhook", input_source=source)]
    if isinstance(parsed, list):
        return [
            RawInput(value=json.dumps(item, separators=(",", ":")).encode(), channel="webhook",
                     input_source=source, location=f"item {i}")
            for i, item in enumerate(parsed)
        ]
    return [RawInput(value=body, channel="webhook", input_source=source)]


async def _first_use_of_signature(sessions: async_sessionmaker[AsyncSession], source: str, signature: str) -> bool:
    async with sessions() as session, session.begin():
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        result = await session.execute(
            insert(tables.webhook_signatures).values(source=source, signature=signature[-64:]).on_conflict_do_nothing()
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
