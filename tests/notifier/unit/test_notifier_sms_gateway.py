"""The generic HTTP SMS gateway channel against a small local HTTP server."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from pydantic import SecretStr

from services.notifier.adapters.channels import OutgoingMessage, PermanentSendError, RetryableSendError, SendError
from services.notifier.adapters.sms_gateway import DEFAULT_BODY_TEMPLATE, SmsGatewayChannel
from services.notifier.domain.policy import NotificationStatus
from shared.settings import NotifierSettings
from tests.notifier.conftest import Recorder
from tests.notifier.notify_stub import free_port

BODY = 'Hertfordshire County Council has sent you a draft EHC plan.\nYou have until "1 June 2026".'


def text(**changes: object) -> OutgoingMessage:
    fields: dict = {"notification_id": str(uuid.uuid4()), "channel": "sms_gateway", "to": "+447900900123",
                    "template": "family_draft_plan_issued", "body": BODY}
    fields.update(changes)
    return OutgoingMessage(**fields)


def channel_for(recorder: Recorder, **kwargs: object) -> SmsGatewayChannel:
    return SmsGatewayChannel(f"{recorder.url}/sms", auth_header="Bearer gw-secret", **kwargs)  # type: ignore[arg-type]


async def test_the_default_body_is_json_with_the_text_escaped(http_recorder: Recorder) -> None:
    channel = channel_for(http_recorder)
    http_recorder.server.answer_next(202, {"message_id": "abc-1"})
    try:
        result = await channel.send(text())
    finally:
        await channel.aclose()
    assert (result.provider_reference, result.status) == ("abc-1", NotificationStatus.SENT)
    [request] = http_recorder.server.received
    assert request.method == "POST" and request.path == "/sms"
    assert request.json == {"to": "+447900900123", "message": BODY}
    assert request.headers["authorization"] == "Bearer gw-secret"
    assert request.headers["content-type"] == "application/json"


async def test_a_configured_body_template(http_recorder: Recorder) -> None:
    template = '{"recipients": ["{{ to }}"], "text": {{ body | tojson }}, "ref": "{{ reference }}"}'
    channel = channel_for(http_recorder, body_template=template)
    msg = text()
    try:
        result = await channel.send(msg)
    finally:
        await channel.aclose()
    assert http_recorder.server.received[0].json == {"recipients": ["+447900900123"], "text": BODY,
                                                     "ref": msg.notification_id}
    assert result.provider_reference == "gw-1"  # the recorder's default {"id": "gw-<n>"}


@pytest.mark.parametrize(
    ("status_code", "headers", "error", "retry_after"),
    [
        (429, {"Retry-After": "30"}, RetryableSendError, 30.0),
        (429, {}, RetryableSendError, None),
        (500, {}, RetryableSendError, None),
        (503, {"Retry-After": "5"}, RetryableSendError, 5.0),
        (400, {}, PermanentSendError, None),
        (401, {}, PermanentSendError, None),
        (404, {}, PermanentSendError, None),
    ],
)
async def test_failures_are_sorted(
    http_recorder: Recorder, status_code: int, headers: dict[str, str], error: type[SendError],
    retry_after: float | None,
) -> None:
    http_recorder.server.answer_next(status_code, {"error": "nope"}, headers=headers)
    channel = channel_for(http_recorder)
    try:
        with pytest.raises(error) as info:
            await channel.send(text())
    finally:
        await channel.aclose()
    assert str(status_code) in info.value.reason
    assert getattr(info.value, "retry_after", None) == retry_after


async def test_a_timeout_is_retryable(http_recorder: Recorder) -> None:
    http_recorder.server.answer_next(200, {"id": "late"}, delay=1.0)
    channel = channel_for(http_recorder, timeout=httpx.Timeout(0.2))
    try:
        with pytest.raises(RetryableSendError, match="did not answer in time"):
            await channel.send(text())
    finally:
        await channel.aclose()


async def test_a_refused_connection_is_retryable() -> None:
    channel = SmsGatewayChannel(f"http://127.0.0.1:{free_port()}/sms")
    try:
        with pytest.raises(RetryableSendError, match="could not reach the SMS gateway"):
            await channel.send(text())
    finally:
        await channel.aclose()


async def test_a_number_not_in_e164_is_refused_before_sending(http_recorder: Recorder) -> None:
    channel = channel_for(http_recorder)
    try:
        with pytest.raises(PermanentSendError, match="E.164"):
            await channel.send(text(to='07900 900123", "admin": true, "x": "'))
    finally:
        await channel.aclose()
    assert http_recorder.server.received == []


@pytest.mark.parametrize(
    "template",
    [
        '{"to": "{{ to }}", "message": {{ body }}}',  # a body with quotes breaks the JSON
        '{"to": "{{ phone }}"}',  # an unknown variable
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",  # the sandbox stops it
        '{"to": "{{ to }"',  # not even a template
    ],
)
def test_a_bad_body_template_fails_at_start_up(template: str) -> None:
    with pytest.raises(ValueError, match="SMS gateway body template"):
        SmsGatewayChannel("http://127.0.0.1:9/sms", body_template=template)


def test_settings_build_the_channel() -> None:
    assert NotifierSettings().sms_gateway_body_template == DEFAULT_BODY_TEMPLATE
    settings = NotifierSettings(sms_gateway_url="http://gw.example/send", sms_gateway_auth_header=SecretStr("Token t"))
    channel = SmsGatewayChannel.from_settings(settings)
    assert channel.url == "http://gw.example/send"
    assert json.loads(channel.request_body(text()))["to"] == "+447900900123"
    with pytest.raises(ValueError, match="SMS_GATEWAY_URL"):
        SmsGatewayChannel.from_settings(NotifierSettings())
