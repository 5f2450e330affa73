"""A local stand-in for GOV.UK Notify's REST API (v2), and a recording HTTP server, for tests.

The stand-in checks requests the way Notify does, as its documentation and its client libraries
describe it:

* ``Authorization: Bearer <JWT>``: missing header or another scheme is a 401 AuthError; the token is
  read with the official client's own functions (``get_token_issuer``, ``decode_jwt_token``), so
  an unsigned, wrongly signed, issuer-less or stale token (``iat`` more than 30 s away) is a 403;
* per endpoint, the JSON fields and their types (ValidationError, 400), the template (it must
  exist and be of the right type), every ``((placeholder))`` in personalisation
  ("Missing personalisation: ..." BadRequestError, 400), UK mobile numbers, the 918-character
  limit of texts;
* answers in Notify's shapes: 201 with id, reference, content, uri and template; errors as
  ``{"status_code": 400, "errors": [{"error": "BadRequestError", "message": "..."}]}``.

Tests can script the next answers (``fail_next``: 429 with or without Retry-After, 500, ...;
``delay_next``: a slow answer), read what was received (``received``), move a message's status
(``set_status``) and POST delivery receipts to a callback URL with a bearer token, as Notify does
(``send_delivery_receipt``).

Both apps run in uvicorn on 127.0.0.1, on a socket bound to a free port, in a thread of their own
(``ServerThread``), so a test's event loop can block on them without deadlocking them.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from notifications_python_client.authentication import decode_jwt_token, get_token_issuer
from notifications_python_client.errors import TokenDecodeError, TokenError, TokenExpiredError, TokenIssuerError

PLACEHOLDER = re.compile(r"\(\(([^()]+)\)\)")
SMS_CHAR_LIMIT = 918  # Notify: "Text messages cannot be longer than 918 characters"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# --------------------------------------------------------------------------------------------
# A uvicorn server in a thread
# --------------------------------------------------------------------------------------------


class ServerThread:
    """Serve an ASGI app with uvicorn on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets; without it every answer
        # (headers, then body) waits ~40 ms for the client's delayed ACK (Nagle)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=f"uvicorn-{self.port}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        # wait for uvicorn's own "started" flag (set once it listens), not for a fixed time
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the test HTTP server thread died while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("the test HTTP server did not start in time")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------
# The Notify stand-in
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StubTemplate:
    id: str
    type: Literal["sms", "email"]
    body: str
    subject: str = ""
    version: int = 1

    def placeholders(self) -> set[str]:
        text = f"{self.subject}\n{self.body}"
        # ((name??text)) is a conditional placeholder: its field is the part before "??"
        return {m.group(1).split("??")[0].strip() for m in PLACEHOLDER.finditer(text)}

    def render(self, personalisation: dict[str, Any]) -> tuple[str, str]:
        def fill(text: str) -> str:
            def one(match: re.Match[str]) -> str:
                name, _, conditional = match.group(1).partition("??")
                value = personalisation.get(name.strip())
                if conditional:
                    return conditional if str(value).lower() in ("yes", "true", "1") else ""
                return "\n".join(f"* {v}" for v in value) if isinstance(value, list) else str(value)

            return PLACEHOLDER.sub(one, text)

        return fill(self.subject), fill(self.body)


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    status_code: int = 0  # what the stub answered
    received_at: float = field(default_factory=time.time)  # wall clock, for latency benchmarks


@dataclass
class StubNotification:
    id: str
    reference: str | None
    type: Literal["sms", "email"]
    to: str
    template: StubTemplate
    personalisation: dict[str, Any]
    subject: str
    body: str
    status: str = "created"
    created_at: str = field(default_factory=lambda: _now_iso())
    sent_at: str | None = None
    completed_at: str | None = None


@dataclass
class _Scripted:
    status_code: int
    error: str
    message: str
    retry_after: str | None = None


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(status_code: int, error: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"status_code": status_code, "errors": [{"error": error, "message": message}]},
        status_code=status_code,
        headers=headers,
    )


_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequestError", "Bad request"),
    403: ("AuthError", "Invalid token: API key not found"),
    429: ("RateLimitError", "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds"),
    500: ("Exception", "Internal server error"),
    502: ("Exception", "Bad gateway"),
    503: ("Exception", "Service unavailable"),
}


def _uk_mobile_problem(number: str) -> str | None:
    """Notify's checks of a UK mobile number; None when it is one."""
    if re.search(r"[^\d\s()+\-.]", number):
        return "Must not contain letters or symbols"
    digits = re.sub(r"\D", "", number)
    for prefix in ("0044", "44", "0"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
            break
    if not digits.startswith("7"):
        return "Not a UK mobile number"
    if len(digits) > 10:
        return "Too many digits"
    if len(digits) < 10:
        return "Not enough digits"
    return None


class NotifyStub:
    """GOV.UK Notify for one service, with a set of API key secrets and templates."""

    def __init__(self, service_id: str, secrets: Iterable[str], templates: Iterable[StubTemplate]) -> None:
        self.service_id = service_id
        self.secrets = list(secrets)
        self.templates = {t.id: t for t in templates}
        self._lock = threading.Lock()
        self.received: list[ReceivedRequest] = []
        self.notifications: dict[str, StubNotification] = {}
        self._failures: deque[_Scripted] = deque()
        self._delays: deque[float] = deque()
        self.app = self._build_app()

    # --- for tests ------------------------------------------------------------------------
    def api_key(self, name: str = "ehc_test_key", secret: str | None = None) -> str:
        """An API key in Notify's form, ``{key_name}-{service_id}-{secret}``."""
        return f"{name}-{self.service_id}-{secret or self.secrets[0]}"

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.notifications.clear()
            self._failures.clear()
            self._delays.clear()

    def fail_next(
        self,
        count: int = 1,
        status_code: int = 500,
        *,
        error: str | None = None,
        message: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        """The next ``count`` authenticated requests answer ``status_code`` in Notify's error shape."""
        default_error, default_message = _DEFAULT_ERRORS.get(status_code, ("Exception", "Error"))
        scripted = _Scripted(status_code, error or default_error, message or default_message, retry_after)
        with self._lock:
            self._failures.extend([scripted] * count)

    def delay_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """The next ``count`` requests are answered only after ``seconds`` (to test client timeouts)."""
        with self._lock:
            self._delays.extend([seconds] * count)

    def set_status(self, notification_id: str, status: str) -> None:
        with self._lock:
            n = self.notifications[notification_id]
            n.status = status
            if status != "created":
                n.sent_at = n.sent_at or _now_iso()
            if status in ("delivered", "permanent-failure", "temporary-failure", "technical-failure", "sent"):
                n.completed_at = _now_iso()

    async def send_delivery_receipt(
        self, notification_id: str, url: str, bearer_token: str, status: str = "delivered"
    ) -> httpx.Response:
        """POST a delivery receipt to ``url`` as Notify does (and move the message to ``status``)."""
        self.set_status(notification_id, status)
        n = self.notifications[notification_id]
        payload = {
            "id": n.id,
            "reference": n.reference,
            "to": n.to,
            "status": n.status,
            "created_at": n.created_at,
            "completed_at": n.completed_at,
            "sent_at": n.sent_at,
            "notification_type": n.type,
            "template_id": n.template.id,
            "template_version": n.template.version,
        }
        async with httpx.AsyncClient(timeout=5.0) as client:
            return await client.post(url, json=payload, headers={"Authorization": f"Bearer {bearer_token}"})

    # --- the API --------------------------------------------------------------------------
    def _build_app(self) -> FastAPI:
        app = FastAPI(title="GOV.UK Notify stand-in")

        @app.post("/v2/notifications/{notification_type}")
        async def post_notification(notification_type: str, request: Request) -> Response:
            return await self._handle(request, lambda body: self._create(notification_type, body, request))

        @app.get("/v2/notifications/{notification_id}")
        async def get_notification(notification_id: str, request: Request) -> Response:
            return await self._handle(request, lambda _body: self._get(notification_id))

        return app

    async def _handle(self, request: Request, action: Any) -> Response:
        raw = await request.body()
        try:
            body: Any = (await request.json()) if raw else None
        except ValueError:
            body = _INVALID_JSON
        record = ReceivedRequest(request.method, request.url.path, dict(request.headers), body)
        with self._lock:
            self.received.append(record)
            delay = self._delays.popleft() if self._delays else 0.0
        if delay:
            await asyncio.sleep(delay)
        response = self._authenticate(request.headers.get("Authorization"))
        if response is None:
            with self._lock:
                scripted = self._failures.popleft() if self._failures else None
            if scripted is not None:
                headers = {"Retry-After": scripted.retry_after} if scripted.retry_after else None
                response = _error(scripted.status_code, scripted.error, scripted.message, headers)
            elif body is _INVALID_JSON:
                response = _error(400, "ValidationError", "Invalid JSON supplied in POST data")
            else:
                response = action(body)
        record.status_code = response.status_code
        return response

    def _authenticate(self, header: str | None) -> Response | None:
        if not header:
            return _error(401, "AuthError", "Unauthorized: authentication token must be provided")
        if header[:7].title() != "Bearer ":
            return _error(401, "AuthError", "Unauthorized: authentication bearer scheme must be used")
        token = header[7:]
        try:
            issuer = get_token_issuer(token)
        except TokenIssuerError:
            return _error(403, "AuthError", "Invalid token: iss field not provided")
        except TokenDecodeError:
            return _error(403, "AuthError", "Invalid token: signature, api token not found")
        if issuer != self.service_id:
            return _error(403, "AuthError", "Invalid token: service not found")
        expired = False
        for secret in self.secrets:
            try:
                decode_jwt_token(token, secret)
                return None
            except TokenExpiredError:
                expired = True
            except TokenError:
                continue
        if expired:
            return _error(403, "AuthError", "Error: Your system clock must be accurate to within 30 seconds")
        return _error(403, "AuthError", "Invalid token: API key not found")

    def _create(self, notification_type: str, body: Any, request: Request) -> Response:
        if notification_type not in ("sms", "email"):
            return _error(400, "ValidationError", f"notification type {notification_type} is not supported here")
        kind: Literal["sms", "email"] = "sms" if notification_type == "sms" else "email"
        if not isinstance(body, dict):
            return _error(400, "ValidationError", "Invalid JSON supplied in POST data")
        recipient_field = "phone_number" if kind == "sms" else "email_address"
        for required in (recipient_field, "template_id"):
            if required not in body:
                return _error(400, "ValidationError", f"{required} is a required property")
        to = body[recipient_field]
        if not isinstance(to, str):
            return _error(400, "ValidationError", f"{recipient_field} {to!r} is not of type string")
        if kind == "sms" and (problem := _uk_mobile_problem(to)):
            return _error(400, "ValidationError", f"phone_number {problem}")
        if kind == "email" and not _EMAIL.match(to):
            return _error(400, "ValidationError", "email_address Not a valid email address")
        try:
            uuid.UUID(str(body["template_id"]))
        except ValueError:
            return _error(400, "ValidationError", "template_id is not a valid UUID")
        personalisation = body.get("personalisation", {})
        if not isinstance(personalisation, dict):
            return _error(400, "ValidationError", f"personalisation {personalisation!r} is not of type object")
        reference = body.get("reference")
        if reference is not None and not isinstance(reference, str):
            return _error(400, "ValidationError", f"reference {reference!r} is not of type string")
        template = self.templates.get(str(body["template_id"]))
        if template is None:
            return _error(400, "BadRequestError", "Template not found")
        if template.type != kind:
            return _error(400, "BadRequestError", f"{template.type} template is not suitable for {kind} notification")
        missing = sorted(template.placeholders() - set(personalisation))
        if missing:
            return _error(400, "BadRequestError", f"Missing personalisation: {', '.join(missing)}")
        subject, content = template.render(personalisation)
        if kind == "sms" and len(content) > SMS_CHAR_LIMIT:
            return _error(
                400,
                "BadRequestError",
                f"Text messages cannot be longer than {SMS_CHAR_LIMIT} characters. "
                f"Your message is {len(content)} characters long.",
            )
        notification = StubNotification(
            id=str(uuid.uuid4()), reference=reference, type=kind, to=to, template=template,
            personalisation=personalisation, subject=subject, body=content,
        )
        with self._lock:
            self.notifications[notification.id] = notification
        base = str(request.base_url).rstrip("/")
        content_json: dict[str, Any] = (
            {"body": content, "from_number": "EHCDEADLINE"}
            if kind == "sms"
            else {"subject": subject, "body": content, "from_email": "ehc.deadlines@notifications.service.gov.uk"}
        )
        return JSONResponse(
            {
                "id": notification.id,
                "reference": reference,
                "content": content_json,
                "uri": f"{base}/v2/notifications/{notification.id}",
                "template": {
                    "id": template.id,
                    "version": template.version,
                    "uri": f"{base}/services/{self.service_id}/templates/{template.id}",
                },
            },
            status_code=201,
        )

    def _get(self, notification_id: str) -> Response:
        try:
            uuid.UUID(notification_id)
        except ValueError:
            return _error(400, "ValidationError", "notification_id is not a valid UUID")
        with self._lock:
            n = self.notifications.get(notification_id)
        if n is None:
            return _error(404, "NoResultFound", "No result found")
        return JSONResponse(
            {
                "id": n.id,
                "reference": n.reference,
                "email_address": n.to if n.type == "email" else None,
                "phone_number": n.to if n.type == "sms" else None,
                "type": n.type,
                "status": n.status,
                "template": {
                    "id": n.template.id,
                    "version": n.template.version,
                    "uri": f"/v2/template/{n.template.id}",
                },
                "body": n.body,
                "subject": n.subject if n.type == "email" else None,
                "created_at": n.created_at,
                "sent_at": n.sent_at,
                "completed_at": n.completed_at,
            },
            status_code=200,
        )


_INVALID_JSON = object()


# --------------------------------------------------------------------------------------------
# A recording HTTP server (an SMS gateway, a callback receiver)
# --------------------------------------------------------------------------------------------


@dataclass
class _Answer:
    status_code: int
    json: Any
    headers: dict[str, str]
    delay: float


class RecordingHttpServer:
    """Answers any request with the next scripted answer (default: 200 ``{"id": "gw-<n>"}``) and
    keeps every request it received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: list[ReceivedRequest] = []
        self._answers: deque[_Answer] = deque()
        self.app = self._build_app()

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self._answers.clear()

    def answer_next(
        self,
        status_code: int = 200,
        json: Any = None,
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        count: int = 1,
    ) -> None:
        with self._lock:
            self._answers.extend([_Answer(status_code, json, headers or {}, delay)] * count)

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="recording server")

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT"])
        async def anything(path: str, request: Request) -> Response:
            raw = await request.body()
            try:
                body: Any = (await request.json()) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            with self._lock:
                self.received.append(ReceivedRequest(request.method, "/" + path, dict(request.headers), body))
                answer = self._answers.popleft() if self._answers else None
                count = len(self.received)
            if answer is None:
                answer = _Answer(200, {"id": f"gw-{count}"}, {}, 0.0)
            if answer.delay:
                await asyncio.sleep(answer.delay)
            if answer.json is None:
                return Response(status_code=answer.status_code, headers=answer.headers)
            return JSONResponse(answer.json, status_code=answer.status_code, headers=answer.headers)

        return app
