"""Intake's HTTP webhook: councils POST one event or a batch (a JSON array), signed per source.

Signature: ``X-EHC-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`` with
``X-EHC-Timestamp`` (Unix seconds) and ``X-EHC-Source``. Stale timestamps and replayed
signatures are refused. A source sends canonical events, or its own messages read through the
mapping named for it in ``EHC_INTAKE__WEBHOOK_MAPPINGS``. The answer is 202 only once every
accepted event (and every dead letter) is durably in Kafka (acks=all); 422 when some events were
rejected (the others are accepted; the rejected ones are in the dead-letter topic); 413, 401 and
409 for oversized, unsigned or stale, and replayed requests; 503 when the database or Kafka is
down (the same request may be sent again).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.adapters import tables
from services.intake.entrypoints.webhook_docs import WEBHOOK_DESCRIPTION, WEBHOOK_OPENAPI
from services.intake.service_layer.handlers import Converter, IntakeService, RawInput, canonical_converter
from shared.db import upsertable_insert
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

    @app.post("/v1/events", status_code=202, summary="Submit one case event or a JSON array of them",
              description=WEBHOOK_DESCRIPTION, openapi_extra=WEBHOOK_OPENAPI)
    async def post_events(request: Request) -> JSONResponse:
        source = request.headers.get("x-ehc-source", "")
        timestamp = request.headers.get("x-ehc-timestamp", "")
        signature = request.headers.get("x-ehc-signature", "")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cfg.webhook_max_body_bytes:
            return _error(413, "payload_too_large", f"body over {cfg.webhook_max_body_bytes} bytes")
        body = await _read_at_most(request, cfg.webhook_max_body_bytes)
        if body is None:
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
        try:
            outcome = await service.accept(inputs, converters.get(source, canonical_converter))
            await relay.drain()  # 202 only once durably in Kafka
        except Exception as exc:  # the database or Kafka: the sender may retry this very request
            log.warning("intake.webhook_unavailable", input_source=source, error=type(exc).__name__)
            await _forget_signature(sessions, source, signature)
            return _error(503, "unavailable", "the database or Kafka is unavailable; retry later (a retry of "
                          "events already stored publishes nothing twice)")
        result = {"accepted": outcome.published, "duplicates": outcome.duplicates,
                  "contacts": outcome.contacts, "rejected": outcome.rejected, "errors": outcome.errors[:50]}
        if outcome.rejected:
            return JSONResponse({"error": "invalid_events", **result}, status_code=422)
        return JSONResponse(result, status_code=202)

    return app


def _split(body: bytes, source: str) -> list[RawInput]:
    """A JSON array is a batch: each element is one input, kept as its own original bytes (so a
    dead letter holds exactly what was sent); anything else is one input."""
    items = _array_items(body)
    if items is None:
        return [RawInput(value=body, channel="webhook", input_source=source)]
    return [RawInput(value=item, channel="webhook", input_source=source, location=f"item {i}")
            for i, item in enumerate(items)]


_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"


def _array_items(body: bytes) -> list[bytes] | None:
    """The exact bytes of each element of a JSON array; None when the body is not a well-formed array."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    at = _skip(text, 1 if text.startswith("\ufeff") else 0)
    if not text.startswith("[", at):
        return None
    at = _skip(text, at + 1)
    items: list[bytes] = []
    if text.startswith("]", at):
        return items if not text[at + 1:].strip(_SPACE) else None
    while True:
        try:
            _, end = _DECODER.raw_decode(text, at)
        except (ValueError, RecursionError):
            return None
        items.append(text[at:end].encode())
        at = _skip(text, end)
        if text.startswith(",", at):
            at = _skip(text, at + 1)
        elif text.startswith("]", at):
            return items if not text[at + 1:].strip(_SPACE) else None
        else:
            return None


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _SPACE:
        at += 1
    return at


async def _read_at_most(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is longer than ``limit`` (never read whole into memory)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _forget_signature(sessions: async_sessionmaker[AsyncSession], source: str, signature: str) -> None:
    """Best effort, after a failure: the same signed request may then be sent again."""
    try:
        async with sessions() as session, session.begin():
            table = tables.webhook_signatures
            await session.execute(delete(table).where(table.c.source == source,
                                                      table.c.signature == signature[-64:]))
    except Exception as exc:
        log.warning("intake.webhook_signature_kept", input_source=source, error=type(exc).__name__)


async def _first_use_of_signature(sessions: async_sessionmaker[AsyncSession], source: str, signature: str) -> bool:
    async with sessions() as session, session.begin():
        result = await session.execute(
            upsertable_insert(session, tables.webhook_signatures)
            .values(source=source, signature=signature[-64:]).on_conflict_do_nothing()
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
