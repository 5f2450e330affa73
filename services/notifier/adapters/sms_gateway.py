"""A generic HTTP SMS gateway: POST a JSON body built from a configured Jinja2 template.

Configuration (``EHC_NOTIFIER__SMS_GATEWAY_*``): the URL, the value of the Authorization header
and the body template, e.g. ``{"to": "{{ to }}", "message": {{ body | tojson }}}``. The template
sees ``to`` (E.164), ``body``, ``reference`` and ``notification_id``; it runs sandboxed and must
produce JSON (checked when the channel is built, so a typo fails at start-up, not at 3 a.m.).

Failures are sorted like Notify's: 429 (honouring Retry-After), 5xx, timeouts and network errors
are retryable, any other answer is final.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from services.notifier.adapters.channels import (
    OutgoingMessage,
    PermanentSendError,
    RetryableSendError,
    SendResult,
    error_for_http_status,
)
from services.notifier.domain.policy import NotificationStatus
from shared.logging import get_logger, scrub
from shared.settings import NotifierSettings

log = get_logger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
DEFAULT_BODY_TEMPLATE = '{"to": "{{ to }}", "message": {{ body | tojson }}}'
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# keys under which gateways commonly return their message id
_ID_KEYS = ("id", "message_id", "messageId", "sid", "reference")


class SmsGatewayChannel:
    """A Channel for ``sms_gateway`` messages over one httpx.AsyncClient."""

    def __init__(
        self,
        url: str,
        *,
        auth_header: str | None = None,
        body_template: str = DEFAULT_BODY_TEMPLATE,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
        try:
            self._template = env.from_string(body_template)
        except TemplateError as exc:
            raise ValueError(f"the SMS gateway body template is not a valid template: {exc}") from None
        self._render({"to": "+447900900123", "body": 'a "test"\nmessage', "reference": "r", "notification_id": "n"})
        headers = {"Content-Type": "application/json", "User-Agent": "ehc-deadlines-notifier/0.1"}
        if auth_header:
            headers["Authorization"] = auth_header
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport, headers=headers)

    @classmethod
    def from_settings(cls, settings: NotifierSettings, **kwargs: Any) -> SmsGatewayChannel:
        if not settings.sms_gateway_url:
            raise ValueError("EHC_NOTIFIER__SMS_GATEWAY_URL is needed to send through the SMS gateway")
        auth = settings.sms_gateway_auth_header.get_secret_value() if settings.sms_gateway_auth_header else None
        return cls(
            settings.sms_gateway_url,
            auth_header=auth,
            body_template=settings.sms_gateway_body_template,
            **kwargs,
        )

    def _render(self, variables: dict[str, str]) -> str:
        try:
            rendered = self._template.render(**variables)
            json.loads(rendered)
        except (TemplateError, ValueError) as exc:
            # the exception text may quote the rendered body: keep only its kind
            raise ValueError(f"the SMS gateway body template does not give JSON ({type(exc).__name__})") from None
        return rendered

    def request_body(self, msg: OutgoingMessage) -> str:
        if not _E164.match(msg.to):
            raise PermanentSendError("the SMS gateway needs a phone number in E.164 form (+44...)")
        try:
            return self._render({"to": msg.to, "body": msg.body, "reference": msg.reference,
                                 "notification_id": msg.notification_id})
        except ValueError as exc:
            raise PermanentSendError(str(exc)) from None

    async def send(self, msg: OutgoingMessage) -> SendResult:
        content = self.request_body(msg)
        try:
            response = await self._client.post(self.url, content=content.encode())
        except httpx.TimeoutException as exc:
            raise RetryableSendError(f"the SMS gateway did not answer in time ({type(exc).__name__})") from None
        except httpx.RequestError as exc:
            raise RetryableSendError(f"could not reach the SMS gateway ({type(exc).__name__})") from None
        if not response.is_success:
            reason = scrub(f"the SMS gateway answered {response.status_code} ({response.reason_phrase})")
            error = error_for_http_status(response.status_code, reason, response.headers.get("Retry-After"))
            log.warning("sms_gateway.rejected", notification_id=msg.notification_id,
                        status_code=response.status_code, retryable=error.retryable)
            raise error
        provider_reference = _provider_reference(response)
        log.debug("sms_gateway.accepted", notification_id=msg.notification_id, provider_reference=provider_reference)
        return SendResult(provider_reference=provider_reference, status=NotificationStatus.SENT)

    async def aclose(self) -> None:
        await self._client.aclose()


def _provider_reference(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    if isinstance(data, dict):
        for key in _ID_KEYS:
            value = data.get(key)
            if isinstance(value, str | int) and str(value):
                return str(value)
    return None


__all__ = ["DEFAULT_BODY_TEMPLATE", "SmsGatewayChannel"]
