"""Intake's HTTP webhook: councils POST one event or a batch (a JSON array), signed per source.

Signature: ``X-EHC-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`` with
``X-EHC-Timestamp`` (Unix seconds, at most 12 digits) and ``X-EHC-Source``. Stale timestamps and
replayed signatures are refused; the replay table is pruned of signatures older than the allowed
skew as requests come (at most once a minute).

A source sends canonical events, or its own messages read through the mapping named for it in
``EHC_INTAKE__WEBHOOK_MAPPINGS``. Identity binds to data: a source sending canonical events may only
publish the CloudEvents ``source`` values it owns (``EHC_INTAKE__WEBHOOK_SOURCES``: each value
exactly or followed by ``/...``; by default its own name, e.g. ``cms-a`` or ``cms-a/herts``); an
event with another ``source`` is rejected, and de-duplication is keyed on the authenticated source
(so no sender can suppress another's events).

The answer is 202 only once every accepted event (and every dead letter) is durably in Kafka
(acks=all); 422 when some events were rejected (each one is in the dead-letter topic with its
reason, ``errors`` says which item and why; the others are accepted, ``accepted`` counts them);
413 for a body over ``webhook_max_body_bytes`` or more than ``webhook_max_events`` events; 401 for
unsigned or stale requests; 409 for a replayed one; 503 when the database or Kafka is down (the
same request may be sent again).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.intake.adapters import tables
from services.intake.domain.results import Rejection
from services.intake.entrypoints.webhook_docs import WEBHOOK_DESCRIPTION, WEBHOOK_OPENAPI
from services.intake.service_layer.handlers import Converted, Converter, IntakeService, RawInput, canonical_converter
from shared.db import upsertable_insert
from shared.http_ops import ReadinessCheck, RequestLimits, ops_router
from shared.logging import get_logger
from shared.messaging.outbox import OutboxRelay
from shared.settings import IntakeSettings

log = get_logger(__name__)
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds; anything longer is no time worth parsing
PRUNE_EVERY_SECONDS = 60.0


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
    app.add_middleware(RequestLimits, max_body_bytes=cfg.webhook_max_body_bytes)
    app.include_router(ops_router(readiness))
    converters = converters or {}
    pruned_at = [float("-inf")]

    @app.post("/v1/events", status_code=202, summary="Submit one case event or a JSON array of them",
              description=WEBHOOK_DESCRIPTION, openapi_extra=WEBHOOK_OPENAPI,
              responses={401: {"description": "Unsigned, badly signed or stale (X-EHC-Timestamp) request"},
                         409: {"description": "This signed request was already received"},
                         413: {"description": "Body or batch over the limits"},
                         422: {"description": "Some events rejected (dead-lettered); the others accepted"},
                         503: {"description": "Database or Kafka unavailable; send the same request again"}})
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
        if not _TIMESTAMP.fullmatch(timestamp) or abs(clock() - int(timestamp)) > cfg.webhook_max_skew_seconds:
            return _error(401, "stale_timestamp", f"timestamp outside ±{cfg.webhook_max_skew_seconds} s")
        inputs = _split(body, source)
        if len(inputs) > cfg.webhook_max_events:
            return _error(413, "too_many_events", f"more than {cfg.webhook_max_events} events in one request: "
                          "send smaller batches")
        if time.monotonic() - pruned_at[0] >= PRUNE_EVERY_SECONDS:
            pruned_at[0] = time.monotonic()
            await _prune_signatures(sessions, timedelta(seconds=2 * cfg.webhook_max_skew_seconds))
        if not await _first_use_of_signature(sessions, source, signature):
            return _error(409, "replayed", "this signed request was already received")

        convert = converters.get(source) or owned_sources(canonical_converter, source,
                                                         cfg.webhook_sources.get(source, [source]))
        try:
            outcome = await service.accept(inputs, convert)
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


def owned_sources(convert: Converter, sender: str, allowed: Sequence[str]) -> Converter:
    """``convert``, with every event whose CloudEvents ``source`` is not one ``sender`` owns rejected."""

    def owns(source: str) -> bool:
        return any(source == value or source.startswith(value if value.endswith("/") else value + "/")
                   for value in allowed if value)

    def checked(raw: RawInput) -> Sequence[Converted]:
        return [item if isinstance(item, Rejection) or owns(item.source)
                else Rejection(f"source: webhook source {sender} may not publish events of this source "
                               "(EHC_INTAKE__WEBHOOK_SOURCES)", raw.value, raw.location)
                for item in convert(raw)]

    return checked


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


async def _prune_signatures(sessions: async_sessionmaker[AsyncSession], older_than: timedelta) -> None:
    """Signatures older than the replay window can no longer be replayed (their timestamp is stale)."""
    table = tables.webhook_signatures
    try:
        async with sessions() as session, session.begin():
            await session.execute(delete(table).where(table.c.received_at < datetime.now(UTC) - older_than))
    except Exception as exc:  # pruning is housekeeping: the request goes on
        log.warning("intake.webhook_signatures_not_pruned", error=type(exc).__name__)


async def _first_use_of_signature(sessions: async_sessionmaker[AsyncSession], source: str, signature: str) -> bool:
    async with sessions() as session, session.begin():
        result = await session.execute(
            upsertable_insert(session, tables.webhook_signatures)
            .values(source=source, signature=signature[-64:]).on_conflict_do_nothing()
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
