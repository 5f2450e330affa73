"""GOV.UK Notify over its REST API (v2), with httpx: send texts and emails, read a message's status.

Notify renders its own templates (``((placeholder))`` fields): we send the template id and the
personalisation, never our rendered text. Which Notify template to use is configuration
(``EHC_NOTIFIER__NOTIFY_TEMPLATES``), looked up by our template name, kind and language, the most
specific key first::

    family_request_received.sms.cy, family_request_received.sms,
    family_request_received.cy, family_request_received

Failures are sorted as Notify documents them: 400 (BadRequestError, ValidationError) and 403
(AuthError) are final; 429 (RateLimitError, TooManyRequestsError) and 5xx may be tried again
later, as may timeouts and network errors. Notify has no idempotency key: a request that timed
out after Notify accepted it will be sent twice when retried (at-least-once, DESIGN §5).
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import jwt

from services.notifier.adapters.channels import (
    OutgoingMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
    SendResult,
    error_for_http_status,
)
from services.notifier.domain.policy import NotificationStatus
from shared.logging import get_logger, scrub
from shared.settings import NotifierSettings

log = get_logger(__name__)

DEFAULT_BASE_URL = "https://api.notifications.service.gov.uk"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Connections kept open to Notify. As many kept alive as opened: httpx closes the surplus after each
# request otherwise, and a new TLS connection per message costs more than the message.
DEFAULT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=20)
USER_AGENT = "ehc-deadlines-notifier/0.1"

_UUID_LEN = 36

# Notify's statuses for texts and emails, and what they mean for us. "created", "sending" and
# "pending" are Notify still working on it, "sent" is an international text with no receipt to come:
# for us all of them are "the provider has it" (sent).
NOTIFY_STATUSES: Mapping[str, NotificationStatus] = {
    "created": NotificationStatus.SENT,
    "sending": NotificationStatus.SENT,
    "pending": NotificationStatus.SENT,
    "sent": NotificationStatus.SENT,
    "delivered": NotificationStatus.DELIVERED,
    "permanent-failure": NotificationStatus.PERMANENT_FAILURE,
    "temporary-failure": NotificationStatus.TEMPORARY_FAILURE,
    "technical-failure": NotificationStatus.TECHNICAL_FAILURE,
}


def notify_status_to_ours(status: str) -> NotificationStatus:
    """Map a Notify status (status API or delivery receipt) into our closed set; unknown: ValueError."""
    try:
        return NOTIFY_STATUSES[status]
    except KeyError:
        raise ValueError(f"unknown GOV.UK Notify status {status!r}") from None


@dataclass(frozen=True)
class NotifyApiKey:
    """A Notify API key, ``{key_name}-{service_id}-{secret}``: both ids are UUIDs at the end."""

    name: str
    service_id: str
    secret: str = field(repr=False)

    @classmethod
    def parse(cls, api_key: str) -> NotifyApiKey:
        key = api_key.strip()
        # "...-<service id>-<secret>": two UUIDs at the end, each after a hyphen (or at the start)
        secret_at = len(key) - _UUID_LEN
        service_at = secret_at - 1 - _UUID_LEN
        name = key[: max(service_at - 1, 0)]
        service_id, secret = key[service_at : secret_at - 1], key[secret_at:]
        well_formed = (
            service_at >= 0
            and key[secret_at - 1] == "-"
            and (service_at == 0 or key[service_at - 1] == "-")
            and _is_uuid(service_id)
            and _is_uuid(secret)
        )
        if not well_formed:
            # never echo the key: it is a secret
            raise ValueError("the GOV.UK Notify API key is not in the form key_name-service_id-secret")
        return cls(name=name, service_id=service_id, secret=secret)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == _UUID_LEN


def create_notify_token(key: NotifyApiKey, issued_at: float) -> str:
    """The JWT Notify expects: HS256 over {iss: service id, iat: epoch seconds}, with the key's secret."""
    return jwt.encode({"iss": key.service_id, "iat": int(issued_at)}, key.secret, algorithm="HS256")


def _notify_errors(response: httpx.Response) -> list[tuple[str, str]]:
    """Notify's v2 error shape: {"status_code": 400, "errors": [{"error": "...", "message": "..."}]}."""
    try:
        data = response.json()
    except ValueError:
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return []
    return [
        (str(e.get("error", "")), str(e.get("message", "")))
        for e in errors
        if isinstance(e, dict)
    ]


def _reason(response: httpx.Response) -> str:
    errors = _notify_errors(response)
    if errors:
        detail = "; ".join(f"{kind}: {message}" for kind, message in errors)
    else:
        detail = response.reason_phrase or "no error body"
    # Notify's messages hold no recipient data as far as documented; scrub anyway, and keep it short
    return scrub(f"GOV.UK Notify answered {response.status_code} ({detail})")[:500]


@dataclass(frozen=True)
class DeliveryReceipt:
    """A Notify delivery receipt (callback), without the recipient's address."""

    provider_reference: str  # Notify's id of the message
    reference: str | None  # ours: the notification_id
    status: NotificationStatus
    provider_status: str
    notification_type: str
    created_at: str | None
    sent_at: str | None
    completed_at: str | None


def parse_delivery_receipt(payload: Mapping[str, Any]) -> DeliveryReceipt:
    """Read a receipt POSTed by Notify (id, reference, to, status, created_at, completed_at, sent_at,
    notification_type, ...); ValueError when it is not one. ``to`` is deliberately dropped."""
    try:
        provider_status = str(payload["status"])
        receipt = DeliveryReceipt(
            provider_reference=str(payload["id"]),
            reference=payload.get("reference"),
            status=notify_status_to_ours(provider_status),
            provider_status=provider_status,
            notification_type=str(payload.get("notification_type", "")),
            created_at=payload.get("created_at"),
            sent_at=payload.get("sent_at"),
            completed_at=payload.get("completed_at"),
        )
    except KeyError as exc:
        raise ValueError(f"a Notify delivery receipt needs {exc.args[0]!r}") from None
    return receipt


def callback_token_matches(authorization_header: str | None, expected_token: str) -> bool:
    """Check ``Authorization: Bearer <token>`` of a Notify callback in constant time."""
    if not authorization_header or not expected_token:
        return False
    scheme, _, token = authorization_header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected_token.encode())


class NotifyClient:
    """A Channel for ``notify_sms`` and ``notify_email`` messages, over one httpx.AsyncClient."""

    def __init__(
        self,
        api_key: str,
        templates: Mapping[str, str],
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        self._key = NotifyApiKey.parse(api_key)
        self._templates = dict(templates)
        self._clock = clock
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            limits=limits,
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: NotifierSettings, **kwargs: Any) -> NotifyClient:
        if settings.notify_api_key is None:
            raise ValueError("EHC_NOTIFIER__NOTIFY_API_KEY is needed to send through GOV.UK Notify")
        return cls(
            settings.notify_api_key.get_secret_value(),
            settings.notify_templates,
            settings.notify_base_url,
            **kwargs,
        )

    @property
    def service_id(self) -> str:
        return self._key.service_id

    def authorization(self) -> str:
        """A fresh ``Bearer`` header value: Notify refuses tokens issued more than 30 s ago."""
        return f"Bearer {create_notify_token(self._key, self._clock())}"

    def template_id_for(self, template: str, kind: Literal["sms", "email"], language: str) -> str:
        for name in (f"{template}.{kind}.{language}", f"{template}.{kind}", f"{template}.{language}", template):
            if name in self._templates:
                return self._templates[name]
        raise PermanentSendError(
            f"no GOV.UK Notify template is configured for {template} ({kind}, {language}): "
            "add it to EHC_NOTIFIER__NOTIFY_TEMPLATES"
        )

    async def send(self, msg: OutgoingMessage) -> SendResult:
        if msg.channel == "notify_sms":
            kind: Literal["sms", "email"] = "sms"
            payload: dict[str, Any] = {"phone_number": msg.to}
        elif msg.channel == "notify_email":
            kind = "email"
            payload = {"email_address": msg.to}
        else:
            raise PermanentSendError(f"channel {msg.channel} is not a GOV.UK Notify channel")
        payload["template_id"] = self.template_id_for(msg.template, kind, msg.language)
        if msg.personalisation:
            payload["personalisation"] = dict(msg.personalisation)
        payload["reference"] = msg.reference
        response = await self._request("POST", f"/v2/notifications/{kind}", msg.notification_id, payload)
        provider_reference: str | None = None
        try:
            provider_reference = str(response.json()["id"])
        except (ValueError, KeyError, TypeError):
            # accepted (2xx) but unreadable: do not send again, we would text the family twice
            log.warning("notify.unreadable_success", notification_id=msg.notification_id,
                        status_code=response.status_code)
        log.debug("notify.accepted", notification_id=msg.notification_id, channel=msg.channel,
                 provider_reference=provider_reference)
        return SendResult(provider_reference=provider_reference, status=NotificationStatus.SENT)

    async def get_notification_status(self, notification_id: str) -> NotificationStatus:
        """Our status for a message Notify holds, by Notify's id (SendResult.provider_reference)."""
        response = await self._request("GET", f"/v2/notifications/{notification_id}", notification_id)
        try:
            provider_status = str(response.json()["status"])
        except (ValueError, KeyError, TypeError):
            raise RetryableSendError("GOV.UK Notify answered the status request without a status") from None
        try:
            return notify_status_to_ours(provider_status)
        except ValueError as exc:
            raise PermanentSendError(str(exc)) from None

    async def _request(
        self, method: str, path: str, notification_id: str, payload: dict[str, Any] | None = None
    ) -> httpx.Response:
        try:
            response = await self._client.request(
                method, path, json=payload, headers={"Authorization": self.authorization()}
            )
        except httpx.TimeoutException as exc:
            raise RetryableSendError(f"GOV.UK Notify did not answer in time ({type(exc).__name__})") from None
        except httpx.RequestError as exc:  # connection refused or reset, DNS, protocol errors
            raise RetryableSendError(f"could not reach GOV.UK Notify ({type(exc).__name__})") from None
        if response.is_success:
            return response
        raise self._error(response, notification_id)

    def _error(self, response: httpx.Response, notification_id: str) -> SendError:
        reason = _reason(response)
        if response.status_code in (401, 403):
            # a configuration problem (wrong or revoked key, clock skew), not a problem with this message
            log.error(
                "notify.auth_failed",
                notification_id=notification_id,
                status_code=response.status_code,
                service_id=self._key.service_id,
                key_name=self._key.name,
                error=reason,
                hint="check EHC_NOTIFIER__NOTIFY_API_KEY and that the system clock is right to 30 s",
            )
            return PermanentSendError(reason)
        error = error_for_http_status(response.status_code, reason, response.headers.get("Retry-After"))
        log.warning("notify.rejected", notification_id=notification_id, status_code=response.status_code,
                    retryable=error.retryable, error=reason)
        return error

    async def aclose(self) -> None:
        await self._client.aclose()


__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "DeliveryReceipt",
    "NOTIFY_STATUSES",
    "NotifyApiKey",
    "NotifyClient",
    "callback_token_matches",
    "create_notify_token",
    "notify_status_to_ours",
    "parse_delivery_receipt",
]
